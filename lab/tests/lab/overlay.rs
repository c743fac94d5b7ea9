//! The overlay: pod to pod across nodes, path MTU, the routers' captures, a kernel VXLAN peer.

use lab::env::*;
use lab::objects::*;
use lab::tshark::*;

/// Pod to pod across the overlay both ways, 1,400-byte pings, and the
/// router's "fragmentation needed" for a packet too big for the overlay.
#[test]
fn pod_to_pod_across_nodes() {
    lab::check(|c, k| {
        for (from, to) in [(&k.client, &k.far), (&k.client_master, &k.near)] {
            let out = curl(&from.name, &format!("http://{}/hostname", to.ip), &[]);
            c.check(
                out.status.success() && stdout(&out).trim() == to.name,
                || {
                    format!(
                        "pod to pod across nodes: {} ({}) -> {} ({}, on {}) should answer {}\n{}",
                        from.name,
                        from.node,
                        to.ip,
                        to.name,
                        to.node,
                        to.name,
                        show("curl", &out)
                    )
                },
            );
        }
        // 1,400 bytes of payload with 1,450 (28 bytes of headers on top).
        let mtu = overlay().pod_mtu;
        let fits = (mtu - 50).to_string();
        let out = lab_exec(
            &k.client.name,
            &[
                "ping", "-c", "2", "-W", "2", "-s", &fits, "-M", "do", &k.far.ip,
            ],
        );
        c.check(out.status.success(), || {
        format!(
            "ping -s {fits} -M do from {} to {} (other node) should get its answers (the packets fit the {mtu}-byte overlay)\n{}",
            k.client.name,
            k.far.ip,
            show("ping", &out)
        )
    });
        // From the node itself (kube0 has the underlay's MTU, 1500): 1,488
        // bytes do not fit the overlay; the router answers frag-needed.
        let gw = &k.worker.gateway;
        let too_big = (mtu + 10).to_string();
        let out = lab_exec(
            &k.worker.name,
            &[
                "ping", "-c", "2", "-W", "1", "-M", "do", "-s", &too_big, "-I", gw, &k.far.ip,
            ],
        );
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        c.check(
        !out.status.success()
            && (text.contains(&format!("mtu = {mtu}"))
                || text.contains(&format!("mtu={mtu}"))
                || text.contains("Message too long")),
        || {
            format!(
                "ping -M do -s {too_big} -I {gw} {} from node {} should report the overlay MTU {mtu} (the router's ICMP frag-needed)\n{}",
                k.far.ip,
                k.worker.name,
                show("ping", &out)
            )
        },
    );
    });
}

/// The worker router's capture of one flow from the client to the
/// ClusterIP that the master's pod serves: the SYN in from the TUN device
/// to the ClusterIP, out over the overlay to the pod, the SYN-ACK back out
/// of the TUN device from the ClusterIP; no bad checksums anywhere.
#[test]
fn router_capture() {
    lab::check(|c, k| {
        if find_tool("tshark").is_none() {
            c.check(false, || {
                "tshark is missing (scripts/install-deps installs it): no capture checks"
                    .to_string()
            });
            return;
        }
        // The backend is a function of the flow's 5-tuple: try source ports
        // until the far pod answers.
        let mut port = None;
        let mut answers = Vec::new();
        for p in 42001..42041u16 {
            let out = curl(
                &k.client.name,
                &format!("http://{NGINX_SVC_IP}/hostname"),
                &["--local-port", &p.to_string()],
            );
            let name = stdout(&out).trim().to_string();
            if name == k.far.name {
                port = Some(p);
                break;
            }
            answers.push(name);
        }
        let Some(port) = port else {
            c.check(false, || {
                format!(
                    "40 source ports from {} to {NGINX_SVC_IP} never reached {}: {answers:?}",
                    k.client.name, k.far.name
                )
            });
            return;
        };
        let file = format!("{RUN_DIR}/capture-{}.pcapng", k.worker.name);
        let wanted = [
        (
            "the SYN to the ClusterIP on tun-in",
            format!(
                "frame.interface_name == \"tun-in\" && ip.dst == {NGINX_SVC_IP} && tcp.srcport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 0"
            ),
        ),
        (
            "the SYN in VXLAN to the far pod on overlay-out",
            format!(
                "frame.interface_name == \"overlay-out\" && vxlan && ip.dst == {} && tcp.srcport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
                k.far.ip
            ),
        ),
        (
            "the SYN-ACK from the ClusterIP on tun-out",
            format!(
                "frame.interface_name == \"tun-out\" && ip.src == {NGINX_SVC_IP} && tcp.dstport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 1"
            ),
        ),
    ];
        for (what, filter) in &wanted {
            let (n, out) = tshark_count(&file, filter);
            c.check(n.is_some_and(|n| n >= 1), || {
                format!(
                    "capture {file}: expected {what} (source port {port}), filter {filter}\n{}",
                    show("tshark", &out)
                )
            });
        }
        check_checksums(c, &file);
    });
}

