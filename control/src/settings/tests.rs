//! The settings file: Kubernetes mode, the object file unchanged, and the
//! errors a user sees.

use std::path::{Path, PathBuf};

use cluster::Overlay;

use super::*;

fn parse_in(text: &str, flag: Option<&Path>) -> Result<RouterConfig, SettingsError> {
    parse(text, "router.toml", Path::new("/etc/ksr"), flag)
}

fn settings(text: &str) -> RouterSettings {
    match parse_in(text, None) {
        Ok(RouterConfig::Kubernetes(s)) => s,
        other => panic!("expected Kubernetes mode, got {other:?}"),
    }
}

fn error(text: &str) -> String {
    match parse_in(text, None) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("expected an error, got {c:?}"),
    }
}

#[test]
fn kubernetes_mode_with_defaults() {
    let s = settings("[kubernetes]\n[cluster]\npodCIDR = \"10.10.0.0/16\"\n");
    assert_eq!(s.kubernetes.kubeconfig, None);
    assert_eq!(s.cluster.pod_cidr.to_string(), "10.10.0.0/16");
    assert_eq!(s.cluster.service_cidr.to_string(), "10.96.0.0/12");
    assert_eq!(s.cluster.dns_domain, "cluster.local");
    assert_eq!(s.cluster.overlay, Overlay::default());
    let c = s.cluster.empty_cluster();
    assert_eq!(c.endpoint_slices, Some(Vec::new()));
    assert!(c.nodes.is_empty() && c.services.is_empty());
}

#[test]
fn every_cluster_key_and_a_relative_kubeconfig() {
    let s = settings(
        "[kubernetes]\nkubeconfig = \"router.kubeconfig\"\n[cluster]\npodCIDR = \"10.10.0.0/16\"\nserviceCIDR = \"10.100.0.0/16\"\ndnsDomain = \"example.org\"\nvxlanVNI = 7\nvxlanPort = 4789\nunderlayMTU = 9000\n",
    );
    assert_eq!(
        s.kubernetes.kubeconfig,
        Some(PathBuf::from("/etc/ksr/router.kubeconfig"))
    );
    assert_eq!(s.cluster.service_cidr.to_string(), "10.100.0.0/16");
    assert_eq!(s.cluster.dns_domain, "example.org");
    assert_eq!(
        s.cluster.overlay,
        Overlay {
            vni: 7,
            port: 4789,
            underlay_mtu: 9000
        }
    );
}

#[test]
fn the_command_line_kubeconfig_wins_and_selects_kubernetes_mode() {
    let text = "[cluster]\npodCIDR = \"10.10.0.0/16\"\n";
    let flag = Path::new("/root/k.conf");
    match parse_in(text, Some(flag)) {
        Ok(RouterConfig::Kubernetes(s)) => {
            assert_eq!(s.kubernetes.kubeconfig.as_deref(), Some(flag));
        }
        other => panic!("{other:?}"),
    }
    let text = "[kubernetes]\nkubeconfig = \"a\"\n[cluster]\npodCIDR = \"10.10.0.0/16\"\n";
    match parse_in(text, Some(flag)) {
        Ok(RouterConfig::Kubernetes(s)) => {
            assert_eq!(s.kubernetes.kubeconfig.as_deref(), Some(flag));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_object_file_is_read_as_before() {
    let text = "[cluster]\npodCIDR = \"10.10.0.0/16\"\n[[nodes]]\nname = \"n1\"\naddress = \"192.168.1.1\"\npodCIDR = \"10.10.0.0/24\"\n";
    match parse_in(text, None) {
        Ok(RouterConfig::Objects(c)) => {
            assert_eq!(c, crate::parse(text).expect("object file"));
            assert_eq!(c.endpoint_slices, None);
        }
        other => panic!("{other:?}"),
    }
    // And its errors are the object file's.
    let bad = "[cluster]\npodCIDR = \"10.10.0.0/16\"\n";
    assert_eq!(
        parse_in(bad, None)
            .map(|_| ())
            .expect_err("refused")
            .to_string(),
        crate::parse(bad).expect_err("refused").to_string()
    );
}

#[test]
fn objects_beside_kubernetes_are_refused_naming_them() {
    let e = error("[kubernetes]\n[cluster]\npodCIDR = \"10.10.0.0/16\"\n[[nodes]]\nname = \"n1\"\naddress = \"192.168.1.1\"\npodCIDR = \"10.10.0.0/24\"\n[[services]]\nname = \"s\"\n");
    assert!(
        e.starts_with("router.toml: holds [[nodes]], [[services]] beside [kubernetes]"),
        "{e}"
    );
    assert!(e.contains("kubectl apply -f"), "{e}");
}

#[test]
fn cluster_keys_are_validated_as_in_the_object_file() {
    let e = error("[kubernetes]\n[cluster]\npodCIDR = \"10.10.0.1/16\"\n");
    assert_eq!(
        e,
        "cluster.podCIDR \"10.10.0.1/16\" has host bits set (did you mean 10.10.0.0/16?)"
    );
    let e = error("[kubernetes]\n[cluster]\npodCIDR = \"10.10.0.0/16\"\nvxlanPort = 30000\n");
    assert!(
        e.starts_with("cluster.vxlanPort 30000 is inside the NodePort range"),
        "{e}"
    );
    let e = error("[kubernetes]\n[cluster]\npodCIDR = \"10.96.0.0/16\"\n");
    assert!(e.contains("overlap"), "{e}");
    let e = error("[kubernetes]\n[cluster]\npodCIDR = \"10.10.0.0/16\"\nunderlayMTU = 100\n");
    assert!(e.contains("cluster.underlayMTU"), "{e}");
}

#[test]
fn unknown_keys_are_errors() {
    let e = error("[kubernetes]\nkubeconfg = \"x\"\n[cluster]\npodCIDR = \"10.10.0.0/16\"\n");
    assert!(e.contains("unknown field `kubeconfg`"), "{e}");
    let e = error("[kubernetes]\n[cluster]\npodCIDR = \"10.10.0.0/16\"\n[proxy]\n");
    assert!(e.contains("unknown field `proxy`"), "{e}");
}
