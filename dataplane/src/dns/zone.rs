//! The cluster (a [`ZoneSource`]) as a DNS zone: which names exist and what records they
//! hold (the table in [`super`]'s documentation).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::proto;
use super::{ZoneSource, TTL};
use proto::op::{Message, Query, ResponseCode};
use proto::rr::rdata::{A, CNAME, NS, SOA, SRV};
use proto::rr::{Name, RData, Record, RecordType};

use cluster::{Protocol, Service, ServicePort, ServiceType, TargetPort};

/// How many CNAMEs inside the cluster domain an answer follows.
const MAX_CNAME_CHAIN: usize = 8;

/// The zone's serial number. There are no zone transfers, so it carries no
/// meaning beyond being part of the SOA record.
const SOA_SERIAL: u32 = 1;

/// What the zone holds at one name.
#[derive(Debug, Default)]
struct Entry {
    /// Record data at the name, of any type.
    records: Vec<RData>,
    /// Records for the additional section (the addresses of SRV and NS targets).
    additional: Vec<Record>,
}

/// The cluster seen as the DNS zone `cluster.dns_domain`.
pub(super) struct Zone<'a> {
    cluster: &'a dyn ZoneSource,
    /// The domain's labels, lowercase (`["cluster", "local"]`).
    domain_labels: Vec<String>,
    /// The domain, for printing and SOA/NS names.
    pub(super) domain: String,
}

impl<'a> Zone<'a> {
    pub(super) fn new(cluster: &'a dyn ZoneSource) -> Self {
        let domain = cluster
            .dns_domain()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        Self {
            cluster,
            domain_labels: domain
                .split('.')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            domain,
        }
    }

    /// The labels of `name` in front of the domain, lowercase, or `None` if
    /// `name` is not inside the domain.
    pub(super) fn relative(&self, name: &Name) -> Option<Vec<String>> {
        let labels: Vec<String> = name
            .iter()
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect();
        let n = labels.len().checked_sub(self.domain_labels.len())?;
        (labels[n..] == self.domain_labels[..]).then(|| labels[..n].to_vec())
    }

    /// A fully qualified name under the domain (`prefix` + `.` + domain + `.`).
    fn name(&self, prefix: &str) -> Option<Name> {
        let text = if prefix.is_empty() {
            format!("{}.", self.domain)
        } else {
            format!("{prefix}.{}.", self.domain)
        };
        Name::from_ascii(text).ok()
    }

    fn soa(&self) -> Option<Record> {
        let soa = SOA::new(
            self.name("ns.dns")?,
            self.name("hostmaster")?,
            SOA_SERIAL,
            7200,
            1800,
            86400,
            TTL,
        );
        Some(Record::from_rdata(self.name("")?, TTL, RData::SOA(soa)))
    }

    /// Fills in the answer to `query` (which is inside the domain).
    pub(super) fn answer(&self, query: &Query, response: &mut Message) {
        let qtype = query.query_type;
        let mut owner = query.name.clone();
        let mut nodata = false;
        for _ in 0..MAX_CNAME_CHAIN {
            let Some(node) = self.relative(&owner).and_then(|rel| self.lookup(&rel)) else {
                response.metadata.response_code = ResponseCode::NXDomain;
                break;
            };
            let alias = node.records.iter().find_map(|r| match r {
                RData::CNAME(CNAME(target)) => Some(target.clone()),
                _ => None,
            });
            if let Some(target) = alias.filter(|_| !matches!(qtype, RecordType::CNAME)) {
                response.add_answer(Record::from_rdata(
                    owner.clone(),
                    TTL,
                    RData::CNAME(CNAME(target.clone())),
                ));
                if self.relative(&target).is_none() {
                    // Outside the cluster domain: there is no upstream to ask.
                    break;
                }
                owner = target;
                continue;
            }
            let matching: Vec<RData> = node
                .records
                .into_iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .collect();
            nodata = matching.is_empty();
            for rdata in matching {
                response.add_answer(Record::from_rdata(owner.clone(), TTL, rdata));
            }
            if !nodata {
                response.add_additionals(node.additional);
            }
            break;
        }
        if nodata || response.metadata.response_code == ResponseCode::NXDomain {
            if let Some(soa) = self.soa() {
                response.add_authority(soa);
            }
        }
    }

    /// What the zone holds at the relative name `rel` (labels in front of
    /// the domain, lowercase); `None`: no such name.
    fn lookup(&self, rel: &[String]) -> Option<Entry> {
        let rel: Vec<&str> = rel.iter().map(String::as_str).collect();
        match rel.as_slice() {
            [] => Some(self.apex()),
            ["svc" | "pod"] => Some(Entry::default()),
            [ns, "svc" | "pod"] => self.namespace_exists(ns).then(Entry::default),
            ["dns"] => self.dns_service_ip().map(|_| Entry::default()),
            ["ns", "dns"] => self.dns_service_ip().map(|ip| Entry {
                records: vec![RData::A(A(ip))],
                additional: Vec::new(),
            }),
            [ip, ns, "pod"] => {
                let ip = parse_dashed(ip)?;
                self.namespace_exists(ns).then(|| Entry {
                    records: vec![RData::A(A(ip))],
                    additional: Vec::new(),
                })
            }
            [svc, ns, "svc"] => self.service_node(self.cluster.service(ns, svc)?),
            [proto, svc, ns, "svc"] if proto.starts_with('_') => {
                let svc = self.cluster.service(ns, svc)?;
                let proto = protocol(proto)?;
                named_ports(svc)
                    .any(|(_, p)| p.protocol == proto)
                    .then(Entry::default)
            }
            [host, svc, ns, "svc"] => {
                let svc = self.cluster.service(ns, svc)?;
                let ip = parse_dashed(host)?;
                (svc.headless && self.headless_ips(svc).contains(&ip)).then(|| Entry {
                    records: vec![RData::A(A(ip))],
                    additional: Vec::new(),
                })
            }
            [port, proto, svc, ns, "svc"] => {
                let svc = self.cluster.service(ns, svc)?;
                self.srv_node(svc, port.strip_prefix('_')?, protocol(proto)?)
            }
            _ => None,
        }
    }

