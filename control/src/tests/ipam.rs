use super::*;

// ---------------------------------------------------------- IPAM

#[test]
fn pod_ips_round_robin_from_next_pod_ip_wrapping_around() {
    let text = |next: &str, extra: &str| {
        BASE.replace(
            "podCIDR = \"10.10.1.0/24\"",
            &format!("podCIDR = \"10.10.1.0/24\"\n{next}"),
        ) + "[[deployments]]\nname = \"d\"\nreplicas = 6\nlabels = { app = \"d\" }\n"
            + extra
    };
    let c = ok(&text(
        "nextPodIP = \"10.10.1.252\"",
        "[[pods]]\nname = \"fixed\"\nip = \"10.10.1.253\"\n",
    ));
    let mut ips: Vec<Ipv4Addr> = c
        .pods
        .iter()
        .filter(|p| p.owner.is_some())
        .map(|p| p.ip)
        .collect();
    ips.sort();
    let want: Vec<Ipv4Addr> = [2, 3, 4, 5, 252, 254]
        .into_iter()
        .map(|h| Ipv4Addr::new(10, 10, 1, h))
        .collect();
    assert_eq!(ips, want);
    assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 6)));
    // The first allocation after .254 wraps to .2.
    let c = ok(&text("nextPodIP = \"10.10.1.254\"", ""));
    assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 7)));
    // Without the key: from .2, and nothing allocated leaves it unset.
    let c = ok(&text("", ""));
    assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 8)));
    let c = ok(BASE);
    assert_eq!(c.nodes[0].next_pod_ip, None);
    let c = ok(&BASE.replace(
        "podCIDR = \"10.10.1.0/24\"",
        "podCIDR = \"10.10.1.0/24\"\nnextPodIP = \"10.10.1.9\"",
    ));
    assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 9)));
}

#[test]
fn next_pod_ip_rules() {
    let node = |ip: &str| {
        BASE.replace(
            "podCIDR = \"10.10.1.0/24\"",
            &format!("podCIDR = \"10.10.1.0/24\"\nnextPodIP = \"{ip}\""),
        )
    };
    bad(
        &node("10.10.2.5"),
        &[
            "nodes[0] \"n1\": nextPodIP \"10.10.2.5\"",
            "outside podCIDR 10.10.1.0/24",
        ],
    );
    bad(&node("10.10.1.1"), &["nextPodIP \"10.10.1.1\"", "gateway"]);
    bad(
        &node("10.10.1.255"),
        &["nextPodIP \"10.10.1.255\"", "broadcast"],
    );
    bad(&node("ten"), &["nodes[0] \"n1\": nextPodIP \"ten\""]);
    // A full range still fails, naming the pod that did not fit.
    let full = BASE.replace("10.10.1.0/24", "10.10.1.0/29").replace(
        "podCIDR = \"10.10.1.0/29\"",
        "podCIDR = \"10.10.1.0/29\"\nnextPodIP = \"10.10.1.5\"",
    ) + "[[deployments]]\nname = \"d\"\nreplicas = 6\nlabels = { app = \"d\" }\n";
    bad(
        &full,
        &[
            "podCIDR 10.10.1.0/29",
            "deployments[0] \"default/d\" replica 5",
        ],
    );
}
