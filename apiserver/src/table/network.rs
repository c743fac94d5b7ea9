//! Columns of services, endpoints and endpointslices.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{age, array_at, col, endpoint_list, labels_string, or_none, str_at, wide, Column};

/// Service columns.
pub const SERVICE_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Type", "string"),
    col("Cluster-IP", "string"),
    col("External-IP", "string"),
    col("Port(s)", "string"),
    col("Age", "string"),
    wide("Selector", "string"),
];

fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = array_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, "/spec/type") {
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        "LoadBalancer" => {
            let mut ips: Vec<&str> = array_at(svc, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                .collect();
            ips.extend(&external);
            if ips.is_empty() {
                "<pending>".to_string()
            } else {
                ips.join(",")
            }
        }
        _ => or_none(&external.join(",")),
    }
}

fn ports(svc: &Value) -> String {
    let ports: Vec<String> = array_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node) if node != 0 => format!("{}:{node}/{protocol}", p["port"]),
                _ => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    or_none(&ports.join(","))
}

pub(super) fn service(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(str_at(svc, "/spec/type")),
        json!(or_none(str_at(svc, "/spec/clusterIP"))),
        json!(external_ip(svc)),
        json!(ports(svc)),
        age(svc, now),
        json!(labels_string(svc.pointer("/spec/selector"))),
    ]
}

/// Endpoints columns.
pub const ENDPOINTS_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Endpoints", "string"),
    col("Age", "string"),
];

pub(super) fn endpoints(ep: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut items = Vec::new();
    for subset in array_at(ep, "/subsets") {
        let addresses = array_at(subset, "/addresses");
        let ports = array_at(subset, "/ports");
        if ports.is_empty() {
            items.extend(
                addresses
                    .iter()
                    .map(|a| a["ip"].as_str().unwrap_or("").to_string()),
            );
        }
        for port in ports {
            for a in addresses {
                items.push(format!(
                    "{}:{}",
                    a["ip"].as_str().unwrap_or(""),
                    port["port"]
                ));
            }
        }
    }
    vec![json!(endpoint_list(&items)), age(ep, now)]
}

/// EndpointSlice columns.
pub const ENDPOINTSLICE_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("AddressType", "string"),
    col("Ports", "string"),
    col("Endpoints", "string"),
    col("Age", "string"),
];

pub(super) fn endpointslice(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = array_at(slice, "/ports")
        .iter()
        .map(|p| p["port"].to_string())
        .collect();
    let addresses: Vec<String> = array_at(slice, "/endpoints")
        .iter()
        .flat_map(|e| array_at(e, "/addresses").iter().filter_map(Value::as_str))
        .map(str::to_string)
        .collect();
    vec![
        json!(str_at(slice, "/addressType")),
        json!(if ports.is_empty() {
            "<unset>".to_string()
        } else {
            ports.join(",")
        }),
        json!(endpoint_list(&addresses)),
        age(slice, now),
    ]
}
