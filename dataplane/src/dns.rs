//! The cluster DNS: answers DNS queries from the cluster model, the way
//! CoreDNS's `kubernetes` plugin does (with `pods insecure`), for the
//! router-hosted `kube-dns` pods (see [`crate::node`]).
//!
//! Pure: bytes in, bytes out, no I/O and no clock. The wire format is
//! hickory-proto's (re-exported as [`proto`] so tests build queries with
//! the same crate); nothing here encodes a DNS message by hand.
//!
//! # Records (domain `D` = `cluster.dns_domain`, TTL [`TTL`])
//!
//! | name | answer |
//! |---|---|
//! | `SVC.NS.svc.D` | A: the ClusterIP; headless: the ready endpoints' pod IPs (every port's, deduplicated); ExternalName: CNAME to `externalName` |
//! | `_PORT._PROTO.SVC.NS.svc.D` (named ports) | SRV `0 100 PORT SVC.NS.svc.D.`, the A record in the additional section; headless: one SRV per ready endpoint, to `a-b-c-d.SVC.NS.svc.D.` with the endpoint's port |
//! | `a-b-c-d.SVC.NS.svc.D` (headless) | A `a.b.c.d`, if that is a ready endpoint |
//! | `a-b-c-d.NS.pod.D` | A `a.b.c.d`, for any address (`pods insecure`), if namespace `NS` exists |
//! | `D` | SOA; NS `ns.dns.D.` (with its A, the `kube-system/kube-dns` ClusterIP, when that Service exists) |
//! | `NS.svc.D`, `NS.pod.D`, `svc.D`, `pod.D` | exist, without records (NOERROR, no answers) |
//!
//! A name under `D` that is none of these is NXDOMAIN, with the zone's SOA
//! in the authority section (as is a name that exists but has no record of
//! the asked type, NOERROR). Namespaces are part of the name: a Service
//! exists only in its own namespace. The namespaces that exist are those of
//! any pod, Service or Deployment, plus Kubernetes' own `default`,
//! `kube-system`, `kube-public` and `kube-node-lease`. The cluster is
//! IPv4-only, so AAAA queries never have answers. Matching ignores case;
//! answers are owned by the name as it was asked.
//!
//! Names outside `D` are REFUSED, with the recursion-available flag off:
//! the lab has no upstream resolver to forward them to (CoreDNS's `forward`
//! plugin has nowhere to go), so this server is authoritative for the
//! cluster domain only.
//!
//! A query that is not a standard query gets NOTIMP; a malformed one, or one
//! with other than one question, FORMERR; EDNS versions above 0 BADVERS.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub use hickory_proto as proto;

use proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use proto::rr::rdata::{A, CNAME, NS, SOA, SRV};
use proto::rr::{DNSClass, Name, RData, Record, RecordType};
use proto::serialize::binary::{BinDecodable, BinDecoder};

use cluster::{Cluster, Protocol, Service, ServicePort, ServiceType, TargetPort};

/// TTL of every record, and the negative-caching TTL (CoreDNS's default `ttl 5`).
pub const TTL: u32 = 5;

/// The largest UDP response this server sends to an EDNS client (the DNS
/// flag day's 1232 bytes, CoreDNS's default); clients without EDNS get 512.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The largest UDP response to a client without EDNS (RFC 1035).
const CLASSIC_UDP_PAYLOAD: usize = 512;

/// The namespaces every Kubernetes cluster has.
const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The zone's serial number. There are no zone transfers, so it carries no
/// meaning beyond being part of the SOA record.
const SOA_SERIAL: u32 = 1;

/// How many CNAMEs inside the cluster domain an answer follows.
const MAX_CNAME_CHAIN: usize = 8;

/// Answers one DNS query (a whole message, as carried over TCP) from
/// `cluster`. The response is not size-limited: use [`answer_udp`] for UDP.
///
/// Returns `None` only when there is nothing to answer: the message is
/// shorter than a DNS header, or is itself a response (answering those
/// would let two servers loop). Anything else gets a response, an error
/// code if need be.
pub fn answer(query: &[u8], cluster: &Cluster) -> Option<Vec<u8>> {
    respond(query, cluster, usize::from(u16::MAX))
}

