//! Validation: every rule a value must pass before it enters the cluster,
//! each error naming the key path and the value.

mod addresses;
mod names;
mod nodes;
mod ports;
mod services;

pub(crate) use addresses::{overlaps, parse_cidr, parse_ip, special_address};
pub(crate) use names::{
    check_dns_label, check_dns_subdomain, check_labels, check_name, check_port_name, NameSyntax,
};
pub(crate) use nodes::{build_nodes, find_node};
pub(crate) use ports::{container_ports, port_name, port_number, protocol};
pub(crate) use services::{build_services, externally_accessible, ServicePlan};
