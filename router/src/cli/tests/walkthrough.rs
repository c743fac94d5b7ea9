//! The Kubernetes Service walkthrough's own output.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use cluster::{
    Cluster, Labels, Pod, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort,
};

use super::*;

/// The default cluster with the walkthrough's pod names and IPs, plus the
/// `kubernetes` Service and an apiserver "pod" for its endpoint.
fn walkthrough() -> (Cluster, BTreeMap<String, i64>) {
    let mut c = default_cluster();
    c.pods.retain(|p| p.owner.is_some());
    c.pods[0].name = "nginx-deployment-756d6b7586-7plkf".into();
    c.pods[0].ip = Ipv4Addr::new(10, 10, 1, 42);
    c.pods[1].name = "nginx-deployment-756d6b7586-jwt5h".into();
    c.pods[1].ip = Ipv4Addr::new(10, 10, 1, 43);
    // The walkthrough ran both replicas on mac-worker.
    for p in &mut c.pods {
        p.node = "mac-worker".into();
    }
    c.services.retain(|s| s.name == "nginx-svc");
    c.services.insert(
        0,
        Service {
            name: "kubernetes".into(),
            namespace: "default".into(),
            labels: Labels::from([
                ("component".into(), "apiserver".into()),
                ("provider".into(), "kubernetes".into()),
            ]),
            selector: Labels::new(),
            service_type: ServiceType::ClusterIP,
            cluster_ip: Ipv4Addr::new(10, 96, 0, 1),
            ports: vec![ServicePort {
                name: Some("https".into()),
                protocol: Protocol::Tcp,
                port: 443,
                target_port: TargetPort::Number(6443),
                node_port: None,
            }],
            session_affinity: SessionAffinity::None,
            external_traffic_policy: Default::default(),
            internal_traffic_policy: Default::default(),
            headless: false,
            external_name: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            created: None,
        },
    );
    let now = 1_656_052_000;
    let created = BTreeMap::from([
        (
            "pod/default/nginx-deployment-756d6b7586-7plkf".into(),
            now - 47,
        ),
        (
            "pod/default/nginx-deployment-756d6b7586-jwt5h".into(),
            now - 47,
        ),
        ("service/default/nginx-svc".into(), now - 65),
        (
            "service/default/kubernetes".into(),
            now - (6 * 24 + 21) * 3600 - 5,
        ),
    ]);
    (c, created)
}

#[test]
fn matches_the_walkthrough_get_po_wide() {
    let (c, created) = walkthrough();
    let ages = Ages {
        now_unix: 1_656_052_000,
        created: Some(&created),
    };
    let out = get_pods(&c, &default_ns(), true, &ages);
    assert_eq!(
            collapse(&out),
            "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES \
             nginx-deployment-756d6b7586-7plkf 1/1 Running 0 47s 10.10.1.42 mac-worker <none> <none> \
             nginx-deployment-756d6b7586-jwt5h 1/1 Running 0 47s 10.10.1.43 mac-worker <none> <none>"
        );
    assert_eq!(
            out.lines().next(),
            Some("NAME                                READY   STATUS    RESTARTS   AGE   IP           NODE         NOMINATED NODE   READINESS GATES")
        );
}

#[test]
fn matches_the_walkthrough_get_svc_and_endpoints() {
    let (mut c, created) = walkthrough();
    let ages = Ages {
        now_unix: 1_656_052_000,
        created: Some(&created),
    };
    assert_eq!(
        collapse(&get_services(&c, &default_ns(), false, &ages)),
        "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE \
             kubernetes ClusterIP 10.96.0.1 <none> 443/TCP 6d21h \
             nginx-svc ClusterIP 10.101.182.177 <none> 80/TCP 65s"
    );
    // Give `kubernetes` its apiserver endpoint, as the control plane would.
    c.services[0].selector = Labels::from([("component".into(), "apiserver".into())]);
    c.pods.push(Pod {
        name: "kube-apiserver".into(),
        namespace: "default".into(),
        labels: Labels::from([("component".into(), "apiserver".into())]),
        ip: Ipv4Addr::new(192, 168, 191, 144),
        node: "mac-master".into(),
        ready: true,
        owner: None,
        ports: vec![],
    });
    let later = Ages {
        now_unix: 1_656_052_000 + 9 * 60 + 32 - 65,
        created: Some(&created),
    };
    let out = get_endpoints(&c, &default_ns(), &later);
    assert_eq!(
            collapse(&out),
            "NAME ENDPOINTS AGE kubernetes 192.168.191.144:6443 6d21h nginx-svc 10.10.1.42:80,10.10.1.43:80 9m32s"
        );
}

#[test]
fn matches_the_walkthrough_describe() {
    let (mut c, _) = walkthrough();
    let out = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
    assert_eq!(
        collapse(&out),
        "Name: nginx-svc Namespace: default Labels: <none> Annotations: <none> \
             Selector: app=nginx-deployment Type: ClusterIP IP Family Policy: SingleStack \
             IP Families: IPv4 IP: 10.101.182.177 IPs: 10.101.182.177 Port: <unset> 80/TCP \
             TargetPort: 80/TCP Endpoints: 10.10.1.42:80,10.10.1.43:80 Session Affinity: None \
             Internal Traffic Policy: Cluster Events: <none>"
    );
    // The NodePort version, after the pod at .43 was replaced by .44.
    c.pods[1].ip = Ipv4Addr::new(10, 10, 1, 44);
    let svc = c
        .services
        .iter_mut()
        .find(|s| s.name == "nginx-svc")
        .expect("nginx-svc");
    svc.service_type = ServiceType::NodePort;
    svc.ports[0].node_port = Some(30862);
    let out = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
    assert_eq!(
        out,
        "\
Name:                     nginx-svc
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.101.182.177
IPs:                      10.101.182.177
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30862/TCP
Endpoints:                10.10.1.42:80,10.10.1.44:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
    let mut one = c.clone();
    one.services.retain(|s| s.name == "nginx-svc");
    assert_eq!(
        collapse(&get_services(&one, &default_ns(), true, &OFFLINE)),
        "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR \
             nginx-svc NodePort 10.101.182.177 <none> 80:30862/TCP <unknown> app=nginx-deployment"
    );
    // Multi-line labels continue in the value column, like kubectl.
    let k = describe_service(&c, "default", "kubernetes").expect("kubernetes");
    assert!(
            k.contains(
                "Labels:                   component=apiserver\n                          provider=kubernetes\n"
            ),
            "{k}"
        );
    assert!(
        k.contains(
            "Port:                     https  443/TCP\nTargetPort:               6443/TCP\n"
        ),
        "{k}"
    );
    assert!(k.contains("Selector:                 <none>\n"), "{k}");
}
