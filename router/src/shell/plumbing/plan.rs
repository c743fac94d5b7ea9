//! What the node's kernel must route into the router: the policy rules and
//! routes, derived from the cluster and this node, as data.
//!
//! The recipe (README, "How traffic reaches the router"):
//!
//! | rule / route | why |
//! |---|---|
//! | pref 4 `iif TUN lookup local` | written-back packets for the node's own addresses are delivered |
//! | pref 5 `to NODE_IP ipproto tcp/udp dport 30000-32767 lookup 100` | NodePorts reach the router although the node address is local |
//! | pref 10 `lookup local` (moved from pref 0) | so the NodePort rule comes first |
//! | pref 100 `iif TUN lookup main` | written-back packets are routed normally and never loop |
//! | pref 110 `from CLUSTER_CIDR lookup 100` | all pod egress passes the router |
//! | pref 115 `iif UNDERLAY_DEV lookup 100` | LoadBalancer and external IPs routed in from the underlay |
//! | pref 120 `to SERVICE_CIDR lookup 100` | Service traffic from the node itself |
//! | table 100 `default dev TUN`, `unreachable default metric 9999` | fail closed when the router is gone |
//! | main `unreachable SERVICE_CIDR` | a written-back packet to an unserved Service IP never leaves |
//!
//! The lab's reverse-path rules (prefs 101, 105, 106 and table 101, kept by
//! its kubelet for the pods' veths) are the lab's, not the router's.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The routing table everything that must pass the router is looked up in.
pub const ROUTER_TABLE: u32 = 100;
/// The kernel's main table.
pub const MAIN_TABLE: u32 = 254;
/// The kernel's local table.
pub const LOCAL_TABLE: u32 = 255;
/// Kubernetes' default NodePort range (kube-apiserver `--service-node-port-range`).
pub const NODE_PORT_RANGE: (u16, u16) = (30000, 32767);
/// Metric of the fail-closed route behind the TUN route.
pub const FAIL_CLOSED_METRIC: u32 = 9999;

/// The transport protocol a rule matches (NodePorts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One policy routing rule (`ip rule`), IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its preference (`pref`): rules are tried in this order.
    pub pref: u32,
    /// `iif NAME`.
    pub iif: Option<String>,
    /// `from NET`.
    pub from: Option<Ipv4Net>,
    /// `to NET`.
    pub to: Option<Ipv4Net>,
    /// `ipproto P dport LO-HI`.
    pub dport: Option<(RuleProto, u16, u16)>,
    /// `lookup TABLE`.
    pub table: u32,
}

impl Rule {
    fn lookup(pref: u32, table: u32) -> Self {
        Rule {
            pref,
            iif: None,
            from: None,
            to: None,
            dport: None,
            table,
        }
    }
}

/// One route (`ip route`), IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The table it is in.
    pub table: u32,
    /// Its destination.
    pub dst: Ipv4Net,
    /// `dev NAME`; `None` for an `unreachable` route.
    pub dev: Option<String>,
    /// `metric N`.
    pub metric: u32,
}

/// Everything the router installs in its node's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Rules to add when missing.
    pub rules: Vec<Rule>,
    /// Rules to remove when present (the local table's default pref 0,
    /// moved behind the NodePort rules).
    pub remove_rules: Vec<Rule>,
    /// Routes to add when missing.
    pub routes: Vec<Route>,
    /// Per-device sysctls (`net.ipv4.conf.DEV.KEY`) the TUN device needs,
    /// set again whenever the device is created.
    pub tun_sysctls: Vec<(&'static str, &'static str)>,
}

/// The inputs of the recipe.
#[derive(Debug, Clone)]
pub struct NodeNetwork {
    /// The TUN device's name (`kube0`).
    pub tun: String,
    /// The node's underlay address (NodePorts are served on it).
    pub node_ip: Ipv4Addr,
    /// The device carrying it, when known (LoadBalancer and external IPs
    /// arrive there).
    pub underlay_dev: Option<String>,
    /// All pods' addresses (`clusterCIDR`).
    pub cluster_cidr: Ipv4Net,
    /// The Service addresses (`serviceCIDR`).
    pub service_cidr: Ipv4Net,
}