/// Like [`answer`], for a query that came over UDP: a response larger than
/// the client's UDP payload size (512 bytes, or the EDNS size it
/// advertised, at most [`MAX_UDP_PAYLOAD`]) is sent with the truncation flag
/// and the question only, so the client retries over TCP.
pub fn answer_udp(query: &[u8], cluster: &Cluster) -> Option<Vec<u8>> {
    respond(query, cluster, CLASSIC_UDP_PAYLOAD)
}

/// Answers `query`; `limit` is the response size allowed without EDNS.
fn respond(query: &[u8], cluster: &Cluster, limit: usize) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(query)).ok()?;
    if header.metadata.message_type != MessageType::Query {
        return None;
    }
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(e) => {
            log::debug!("dns: malformed query {}: {e}", header.metadata.id);
            let mut response = Message::error_msg(
                header.metadata.id,
                header.metadata.op_code,
                ResponseCode::FormErr,
            );
            response.metadata.recursion_desired = header.metadata.recursion_desired;
            return encode(&response, limit);
        }
    };
    let response = resolve(&request, cluster);
    let limit = match &request.edns {
        Some(edns) => usize::from(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD)).max(limit),
        None => limit,
    };
    encode(&response, limit)
}

/// Encodes `response`; if it exceeds `limit` bytes, sends the header and
/// question only, with the truncation flag.
fn encode(response: &Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = match response.to_vec() {
        Ok(b) => b,
        Err(e) => {
            log::warn!("dns: cannot encode response: {e}");
            let mut failure = Message::error_msg(
                response.metadata.id,
                response.metadata.op_code,
                ResponseCode::ServFail,
            );
            failure.queries = response.queries.clone();
            return failure.to_vec().ok();
        }
    };
    if bytes.len() <= limit {
        return Some(bytes);
    }
    let mut truncated = response.clone();
    truncated.metadata.truncation = true;
    truncated.answers.clear();
    truncated.authorities.clear();
    truncated.additionals.clear();
    truncated.to_vec().ok()
}

/// The response to a parsed query.
fn resolve(request: &Message, cluster: &Cluster) -> Message {
    let meta = &request.metadata;
    let mut response = Message::response(meta.id, meta.op_code);
    response.metadata.recursion_desired = meta.recursion_desired;
    response.metadata.checking_disabled = meta.checking_disabled;
    response.queries = request.queries.clone();
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(MAX_UDP_PAYLOAD);
        response.edns = Some(ours);
        if edns.version() > 0 {
            response.metadata.response_code = ResponseCode::BADVERS;
            return response;
        }
    }
    if meta.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return response;
    }
    let [query] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    if !matches!(query.query_class, DNSClass::IN | DNSClass::ANY) {
        response.metadata.response_code = ResponseCode::Refused;
        return response;
    }
    let zone = Zone::new(cluster);
    if zone.relative(&query.name).is_none() {
        log::debug!("dns: refused {} (outside {})", query.name, zone.domain);
        response.metadata.response_code = ResponseCode::Refused;
        return response;
    }
    response.metadata.authoritative = true;
    zone.answer(query, &mut response);
    response
}

/// What the zone holds at one name.
#[derive(Debug, Default)]
struct Entry {
    /// Record data at the name, of any type.
    records: Vec<RData>,
    /// Records for the additional section (the addresses of SRV and NS targets).
    additional: Vec<Record>,
}

/// The cluster seen as the DNS zone `cluster.dns_domain`.
struct Zone<'a> {
    cluster: &'a Cluster,
    /// The domain's labels, lowercase (`["cluster", "local"]`).
    domain_labels: Vec<String>,
    /// The domain, for printing and SOA/NS names.
    domain: String,
}