/// Interop: the master becomes a plain Linux VXLAN node (no router); the
/// worker's router and the kernel must understand each other's VXLAN, and
/// the underlay must show well-formed VXLAN with inner TCP. Then the master
/// gets its router back.
#[test]
fn kernel_vxlan_peer() {
    lab::check(|c, k| {
        let master = &k.master.name;
        let out = lab_cmd(&["kernel-node", master]);
        if !c.check(out.status.success(), || {
            show(&format!("scripts/lab kernel-node {master}"), &out)
        }) {
            return;
        }
        let capture = if find_tool("tshark").is_some() {
            match BridgeCapture::start(12) {
                Ok(cap) => Some(cap),
                Err(e) => {
                    c.check(false, || format!("kernel VXLAN peer: {e}"));
                    None
                }
            }
        } else {
            c.check(false, || {
                "tshark is missing (scripts/install-deps installs it): no underlay capture"
                    .to_string()
            });
            None
        };

        for (from, to) in [(&k.client, &k.far), (&k.client_master, &k.near)] {
            let out = curl(&from.name, &format!("http://{}/hostname", to.ip), &[]);
            c.check(
                out.status.success() && stdout(&out).trim() == to.name,
                || {
                    format!(
                        "kernel VXLAN peer: {} (on {}) -> {} ({}, on {}) should answer {}\n{}",
                        from.name,
                        from.node,
                        to.ip,
                        to.name,
                        to.node,
                        to.name,
                        show("curl", &out)
                    )
                },
            );
            let out = lab_exec(&from.name, &["ping", "-c", "2", "-W", "2", &to.ip]);
            c.check(out.status.success(), || {
                format!(
                    "kernel VXLAN peer: ping from {} to {} should be answered\n{}",
                    from.name,
                    to.ip,
                    show("ping", &out)
                )
            });
        }

        if let Some(mut cap) = capture {
            cap.wait(20);
            let file = cap.file.clone();
            // Both ways: from the worker's router and from the master's kernel.
            for (sender, node) in [("router", &k.worker), ("kernel", &k.master)] {
                let filter = format!("vxlan && tcp && ip.src == {}", node.address);
                let (n, out) = tshark_count(&file, &filter);
                c.check(n.is_some_and(|n| n > 0), || {
                format!(
                    "underlay capture {file}: expected VXLAN packets with inner TCP from {}'s {sender} (filter {filter})\n{}",
                    node.name,
                    show("tshark", &out)
                )
            });
            }
            check_checksums(c, &file);
            let vni = overlay().vni;
            let (n, out) = tshark_count(&file, &format!("vxlan && vxlan.vni != {vni}"));
            c.check(n == Some(0), || {
                format!(
                    "underlay capture {file}: VXLAN packets with a VNI other than {vni}\n{}",
                    show("tshark", &out)
                )
            });
        }

        let out = lab_cmd(&["router-node", master]);
        c.check(out.status.success(), || {
            show(&format!("scripts/lab router-node {master}"), &out)
        });
        let out = curl(
            &k.client.name,
            &format!("http://{}/hostname", k.far.ip),
            &[],
        );
        c.check(
            out.status.success() && stdout(&out).trim() == k.far.name,
            || {
                format!(
                    "with {master}'s router back, {} -> {} should answer again\n{}",
                    k.client.name,
                    k.far.ip,
                    show("curl", &out)
                )
            },
        );
    });
}