/// The recipe for `net`.
pub fn plan(net: &NodeNetwork) -> Plan {
    let any = Ipv4Net::default();
    let mut rules = vec![
        Rule {
            iif: Some(net.tun.clone()),
            ..Rule::lookup(4, LOCAL_TABLE)
        },
        Rule::lookup(10, LOCAL_TABLE),
    ];
    for proto in [RuleProto::Tcp, RuleProto::Udp] {
        rules.push(Rule {
            to: Some(Ipv4Net::from(net.node_ip)),
            dport: Some((proto, NODE_PORT_RANGE.0, NODE_PORT_RANGE.1)),
            ..Rule::lookup(5, ROUTER_TABLE)
        });
    }
    rules.push(Rule {
        iif: Some(net.tun.clone()),
        ..Rule::lookup(100, MAIN_TABLE)
    });
    rules.push(Rule {
        from: Some(net.cluster_cidr),
        ..Rule::lookup(110, ROUTER_TABLE)
    });
    if let Some(dev) = &net.underlay_dev {
        rules.push(Rule {
            iif: Some(dev.clone()),
            ..Rule::lookup(115, ROUTER_TABLE)
        });
    }
    rules.push(Rule {
        to: Some(net.service_cidr),
        ..Rule::lookup(120, ROUTER_TABLE)
    });
    Plan {
        rules,
        remove_rules: vec![Rule::lookup(0, LOCAL_TABLE)],
        routes: vec![
            Route {
                table: ROUTER_TABLE,
                dst: any,
                dev: Some(net.tun.clone()),
                metric: 0,
            },
            Route {
                table: ROUTER_TABLE,
                dst: any,
                dev: None,
                metric: FAIL_CLOSED_METRIC,
            },
            Route {
                table: MAIN_TABLE,
                dst: net.service_cidr,
                dev: None,
                metric: 0,
            },
        ],
        // Written-back packets have no reverse route through the TUN (it
        // has no address): rp_filter would drop them. Traffic the node
        // itself sends to a Service comes back with a local source address:
        // accept_local lets it in (../shared/tun-notes.md pitfalls 2 and 3).
        tun_sysctls: vec![("rp_filter", "0"), ("accept_local", "1")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NodeNetwork {
        NodeNetwork {
            tun: "kube0".into(),
            node_ip: Ipv4Addr::new(192, 168, 191, 145),
            underlay_dev: Some("ksr-ul".into()),
            cluster_cidr: "10.10.0.0/16".parse().expect("cidr"),
            service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        }
    }

    #[test]
    fn the_recipe_matches_the_readme_table() {
        let p = plan(&net());
        let prefs: Vec<u32> = p.rules.iter().map(|r| r.pref).collect();
        assert_eq!(prefs, [4, 10, 5, 5, 100, 110, 115, 120]);
        // Rules that send traffic into the router all look up table 100.
        for r in p
            .rules
            .iter()
            .filter(|r| [5, 110, 115, 120].contains(&r.pref))
        {
            assert_eq!(r.table, ROUTER_TABLE, "{r:?}");
        }
        let nodeport = &p.rules[2];
        assert_eq!(
            nodeport.to,
            Some("192.168.191.145/32".parse().expect("net"))
        );
        assert_eq!(nodeport.dport, Some((RuleProto::Tcp, 30000, 32767)));
        // Fail closed: an unreachable route behind the TUN route.
        assert!(p.routes.contains(&Route {
            table: ROUTER_TABLE,
            dst: Ipv4Net::default(),
            dev: None,
            metric: FAIL_CLOSED_METRIC,
        }));
        assert_eq!(p.remove_rules, [Rule::lookup(0, LOCAL_TABLE)]);
    }

    #[test]
    fn without_a_known_underlay_device_there_is_no_pref_115() {
        let mut n = net();
        n.underlay_dev = None;
        assert!(plan(&n).rules.iter().all(|r| r.pref != 115));
    }
}
