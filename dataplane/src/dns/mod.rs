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

pub use hickory_proto as proto;

use proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use proto::rr::DNSClass;
use proto::serialize::binary::{BinDecodable, BinDecoder};

use cluster::{Cluster, Endpoint, Service, ServicePort};
use zone::Zone;

use crate::model::Model;

mod zone;

/// What the zone reads: a whole [`Cluster`] (scanned per query; for tests
/// and tools), or a node's [`Model`] (indexed by key, kept up to date one
/// change at a time, what the router-hosted DNS pods answer from).
pub trait ZoneSource {
    /// The cluster DNS domain (`cluster.local`).
    fn dns_domain(&self) -> &str;
    /// The Service `namespace/name`.
    fn service(&self, namespace: &str, name: &str) -> Option<&Service>;
    /// The endpoints of one port of `svc` (see [`Cluster::endpoints`]).
    fn endpoints(&self, svc: &Service, port: &ServicePort) -> Vec<Endpoint>;
    /// Whether namespace `ns` exists (see the module documentation).
    fn namespace_exists(&self, ns: &str) -> bool;
}

impl ZoneSource for Cluster {
    fn dns_domain(&self) -> &str {
        &self.dns_domain
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        Cluster::service(self, namespace, name)
    }

    fn endpoints(&self, svc: &Service, port: &ServicePort) -> Vec<Endpoint> {
        Cluster::endpoints(self, svc, port)
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.namespaces().contains(ns)
    }
}

impl ZoneSource for Model {
    fn dns_domain(&self) -> &str {
        &self.dns_domain
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        Model::service(self, namespace, name)
    }

    fn endpoints(&self, svc: &Service, port: &ServicePort) -> Vec<Endpoint> {
        Model::endpoints(self, svc, port)
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        Model::namespace_exists(self, ns)
    }
}

/// TTL of every record, and the negative-caching TTL (CoreDNS's default `ttl 5`).
pub const TTL: u32 = 5;

/// The largest UDP response this server sends to an EDNS client (the DNS
/// flag day's 1232 bytes, CoreDNS's default); clients without EDNS get 512.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The largest UDP response to a client without EDNS (RFC 1035).
const CLASSIC_UDP_PAYLOAD: usize = 512;

/// Answers one DNS query (a whole message, as carried over TCP) from
/// `cluster` (a [`Cluster`] or a [`Model`]). The response is not size-limited: use [`answer_udp`] for UDP.
///
/// Returns `None` only when there is nothing to answer: the message is
/// shorter than a DNS header, or is itself a response (answering those
/// would let two servers loop). Anything else gets a response, an error
/// code if need be.
pub fn answer(query: &[u8], cluster: &impl ZoneSource) -> Option<Vec<u8>> {
    respond(query, cluster, usize::from(u16::MAX))
}

/// Like [`answer`], for a query that came over UDP: a response larger than
/// the client's UDP payload size (512 bytes, or the EDNS size it
/// advertised, at most [`MAX_UDP_PAYLOAD`]) is sent with the truncation flag
/// and the question only, so the client retries over TCP.
pub fn answer_udp(query: &[u8], cluster: &impl ZoneSource) -> Option<Vec<u8>> {
    respond(query, cluster, CLASSIC_UDP_PAYLOAD)
}

/// Answers `query`; `limit` is the response size allowed without EDNS.
fn respond(query: &[u8], cluster: &dyn ZoneSource, limit: usize) -> Option<Vec<u8>> {
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
    let bytes = truncated.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    // Even the question does not fit (a name cannot make that happen with
    // one question, but stay within the limit whatever comes).
    truncated.queries.clear();
    truncated.to_vec().ok()
}

/// Makes `response` a FORMERR without questions.
fn formerr_without_questions(response: &mut Message) {
    response.queries.clear();
    response.metadata.response_code = ResponseCode::FormErr;
}

/// The response to a parsed query.
fn resolve(request: &Message, cluster: &dyn ZoneSource) -> Message {
    let meta = &request.metadata;
    let mut response = Message::response(meta.id, meta.op_code);
    response.metadata.recursion_desired = meta.recursion_desired;
    response.metadata.checking_disabled = meta.checking_disabled;
    if request.queries.len() != 1 {
        // RFC 9619: QDCOUNT must be 1, whatever the opcode; FORMERR
        // without echoing the questions, so the answer to a query of many
        // questions cannot outgrow the UDP limit (found by the dns fuzz
        // target: 15 questions made a 1,245-byte UDP answer).
        formerr_without_questions(&mut response);
        return response;
    }
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
        formerr_without_questions(&mut response);
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

#[cfg(test)]
mod tests;
