//! The details kubectl gets right.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use cluster::{
    Cluster, Labels, Pod, Protocol, ServicePort, ServiceType, SessionAffinity, TargetPort,
};

use super::*;

#[test]
fn human_duration_table() {
    for (secs, want) in [
        (-2, "<invalid>"),
        (-1000, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (47, "47s"),
        (65, "65s"),
        (119, "119s"),
        (120, "2m"),
        (9 * 60 + 32, "9m32s"),
        (10 * 60 + 5, "10m"),
        (22 * 60 + 59, "22m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (6 * 3600 + 5 * 60 + 9, "6h5m"),
        (8 * 3600 + 30 * 60, "8h"),
        (21 * 3600 + 59 * 60, "21h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        ((6 * 24 + 21) * 3600, "6d21h"),
        ((7 * 24 + 23) * 3600, "7d23h"),
        (8 * 24 * 3600, "8d"),
        (30 * 24 * 3600 + 7, "30d"),
        (729 * 24 * 3600, "729d"),
        (730 * 24 * 3600, "2y"),
        ((2 * 365 + 100) * 24 * 3600, "2y100d"),
        (8 * 365 * 24 * 3600, "8y"),
    ] {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
}

#[test]
fn age_unknown_without_a_creation_time() {
    let m = BTreeMap::from([("pod/default/client".to_owned(), 100)]);
    let ages = Ages {
        now_unix: 165,
        created: Some(&m),
    };
    assert_eq!(ages.age("pod/default/client"), "65s");
    assert_eq!(ages.age("pod/default/other"), "<unknown>");
    assert_eq!(OFFLINE.age("pod/default/client"), "<unknown>");
    let future = Ages {
        now_unix: 90,
        created: Some(&m),
    };
    assert_eq!(future.age("pod/default/client"), "<invalid>");
}

#[test]
fn not_found_message() {
    let c = default_cluster();
    let e = describe_service(&c, "default", "x").expect_err("no such service");
    assert_eq!(
        e.to_string(),
        "Error from server (NotFound): services \"x\" not found"
    );
    let e = describe_service(&c, "kube-system", "nginx-svc").expect_err("wrong namespace");
    assert_eq!(
        e.to_string(),
        "Error from server (NotFound): services \"nginx-svc\" not found"
    );
}

#[test]
fn no_resources_found() {
    let c = default_cluster();
    let ns = NamespaceFilter::One("kube-public".into());
    for out in [
        get_pods(&c, &ns, false, &OFFLINE),
        get_services(&c, &ns, true, &OFFLINE),
        get_endpoints(&c, &ns, &OFFLINE),
    ] {
        assert_eq!(out, "No resources found in kube-public namespace.\n");
    }
    let mut empty = c.clone();
    empty.pods.clear();
    assert_eq!(
        get_pods(&empty, &NamespaceFilter::All, false, &OFFLINE),
        "No resources found\n"
    );
}

#[test]
fn not_ready_pods_and_many_endpoints() {
    let mut c = default_cluster();
    let template = c
        .pods
        .iter()
        .find(|p| p.node == "mac-worker" && p.owner.is_some())
        .expect("nginx pod on mac-worker")
        .clone();
    for i in 0..4u8 {
        let mut p = template.clone();
        p.name = format!("extra-{i}");
        p.ip = Ipv4Addr::new(10, 10, 1, 50 + i);
        c.pods.push(p);
    }
    c.pods[0].ready = false; // client
    let pods = get_pods(&c, &default_ns(), false, &OFFLINE);
    assert!(
        pods.contains("\nclient                              0/1     Running"),
        "{pods}"
    );
    let eps = get_endpoints(&c, &default_ns(), &OFFLINE);
    assert!(
        eps.contains("\nnginx-svc        10.10.0.2:80,10.10.1.2:80,10.10.1.50:80 + 3 more...   "),
        "{eps}"
    );
    let d = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
    assert!(
        d.contains(
            "Endpoints:                10.10.0.2:80,10.10.1.2:80,10.10.1.50:80 + 3 more...\n"
        ),
        "{d}"
    );
}

#[test]
fn endpoints_list_every_port_and_lb_shows_pending() {
    let mut c = default_cluster();
    c.services
        .retain(|s| !s.name.starts_with("nginx-") || s.name == "nginx-svc");
    let svc = c
        .services
        .iter_mut()
        .find(|s| s.name == "nginx-svc")
        .expect("nginx-svc");
    svc.service_type = ServiceType::LoadBalancer;
    svc.session_affinity = SessionAffinity::ClientIP {
        timeout_seconds: 10800,
    };
    svc.ports[0].node_port = Some(30080);
    svc.ports.push(ServicePort {
        name: Some("echo".into()),
        protocol: Protocol::Udp,
        port: 9000,
        target_port: TargetPort::Name("udp-echo".into()),
        node_port: Some(30090),
    });
    let out = get_services(&c, &default_ns(), false, &OFFLINE);
    assert!(
            out.contains("nginx-svc    LoadBalancer   10.101.182.177   <pending>     80:30080/TCP,9000:30090/UDP   <unknown>"),
            "{out}"
        );
    let eps = get_endpoints(&c, &default_ns(), &OFFLINE);
    assert!(
        eps.contains("10.10.0.2:80,10.10.1.2:80,10.10.0.2:9000 + 1 more..."),
        "{eps}"
    );
    let d = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
    assert!(
        d.contains("Port:                     echo  9000/UDP\n"),
        "{d}"
    );
    assert!(
        d.contains("TargetPort:               udp-echo/UDP\n"),
        "{d}"
    );
    assert!(
        d.contains("NodePort:                 echo  30090/UDP\n"),
        "{d}"
    );
    assert!(
        d.contains("Endpoints:                10.10.0.2:9000,10.10.1.2:9000\n"),
        "{d}"
    );
    assert!(d.contains("Session Affinity:         ClientIP\n"), "{d}");
    assert!(d.contains("External Traffic Policy:  Cluster\n"), "{d}");
    assert!(!d.contains("LoadBalancer Ingress:"), "{d}");
    assert!(!d.contains("External IPs:"), "{d}");
}

/// The default cluster's `nginx-lb` alone, as `service_type` with the
/// given LoadBalancer and external IPs.
fn lone_service(service_type: ServiceType, lb: &[[u8; 4]], ext: &[[u8; 4]]) -> Cluster {
    let mut c = default_cluster();
    c.services.retain(|s| s.name == "nginx-lb");
    let s = &mut c.services[0];
    s.service_type = service_type;
    s.load_balancer_ips = lb.iter().map(|&o| Ipv4Addr::from(o)).collect();
    s.external_ips = ext.iter().map(|&o| Ipv4Addr::from(o)).collect();
    if service_type == ServiceType::ClusterIP {
        s.ports[0].node_port = None;
    }
    c
}

/// The EXTERNAL-IP cell of the only Service, without and with `-o wide`.
fn external_cells(c: &Cluster) -> (String, String) {
    let cell = |wide| {
        let out = get_services(c, &default_ns(), wide, &OFFLINE);
        let row = out.lines().nth(1).unwrap_or_default().to_owned();
        row.split_whitespace().nth(3).unwrap_or_default().to_owned()
    };
    (cell(false), cell(true))
}

#[test]
fn external_ip_column_like_kubectl() {
    const LB1: [u8; 4] = [192, 168, 200, 10];
    const LB2: [u8; 4] = [192, 168, 200, 9];
    const EXT: [u8; 4] = [192, 168, 200, 20];
    let both = |s: &str| (s.to_owned(), s.to_owned());
    for (ty, lb, ext, want) in [
        (
            ServiceType::LoadBalancer,
            &[][..],
            &[][..],
            both("<pending>"),
        ),
        (
            ServiceType::LoadBalancer,
            &[LB1][..],
            &[][..],
            both("192.168.200.10"),
        ),
        (
            ServiceType::LoadBalancer,
            &[][..],
            &[EXT][..],
            both("192.168.200.20"),
        ),
        (
            ServiceType::LoadBalancer,
            &[LB1][..],
            &[EXT][..],
            both("192.168.200.10,192.168.200.20"),
        ),
        // Ingress IPs are sorted as strings and, without -o wide, cut
        // to 16 characters before the external IPs are appended.
        (
            ServiceType::LoadBalancer,
            &[LB2, LB1][..],
            &[][..],
            (
                "192.168.200.1...".to_owned(),
                "192.168.200.10,192.168.200.9".to_owned(),
            ),
        ),
        (
            ServiceType::LoadBalancer,
            &[LB2, LB1][..],
            &[EXT][..],
            (
                "192.168.200.1...,192.168.200.20".to_owned(),
                "192.168.200.10,192.168.200.9,192.168.200.20".to_owned(),
            ),
        ),
        (ServiceType::NodePort, &[][..], &[][..], both("<none>")),
        (
            ServiceType::NodePort,
            &[][..],
            &[EXT, LB2][..],
            both("192.168.200.20,192.168.200.9"),
        ),
        (ServiceType::ClusterIP, &[][..], &[][..], both("<none>")),
        (
            ServiceType::ClusterIP,
            &[][..],
            &[EXT][..],
            both("192.168.200.20"),
        ),
    ] {
        let c = lone_service(ty, lb, ext);
        assert_eq!(external_cells(&c), want, "{ty} lb={lb:?} ext={ext:?}");
    }
}

#[test]
fn describe_external_ips_ingress_and_policy() {
    // Two ingress IPs: file order, joined with ", " as kubectl's
    // buildIngressString does; external IPs with ",".
    let mut c = lone_service(
        ServiceType::LoadBalancer,
        &[[192, 168, 200, 10], [192, 168, 200, 9]],
        &[[192, 168, 200, 20], [192, 168, 200, 21]],
    );
    c.services[0].external_traffic_policy = cluster::TrafficPolicy::Local;
    let d = describe_service(&c, "default", "nginx-lb").expect("nginx-lb");
    assert!(
        d.contains(
            "IPs:                      10.103.242.70\n\
                 External IPs:             192.168.200.20,192.168.200.21\n\
                 LoadBalancer Ingress:     192.168.200.10, 192.168.200.9\n\
                 Port:                     <unset>  80/TCP\n"
        ),
        "{d}"
    );
    assert!(d.contains("External Traffic Policy:  Local\n"), "{d}");

    // A pending LoadBalancer: no ingress line, no external IPs line.
    let c = lone_service(ServiceType::LoadBalancer, &[], &[]);
    let d = describe_service(&c, "default", "nginx-lb").expect("nginx-lb");
    assert!(
        d.contains("IPs:                      10.103.242.70\nPort:"),
        "{d}"
    );

    // A ClusterIP Service with external IPs is externally accessible:
    // kubectl shows its policy too, but never a NodePort.
    let c = lone_service(ServiceType::ClusterIP, &[], &[[192, 168, 200, 20]]);
    assert_eq!(
        describe_service(&c, "default", "nginx-lb").expect("nginx-lb"),
        "\
Name:                     nginx-lb
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.103.242.70
IPs:                      10.103.242.70
External IPs:             192.168.200.20
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
}

/// The default cluster plus a headless and an ExternalName Service, a
/// Local internal policy on nginx-svc, and a kube-dns pod in kube-system.
fn with_dns_objects() -> Cluster {
    let mut c = default_cluster();
    let mut headless = c
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    headless.name = "nginx-headless".into();
    headless.headless = true;
    headless.cluster_ip = Ipv4Addr::UNSPECIFIED;
    let mut alias = headless.clone();
    alias.name = "db".into();
    alias.headless = false;
    alias.service_type = ServiceType::ExternalName;
    alias.external_name = Some("db.example.com".into());
    alias.selector = Labels::new();
    alias.ports.clear();
    c.services.extend([headless, alias]);
    c.services
        .iter_mut()
        .filter(|s| s.name == "nginx-svc")
        .for_each(|s| s.internal_traffic_policy = cluster::TrafficPolicy::Local);
    c.services
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    c.pods.push(Pod {
        name: "coredns-0".into(),
        namespace: "kube-system".into(),
        labels: Labels::from([("k8s-app".into(), "kube-dns".into())]),
        ip: Ipv4Addr::new(10, 10, 0, 10),
        node: "mac-master".into(),
        ready: true,
        owner: None,
        ports: vec![],
    });
    c
}

#[test]
fn headless_and_external_name_services_like_kubectl() {
    let c = with_dns_objects();
    let out = get_services(&c, &default_ns(), false, &OFFLINE);
    assert!(
            out.contains(
                "\ndb               ExternalName   <none>           db.example.com                  <none>         <unknown>\n"
            ),
            "{out}"
        );
    assert!(
            out.contains(
                "\nnginx-headless   ClusterIP      None             <none>                          80/TCP         <unknown>\n"
            ),
            "{out}"
        );
    assert_eq!(
        describe_service(&c, "default", "db").expect("db"),
        "\
Name:              db
Namespace:         default
Labels:            <none>
Annotations:       <none>
Selector:          <none>
Type:              ExternalName
IP Families:       <none>
IP:                
IPs:               <none>
External Name:     db.example.com
Session Affinity:  None
Events:            <none>
"
    );
    let d = describe_service(&c, "default", "nginx-headless").expect("headless");
    assert!(
        d.contains("IP:                       None\nIPs:                      None\n"),
        "{d}"
    );
    // Headless Services still have endpoints (DNS answers with them).
    assert!(
        d.contains("Endpoints:                10.10.0.2:80,10.10.1.2:80\n"),
        "{d}"
    );
    let d = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
    assert!(
        d.contains("Session Affinity:         None\nInternal Traffic Policy:  Local\nEvents:"),
        "{d}"
    );
}

#[test]
fn get_namespaces_lists_kubectl_defaults_and_used_ones() {
    let mut c = with_dns_objects();
    c.services[0].namespace = "apps".into();
    assert_eq!(
        get_namespaces(&c, &OFFLINE),
        "\
NAME              STATUS   AGE
apps              Active   <unknown>
default           Active   <unknown>
kube-node-lease   Active   <unknown>
kube-public       Active   <unknown>
kube-system       Active   <unknown>
"
    );
    let created = BTreeMap::from([("namespace/default".to_owned(), 100)]);
    let ages = Ages {
        now_unix: 165,
        created: Some(&created),
    };
    assert!(get_namespaces(&c, &ages).contains("\ndefault           Active   65s\n"));
}

#[test]
fn lab_pods_skips_router_hosted_pods() {
    let c = with_dns_objects();
    let lines = lab_pods(&c);
    assert!(!lines.contains("coredns-0"), "{lines}");
    assert_eq!(lines, lab_pods(&default_cluster()));
    // kubectl still shows it.
    assert!(get_pods(&c, &NamespaceFilter::All, false, &OFFLINE).contains("coredns-0"));
}

#[test]
fn tabwriter_blocks_like_go() {
    // Column widths are per block of consecutive lines with that column.
    let t = "a:\tx\n\tlonger-cell\tz\nbbbbbb:\ty\n";
    assert_eq!(
        tabwriter(t, 0, 2),
        "a:       x\n         longer-cell  z\nbbbbbb:  y\n"
    );
    // Min width applies to short columns.
    assert_eq!(tabwriter("A\tB\nc\td\n", 6, 3), "A     B\nc     d\n");
}