    fn apex(&self) -> Entry {
        let mut node = Entry::default();
        if let Some(soa) = self.soa() {
            node.records.push(soa.data);
        }
        if let (Some(ip), Some(ns)) = (self.dns_service_ip(), self.name("ns.dns")) {
            node.records.push(RData::NS(NS(ns.clone())));
            node.additional
                .push(Record::from_rdata(ns, TTL, RData::A(A(ip))));
        }
        node
    }

    /// The cluster DNS Service's ClusterIP (`kube-system/kube-dns`).
    fn dns_service_ip(&self) -> Option<Ipv4Addr> {
        self.cluster
            .service("kube-system", "kube-dns")
            .filter(|s| has_cluster_ip(s))
            .map(|s| s.cluster_ip)
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.cluster.namespace_exists(ns)
    }

    /// The records of `SVC.NS.svc.D`; `None` for a headless Service without
    /// ready endpoints (as CoreDNS: NXDOMAIN).
    fn service_node(&self, svc: &Service) -> Option<Entry> {
        let records = if svc.service_type == ServiceType::ExternalName {
            let target = svc.external_name.as_deref()?;
            let target = Name::from_ascii(format!("{}.", target.trim_end_matches('.'))).ok()?;
            vec![RData::CNAME(CNAME(target))]
        } else if svc.headless {
            let ips = self.headless_ips(svc);
            if ips.is_empty() {
                return None;
            }
            ips.into_iter().map(|ip| RData::A(A(ip))).collect()
        } else {
            vec![RData::A(A(svc.cluster_ip))]
        };
        Some(Entry {
            records,
            additional: Vec::new(),
        })
    }

    /// The ready endpoints' IPs of a headless Service, over every port (or
    /// every selected ready pod, for a Service without ports).
    fn headless_ips(&self, svc: &Service) -> BTreeSet<Ipv4Addr> {
        let any_port = ServicePort {
            name: None,
            protocol: Protocol::Tcp,
            port: 0,
            target_port: TargetPort::Number(0),
            node_port: None,
        };
        let ports = if svc.ports.is_empty() {
            std::slice::from_ref(&any_port)
        } else {
            svc.ports.as_slice()
        };
        ports
            .iter()
            .flat_map(|p| self.cluster.endpoints(svc, p))
            .map(|e| e.ip)
            .collect()
    }

    /// The SRV records of `_PORT._PROTO.SVC.NS.svc.D`.
    fn srv_node(&self, svc: &Service, port_name: &str, proto: Protocol) -> Option<Entry> {
        if svc.service_type == ServiceType::ExternalName {
            return None;
        }
        let (_, port) = named_ports(svc)
            .find(|(name, p)| p.protocol == proto && name.eq_ignore_ascii_case(port_name))?;
        let svc_prefix = format!("{}.{}.svc", svc.name, svc.namespace);
        let mut node = Entry::default();
        if svc.headless {
            let endpoints = self.cluster.endpoints(svc, port);
            let weight = u16::try_from(100 / endpoints.len().max(1))
                .unwrap_or(1)
                .max(1);
            for ep in endpoints {
                let target = self.name(&format!("{}.{svc_prefix}", dashed(ep.ip)))?;
                node.records
                    .push(RData::SRV(SRV::new(0, weight, ep.port, target.clone())));
                node.additional
                    .push(Record::from_rdata(target, TTL, RData::A(A(ep.ip))));
            }
        } else {
            let target = self.name(&svc_prefix)?;
            node.records
                .push(RData::SRV(SRV::new(0, 100, port.port, target.clone())));
            node.additional
                .push(Record::from_rdata(target, TTL, RData::A(A(svc.cluster_ip))));
        }
        Some(node)
    }
}

/// A Service's named ports with their names.
fn named_ports(svc: &Service) -> impl Iterator<Item = (&str, &ServicePort)> {
    svc.ports
        .iter()
        .filter_map(|p| p.name.as_deref().map(|n| (n, p)))
}

/// Whether a Service has a virtual IP.
fn has_cluster_ip(svc: &Service) -> bool {
    !svc.headless && svc.service_type != ServiceType::ExternalName
}

/// `_tcp` / `_udp` to the protocol.
fn protocol(label: &str) -> Option<Protocol> {
    match label {
        "_tcp" => Some(Protocol::Tcp),
        "_udp" => Some(Protocol::Udp),
        _ => None,
    }
}

/// `10-10-1-5` to `10.10.1.5`.
pub(super) fn parse_dashed(label: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = label.split('-');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// `10.10.1.5` to `10-10-1-5`.
pub(super) fn dashed(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}")
}