impl<'a> Zone<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        let domain = cluster
            .dns_domain
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
    fn relative(&self, name: &Name) -> Option<Vec<String>> {
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
    fn answer(&self, query: &Query, response: &mut Message) {
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
        let c = self.cluster;
        BUILTIN_NAMESPACES.contains(&ns)
            || c.pods.iter().any(|p| p.namespace == ns)
            || c.services.iter().any(|s| s.namespace == ns)
            || c.deployments.iter().any(|d| d.namespace == ns)
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
fn parse_dashed(label: &str) -> Option<Ipv4Addr> {
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
fn dashed(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::{ContainerPort, Labels, Pod, SessionAffinity};
    use std::collections::BTreeMap;
    use std::str::FromStr;

    const NGINX_VIP: Ipv4Addr = Ipv4Addr::new(10, 101, 182, 177);
    const DNS_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn port(name: Option<&str>, protocol: Protocol, port: u16) -> ServicePort {
        ServicePort {
            name: name.map(str::to_owned),
            protocol,
            port,
            target_port: TargetPort::Number(port),
            node_port: None,
        }
    }

    fn service(name: &str, namespace: &str, selector: Labels, ports: Vec<ServicePort>) -> Service {
        Service {
            name: name.into(),
            namespace: namespace.into(),
            labels: BTreeMap::new(),
            selector,
            service_type: ServiceType::ClusterIP,
            cluster_ip: Ipv4Addr::UNSPECIFIED,
            headless: false,
            external_name: None,
            ports,
            session_affinity: SessionAffinity::None,
            external_traffic_policy: Default::default(),
            internal_traffic_policy: Default::default(),
            external_ips: vec![],
            load_balancer_ips: vec![],
        }
    }

    fn pod(name: &str, namespace: &str, ip: Ipv4Addr, labels: Labels) -> Pod {
        Pod {
            name: name.into(),
            namespace: namespace.into(),
            labels,
            ip,
            node: "mac-worker".into(),
            ready: true,
            owner: None,
            ports: vec![ContainerPort {
                name: Some("dns".into()),
                container_port: 53,
                protocol: Protocol::Udp,
            }],
        }
    }

    /// config.toml plus the cluster DNS, a headless, an ExternalName and a
    /// named-port Service.
    fn cluster() -> Cluster {
        let mut c =
            control::config::parse(include_str!("../../config.toml")).expect("default config");
        c.services.retain(|s| s.namespace != "kube-system");
        c.pods.retain(|p| !p.is_router_hosted());
        let dns = labels(&[("k8s-app", "kube-dns")]);
        let mut kube_dns = service(
            "kube-dns",
            "kube-system",
            dns.clone(),
            vec![
                port(Some("dns"), Protocol::Udp, 53),
                port(Some("dns-tcp"), Protocol::Tcp, 53),
            ],
        );
        kube_dns.cluster_ip = DNS_VIP;
        c.services.push(kube_dns);
        c.pods.push(pod(
            "coredns-mac-worker",
            "kube-system",
            Ipv4Addr::new(10, 10, 1, 53),
            dns,
        ));
        let nginx = labels(&[("app", "nginx-deployment")]);
        let mut headless = service(
            "nginx-headless",
            "default",
            nginx.clone(),
            vec![
                port(Some("http"), Protocol::Tcp, 80),
                port(Some("udp-echo"), Protocol::Udp, 9000),
            ],
        );
        headless.headless = true;
        c.services.push(headless);
        let mut empty = service(
            "empty-headless",
            "default",
            labels(&[("app", "none")]),
            vec![port(Some("http"), Protocol::Tcp, 80)],
        );
        empty.headless = true;
        c.services.push(empty);
        for (name, target) in [
            ("external", "example.com"),
            ("alias", "nginx-svc.default.svc.cluster.local"),
            ("dangling", "nothing.default.svc.cluster.local"),
        ] {
            let mut ext = service(name, "default", BTreeMap::new(), vec![]);
            ext.service_type = ServiceType::ExternalName;
            ext.external_name = Some(target.into());
            c.services.push(ext);
        }
        let mut named = service(
            "web",
            "default",
            nginx,
            vec![port(Some("http"), Protocol::Tcp, 8080)],
        );
        named.cluster_ip = Ipv4Addr::new(10, 96, 0, 80);
        c.services.push(named);
        c
    }

    fn nginx_ips(c: &Cluster) -> BTreeSet<Ipv4Addr> {
        c.pods
            .iter()
            .filter(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
            .map(|p| p.ip)
            .collect()
    }

    fn query(name: &str, qtype: RecordType) -> Message {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
        m
    }

    fn ask_message(c: &Cluster, m: &Message) -> Message {
        let bytes = answer(&m.to_vec().expect("encode"), c).expect("a response");
        Message::from_vec(&bytes).expect("decodable response")
    }

    fn ask(c: &Cluster, name: &str, qtype: RecordType) -> Message {
        ask_message(c, &query(name, qtype))
    }

    fn a_records(records: &[Record]) -> BTreeSet<Ipv4Addr> {
        records
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(A(ip)) => Some(*ip),
                _ => None,
            })
            .collect()
    }

    fn srv_records(records: &[Record]) -> Vec<(u16, u16, u16, String)> {
        let mut out: Vec<_> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    #[track_caller]
    fn assert_negative(r: &Message, code: ResponseCode) {
        assert_eq!(r.metadata.response_code, code, "{r}");
        assert!(r.answers.is_empty(), "{r}");
        assert!(r.metadata.authoritative);
        let [soa] = r.authorities.as_slice() else {
            panic!("no SOA in authority: {r}");
        };
        assert_eq!(soa.name.to_ascii(), "cluster.local.");
        assert_eq!(soa.ttl, TTL);
        let RData::SOA(soa) = &soa.data else {
            panic!("not an SOA: {soa}");
        };
        assert_eq!(soa.mname.to_ascii(), "ns.dns.cluster.local.");
        assert_eq!(soa.minimum, TTL);
    }

    #[test]
    fn service_a_record_is_the_cluster_ip() {
        let c = cluster();
        let r = ask(&c, "nginx-svc.default.svc.cluster.local.", RecordType::A);
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative);
        assert!(r.metadata.recursion_desired, "RD is copied");
        assert!(!r.metadata.recursion_available);
        assert_eq!(
            r.queries,
            query("nginx-svc.default.svc.cluster.local.", RecordType::A).queries
        );
        let [a] = r.answers.as_slice() else {
            panic!("{r}");
        };
        assert_eq!(a.data, RData::A(A(NGINX_VIP)));
        assert_eq!(a.ttl, TTL);
        assert_eq!(a.name.to_ascii(), "nginx-svc.default.svc.cluster.local.");
        assert!(r.authorities.is_empty() && r.additionals.is_empty());
    }

    #[test]
    fn matching_ignores_case_and_answers_with_the_name_as_asked() {
        let c = cluster();
        let r = ask(&c, "NGINX-svc.Default.SVC.cluster.LOCAL.", RecordType::A);
        assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
        assert_eq!(
            r.answers[0].name.to_ascii(),
            "NGINX-svc.Default.SVC.cluster.LOCAL."
        );
        assert_eq!(
            r.queries[0].name.to_ascii(),
            "NGINX-svc.Default.SVC.cluster.LOCAL."
        );
    }

    #[test]
    fn aaaa_of_an_existing_name_is_empty() {
        let c = cluster();
        for name in [
            "nginx-svc.default.svc.cluster.local.",
            "10-10-1-100.default.pod.cluster.local.",
        ] {
            let r = ask(&c, name, RecordType::AAAA);
            assert_negative(&r, ResponseCode::NoError);
        }
    }

    #[test]
    fn missing_names_are_nxdomain_with_the_soa() {
        let c = cluster();
        for name in [
            "nothing.default.svc.cluster.local.",
            // Namespaces are part of the name.
            "nginx-svc.kube-system.svc.cluster.local.",
            "nginx-svc.default.svc.cluster.local.default.svc.cluster.local.",
            "no-such-namespace.svc.cluster.local.",
            "x.cluster.local.",
            "a.b.c.d.e.f.svc.cluster.local.",
            "empty-headless.default.svc.cluster.local.",
        ] {
            assert_negative(&ask(&c, name, RecordType::A), ResponseCode::NXDomain);
        }
    }

    #[test]
    fn namespaces_exist_without_records() {
        let c = cluster();
        for name in [
            "default.svc.cluster.local.",
            "kube-system.svc.cluster.local.",
            "kube-public.svc.cluster.local.",
            "kube-node-lease.pod.cluster.local.",
            "svc.cluster.local.",
            "pod.cluster.local.",
        ] {
            assert_negative(&ask(&c, name, RecordType::A), ResponseCode::NoError);
        }
        let mut other = c.clone();
        other.pods[0].namespace = "team-a".into();
        assert_negative(
            &ask(&other, "team-a.svc.cluster.local.", RecordType::A),
            ResponseCode::NoError,
        );
    }

    #[test]
    fn names_outside_the_domain_are_refused() {
        let c = cluster();
        for name in ["example.com.", "local.", "cluster.local.example.com.", "."] {
            let r = ask(&c, name, RecordType::A);
            assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
            assert!(!r.metadata.authoritative && !r.metadata.recursion_available);
            assert!(r.answers.is_empty() && r.authorities.is_empty());
        }
    }

    #[test]
    fn srv_for_named_ports() {
        let c = cluster();
        let r = ask(
            &c,
            "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
            RecordType::SRV,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            srv_records(&r.answers),
            vec![(0, 100, 53, "kube-dns.kube-system.svc.cluster.local.".into())]
        );
        assert_eq!(r.additionals.len(), 1);
        assert_eq!(
            r.additionals[0].name.to_ascii(),
            "kube-dns.kube-system.svc.cluster.local."
        );
        assert_eq!(a_records(&r.additionals), BTreeSet::from([DNS_VIP]));
        let r = ask(
            &c,
            "_DNS-TCP._TCP.kube-dns.kube-system.svc.cluster.local.",
            RecordType::SRV,
        );
        assert_eq!(srv_records(&r.answers).len(), 1);
        // Service port, not target port.
        let r = ask(
            &c,
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
        );
        assert_eq!(
            srv_records(&r.answers),
            vec![(0, 100, 8080, "web.default.svc.cluster.local.".into())]
        );
        // Wrong protocol, unknown or unnamed port.
        for name in [
            "_dns._tcp.kube-dns.kube-system.svc.cluster.local.",
            "_nope._udp.kube-dns.kube-system.svc.cluster.local.",
            "_http._tcp.nginx-svc.default.svc.cluster.local.",
            "_dns._sctp.kube-dns.kube-system.svc.cluster.local.",
            "_http._tcp.external.default.svc.cluster.local.",
        ] {
            assert_negative(&ask(&c, name, RecordType::SRV), ResponseCode::NXDomain);
        }
        // The protocol label alone is an empty non-terminal; an A query of
        // an SRV name has no data.
        assert_negative(
            &ask(
                &c,
                "_udp.kube-dns.kube-system.svc.cluster.local.",
                RecordType::SRV,
            ),
            ResponseCode::NoError,
        );
        assert_negative(
            &ask(
                &c,
                "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
                RecordType::A,
            ),
            ResponseCode::NoError,
        );
    }

    #[test]
    fn headless_service_answers_with_its_ready_endpoints() {
        let mut c = cluster();
        let ips = nginx_ips(&c);
        assert_eq!(ips.len(), 2);
        let r = ask(
            &c,
            "nginx-headless.default.svc.cluster.local.",
            RecordType::A,
        );
        assert_eq!(a_records(&r.answers), ips);
        assert_eq!(r.answers.len(), 2, "deduplicated over the two ports: {r}");
        let r = ask(
            &c,
            "_http._tcp.nginx-headless.default.svc.cluster.local.",
            RecordType::SRV,
        );
        let expected: Vec<_> = ips
            .iter()
            .map(|ip| {
                (
                    0,
                    50,
                    80,
                    format!("{}.nginx-headless.default.svc.cluster.local.", dashed(*ip)),
                )
            })
            .collect();
        assert_eq!(srv_records(&r.answers), expected);
        assert_eq!(a_records(&r.additionals), ips);
        for ip in &ips {
            let name = format!("{}.nginx-headless.default.svc.cluster.local.", dashed(*ip));
            assert_eq!(
                a_records(&ask(&c, &name, RecordType::A).answers),
                BTreeSet::from([*ip])
            );
        }
        assert_negative(
            &ask(
                &c,
                "10-10-9-9.nginx-headless.default.svc.cluster.local.",
                RecordType::A,
            ),
            ResponseCode::NXDomain,
        );
        // Not-ready pods are not endpoints.
        let first = *ips.iter().next().expect("an ip");
        for p in c.pods.iter_mut().filter(|p| p.ip == first) {
            p.ready = false;
        }
        let r = ask(
            &c,
            "nginx-headless.default.svc.cluster.local.",
            RecordType::A,
        );
        assert_eq!(a_records(&r.answers).len(), 1);
        assert!(!a_records(&r.answers).contains(&first));
    }

    #[test]
    fn external_name_is_a_cname() {
        let c = cluster();
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
            let r = ask(&c, "external.default.svc.cluster.local.", qtype);
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            let [cname] = r.answers.as_slice() else {
                panic!("{r}");
            };
            assert_eq!(
                cname.data,
                RData::CNAME(CNAME(Name::from_str("example.com.").expect("name")))
            );
        }
        // Inside the cluster domain, the chain is followed.
        let r = ask(&c, "alias.default.svc.cluster.local.", RecordType::A);
        assert_eq!(r.answers.len(), 2, "{r}");
        assert_eq!(
            r.answers[1].name.to_ascii(),
            "nginx-svc.default.svc.cluster.local."
        );
        assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
        let r = ask(&c, "dangling.default.svc.cluster.local.", RecordType::A);
        assert_eq!(r.answers.len(), 1, "{r}");
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn pod_records_any_address_in_an_existing_namespace() {
        let c = cluster();
        let r = ask(&c, "10-10-1-100.default.pod.cluster.local.", RecordType::A);
        assert_eq!(
            a_records(&r.answers),
            BTreeSet::from([Ipv4Addr::new(10, 10, 1, 100)])
        );
        let r = ask(&c, "1-2-3-4.kube-system.pod.cluster.local.", RecordType::A);
        assert_eq!(
            a_records(&r.answers),
            BTreeSet::from([Ipv4Addr::new(1, 2, 3, 4)])
        );
        for name in [
            "10-10-1-100.nope.pod.cluster.local.",
            "10-10-1.default.pod.cluster.local.",
            "10-10-1-300.default.pod.cluster.local.",
            "10-10-1-1-1.default.pod.cluster.local.",
            "10-10--1.default.pod.cluster.local.",
            "client.default.pod.cluster.local.",
        ] {
            assert_negative(&ask(&c, name, RecordType::A), ResponseCode::NXDomain);
        }
    }

    #[test]
    fn apex_has_soa_and_ns() {
        let c = cluster();
        let r = ask(&c, "cluster.local.", RecordType::SOA);
        assert!(matches!(r.answers.as_slice(), [soa] if matches!(soa.data, RData::SOA(_))));
        let r = ask(&c, "cluster.local.", RecordType::NS);
        let [ns] = r.answers.as_slice() else {
            panic!("{r}");
        };
        assert_eq!(
            ns.data,
            RData::NS(NS(Name::from_str("ns.dns.cluster.local.").expect("name")))
        );
        assert_eq!(a_records(&r.additionals), BTreeSet::from([DNS_VIP]));
        let r = ask(&c, "ns.dns.cluster.local.", RecordType::A);
        assert_eq!(a_records(&r.answers), BTreeSet::from([DNS_VIP]));
        assert_negative(
            &ask(&c, "cluster.local.", RecordType::A),
            ResponseCode::NoError,
        );
    }

    #[test]
    fn the_domain_comes_from_the_cluster() {
        let mut c = cluster();
        c.dns_domain = "k8s.example".into();
        let r = ask(&c, "nginx-svc.default.svc.k8s.example.", RecordType::A);
        assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
        let r = ask(&c, "nginx-svc.default.svc.cluster.local.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn any_returns_every_record() {
        let c = cluster();
        let r = ask(
            &c,
            "kube-dns.kube-system.svc.cluster.local.",
            RecordType::ANY,
        );
        assert_eq!(a_records(&r.answers), BTreeSet::from([DNS_VIP]));
    }

    #[test]
    fn errors_formerr_notimp_and_nothing() {
        let c = cluster();
        // Two questions.
        let mut two = query("nginx-svc.default.svc.cluster.local.", RecordType::A);
        two.add_query(Query::query(
            Name::from_str("a.cluster.local.").expect("name"),
            RecordType::A,
        ));
        let r = ask_message(&c, &two);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // No question.
        let none = Message::new(7, MessageType::Query, OpCode::Query);
        assert_eq!(
            ask_message(&c, &none).metadata.response_code,
            ResponseCode::FormErr
        );
        // Header, then garbage.
        let mut bytes = query("nginx-svc.default.svc.cluster.local.", RecordType::A)
            .to_vec()
            .expect("encode");
        bytes.truncate(20);
        let r = Message::from_vec(&answer(&bytes, &c).expect("a response")).expect("decode");
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(r.metadata.id, 0x1234);
        // Not a standard query.
        let mut notify = query("cluster.local.", RecordType::SOA);
        notify.metadata.op_code = OpCode::Notify;
        let r = ask_message(&c, &notify);
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(r.metadata.op_code, OpCode::Notify);
        // Another class.
        let mut chaos = query("version.bind.", RecordType::TXT);
        chaos.queries[0].query_class = DNSClass::CH;
        assert_eq!(
            ask_message(&c, &chaos).metadata.response_code,
            ResponseCode::Refused
        );
        // Too short for a header, or a response: nothing.
        assert_eq!(answer(&bytes[..11], &c), None);
        let mut response = query("cluster.local.", RecordType::SOA);
        response.metadata.message_type = MessageType::Response;
        assert_eq!(answer(&response.to_vec().expect("encode"), &c), None);
    }

    #[test]
    fn edns_is_answered_with_edns_and_other_versions_get_badvers() {
        let c = cluster();
        let mut q = query("nginx-svc.default.svc.cluster.local.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        q.edns = Some(edns.clone());
        let r = ask_message(&c, &q);
        assert_eq!(
            r.edns.as_ref().map(Edns::max_payload),
            Some(MAX_UDP_PAYLOAD)
        );
        assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
        edns.set_version(1);
        q.edns = Some(edns);
        let r = ask_message(&c, &q);
        // BADVERS (16) needs the EDNS extended code; the crate decodes 16 as BADSIG.
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert_eq!(u16::from(ResponseCode::BADVERS), 16);
        assert!(r.answers.is_empty());
    }

    #[test]
    fn large_udp_answers_are_truncated() {
        let mut c = cluster();
        let template = c
            .pods
            .iter()
            .find(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
            .expect("an nginx pod")
            .clone();
        for i in 0..50u8 {
            c.pods.push(Pod {
                name: format!("extra-{i}"),
                ip: Ipv4Addr::new(10, 10, 1, 120 + i),
                ..template.clone()
            });
        }
        let q = query("nginx-headless.default.svc.cluster.local.", RecordType::A);
        let bytes = q.to_vec().expect("encode");
        let udp = answer_udp(&bytes, &c).expect("a response");
        assert!(udp.len() <= 512);
        let r = Message::from_vec(&udp).expect("decode");
        assert!(r.metadata.truncation, "{r}");
        assert!(r.answers.is_empty());
        assert_eq!(r.queries, q.queries);
        let tcp = Message::from_vec(&answer(&bytes, &c).expect("a response")).expect("decode");
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 52);
        // An EDNS client's larger buffer fits more, up to our limit.
        let mut q = q;
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        q.edns = Some(edns);
        let bytes = q.to_vec().expect("encode");
        let udp = answer_udp(&bytes, &c).expect("a response");
        assert!(udp.len() <= usize::from(MAX_UDP_PAYLOAD));
        let r = Message::from_vec(&udp).expect("decode");
        assert_eq!(r.answers.len(), 52, "{} bytes", udp.len());
        assert!(!r.metadata.truncation && udp.len() > 512);
        // A small answer is not truncated over UDP.
        let q = query("nginx-svc.default.svc.cluster.local.", RecordType::A);
        let r =
            Message::from_vec(&answer_udp(&q.to_vec().expect("encode"), &c).expect("a response"))
                .expect("decode");
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 1);
    }

    #[test]
    fn dashed_addresses() {
        assert_eq!(parse_dashed("10-10-1-5"), Some(Ipv4Addr::new(10, 10, 1, 5)));
        assert_eq!(dashed(Ipv4Addr::new(10, 10, 1, 5)), "10-10-1-5");
        for bad in [
            "10-10-1",
            "10-10-1-5-6",
            "a-b-c-d",
            "10-10-1-256",
            "+1-1-1-1",
            "1-1-1-0001",
        ] {
            assert_eq!(parse_dashed(bad), None, "{bad}");
        }
    }
}
