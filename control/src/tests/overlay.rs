use super::*;

// ---------------------------------------------------------- overlay settings

#[test]
fn overlay_defaults_to_flannels_settings() {
    let c = ok(BASE);
    assert_eq!(
        c.overlay,
        Overlay {
            vni: 1,
            port: 8472,
            underlay_mtu: 1500
        }
    );
    assert_eq!(c.overlay.pod_mtu(), 1450);
    let c = ok(&cluster_with(
        "vxlanVNI = 16777215\nvxlanPort = 4789\nunderlayMTU = 9000",
    ));
    assert_eq!(
        c.overlay,
        Overlay {
            vni: 16_777_215,
            port: 4789,
            underlay_mtu: 9000
        }
    );
    let c = ok(&cluster_with(
        "vxlanVNI = 1\nvxlanPort = 1\nunderlayMTU = 1280",
    ));
    assert_eq!(
        c.overlay,
        Overlay {
            vni: 1,
            port: 1,
            underlay_mtu: 1280
        }
    );
    assert_eq!(c.overlay.pod_mtu(), 1230);
}

#[test]
fn overlay_ranges() {
    for (line, msg) in [
        (
            "vxlanVNI = 0",
            "cluster.vxlanVNI 0 is out of range 1-16777215",
        ),
        (
            "vxlanVNI = 16777216",
            "cluster.vxlanVNI 16777216 is out of range 1-16777215",
        ),
        (
            "vxlanVNI = -1",
            "cluster.vxlanVNI -1 is out of range 1-16777215",
        ),
        (
            "vxlanPort = 0",
            "cluster.vxlanPort 0 is out of range 1-65535",
        ),
        (
            "vxlanPort = 65536",
            "cluster.vxlanPort 65536 is out of range 1-65535",
        ),
        (
            "underlayMTU = 1279",
            "cluster.underlayMTU 1279 is out of range 1280-9000",
        ),
        (
            "underlayMTU = 9001",
            "cluster.underlayMTU 9001 is out of range 1280-9000",
        ),
    ] {
        let e = parse(&cluster_with(line)).expect_err(line);
        assert_eq!(e.to_string(), msg);
    }
    bad(
        &cluster_with("vxlanVNI = \"1\""),
        &["invalid config", "vxlanVNI"],
    );
    bad(&cluster_with("vxlanVni = 1"), &["unknown field `vxlanVni`"]);
    bad(
        &cluster_with("underlayMtu = 1500"),
        &["unknown field `underlayMtu`"],
    );
}
