//! The control plane's unit tests, by topic: the default file, allocation,
//! endpoints, refusals, the overlay settings, external traffic, owned pods,
//! IPAM, Service kinds, the TOML writer, apply, delete and readiness, and
//! the validation of state entering from anywhere.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use cluster::{Cluster, Overlay, Pod, ServiceType, SessionAffinity, TargetPort, TrafficPolicy};

use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use cluster::{Labels, Protocol, Service, ServicePort};

use crate::deployments::{safe_encode_u64, SAFE_ALPHABET};
use crate::emit::{quote, toml_key};
use crate::error::SHOWN_MAX;
use crate::*;

mod allocation;
mod defaults;
mod emit;
mod endpoints;
mod external;
mod ipam;
mod overlay;
mod owned_pods;
mod refusals;
mod service_kinds;
mod validation;

const DEFAULT: &str = include_str!("../../../control/tests/fixtures/cluster.toml");

/// A minimal valid cluster; tests append sections to it.
const BASE: &str = r#"
[cluster]
podCIDR = "10.10.0.0/16"
serviceCIDR = "10.96.0.0/12"

[[nodes]]
name = "n1"
address = "192.168.0.1"
podCIDR = "10.10.1.0/24"
"#;

fn ok(text: &str) -> Cluster {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("config should parse, got: {e}\n{text}"),
    }
}

/// Parses `text`, expects an error, and checks that its message contains
/// every one of `needles`. Returns the message.
#[track_caller]
fn bad(text: &str, needles: &[&str]) -> String {
    let msg = match parse(text) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(e) => e.to_string(),
    };
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} should contain {n:?}");
    }
    msg
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

fn host(net: Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + n)
}

fn in_alphabet(s: &str) -> bool {
    s.bytes().all(|b| SAFE_ALPHABET.contains(&b))
}

/// The name the deployment controller gives the k-th pod it generates.
fn generated_name(ns: &str, name: &str, hash: &str, k: u64) -> String {
    let seed = xxh3_64(format!("{ns}/{name}/{hash}/{k}").as_bytes());
    format!("{name}-{hash}-{}", safe_encode_u64(seed, 5))
}

fn pod<'a>(c: &'a Cluster, name: &str) -> &'a Pod {
    c.pod("default", name)
        .unwrap_or_else(|| panic!("pod {name} in {:?}", names(c)))
}

fn names(c: &Cluster) -> Vec<&str> {
    c.pods.iter().map(|p| p.name.as_str()).collect()
}

#[track_caller]
fn round_trips(c: &Cluster) -> String {
    let text = to_toml(c);
    match parse(&text) {
        Ok(back) => assert_eq!(&back, c, "{text}"),
        Err(e) => panic!("to_toml output refused: {e}\n{text}"),
    }
    assert_eq!(to_toml(&ok(&text)), text);
    text
}

/// BASE with `extra` lines added to `[cluster]`.
fn cluster_with(extra: &str) -> String {
    BASE.replace(
        "serviceCIDR = \"10.96.0.0/12\"",
        &format!("serviceCIDR = \"10.96.0.0/12\"\n{extra}"),
    )
}

/// One Service `s` of type `ty` with `fields`, selecting `a=b`, one port.
fn svc_with(ty: &str, fields: &str, ports: &str) -> String {
    with(&format!(
        "[[services]]\nname = \"s\"\ntype = \"{ty}\"\nselector = {{ a = \"b\" }}\n{fields}\nports = [ {ports} ]\n"
    ))
}

fn svc(ports: &str) -> String {
    with(&format!(
        "[[services]]\nname = \"s\"\nselector = {{ a = \"b\" }}\nports = [ {ports} ]\n"
    ))
}

fn svc_typed(ty: &str, ports: &str) -> String {
    with(&format!(
        "[[services]]\nname = \"s\"\ntype = \"{ty}\"\nselector = {{ a = \"b\" }}\nports = [ {ports} ]\n"
    ))
}
