//! Goldens of the default `config.toml`.

use std::net::Ipv4Addr;

use cluster::{Protocol, ServicePort, TargetPort};

use super::*;

#[test]
fn golden_get_pods() {
    let c = default_cluster();
    assert_eq!(
        get_pods(&c, &default_ns(), false, &OFFLINE),
        "\
NAME                                READY   STATUS    RESTARTS   AGE
client                              1/1     Running   0          <unknown>
client-master                       1/1     Running   0          <unknown>
nginx-deployment-756d6b7586-cctx5   1/1     Running   0          <unknown>
nginx-deployment-756d6b7586-gwpsr   1/1     Running   0          <unknown>
"
    );
    assert_eq!(
            get_pods(&c, &default_ns(), true, &OFFLINE),
            "\
NAME                                READY   STATUS    RESTARTS   AGE         IP            NODE         NOMINATED NODE   READINESS GATES
client                              1/1     Running   0          <unknown>   10.10.1.100   mac-worker   <none>           <none>
client-master                       1/1     Running   0          <unknown>   10.10.0.100   mac-master   <none>           <none>
nginx-deployment-756d6b7586-cctx5   1/1     Running   0          <unknown>   10.10.1.2     mac-worker   <none>           <none>
nginx-deployment-756d6b7586-gwpsr   1/1     Running   0          <unknown>   10.10.0.2     mac-master   <none>           <none>
"
        );
    assert_eq!(
        get_pods(&c, &NamespaceFilter::All, false, &OFFLINE),
        "\
NAMESPACE     NAME                                READY   STATUS    RESTARTS   AGE
default       client                              1/1     Running   0          <unknown>
default       client-master                       1/1     Running   0          <unknown>
default       nginx-deployment-756d6b7586-cctx5   1/1     Running   0          <unknown>
default       nginx-deployment-756d6b7586-gwpsr   1/1     Running   0          <unknown>
kube-system   coredns-mac-master                  1/1     Running   0          <unknown>
kube-system   coredns-mac-worker                  1/1     Running   0          <unknown>
"
    );
}

#[test]
fn golden_get_services() {
    let c = default_cluster();
    assert_eq!(
            get_services(&c, &default_ns(), false, &OFFLINE),
            "\
NAME             TYPE           CLUSTER-IP       EXTERNAL-IP                     PORT(S)        AGE
echo-udp         ClusterIP      10.100.97.119    <none>                          9000/UDP       <unknown>
example          ExternalName   <none>           example.com                     <none>         <unknown>
nginx-headless   ClusterIP      None             <none>                          80/TCP         <unknown>
nginx-lb         LoadBalancer   10.103.242.70    192.168.200.10,192.168.200.20   80:30082/TCP   <unknown>
nginx-local      NodePort       10.102.118.193   <none>                          80:30081/TCP   <unknown>
nginx-nodeport   NodePort       10.106.58.49     <none>                          80:30080/TCP   <unknown>
nginx-svc        ClusterIP      10.101.182.177   <none>                          80/TCP         <unknown>
orphan-svc       ClusterIP      10.105.152.244   <none>                          80/TCP         <unknown>
"
        );
    assert_eq!(
            get_services(&c, &default_ns(), true, &OFFLINE),
            "\
NAME             TYPE           CLUSTER-IP       EXTERNAL-IP                     PORT(S)        AGE         SELECTOR
echo-udp         ClusterIP      10.100.97.119    <none>                          9000/UDP       <unknown>   app=nginx-deployment
example          ExternalName   <none>           example.com                     <none>         <unknown>   <none>
nginx-headless   ClusterIP      None             <none>                          80/TCP         <unknown>   app=nginx-deployment
nginx-lb         LoadBalancer   10.103.242.70    192.168.200.10,192.168.200.20   80:30082/TCP   <unknown>   app=nginx-deployment
nginx-local      NodePort       10.102.118.193   <none>                          80:30081/TCP   <unknown>   app=nginx-deployment
nginx-nodeport   NodePort       10.106.58.49     <none>                          80:30080/TCP   <unknown>   app=nginx-deployment
nginx-svc        ClusterIP      10.101.182.177   <none>                          80/TCP         <unknown>   app=nginx-deployment
orphan-svc       ClusterIP      10.105.152.244   <none>                          80/TCP         <unknown>   app=nothing-matches
"
        );
}

#[test]
fn golden_get_endpoints() {
    let c = default_cluster();
    assert_eq!(
        get_endpoints(&c, &default_ns(), &OFFLINE),
        "\
NAME             ENDPOINTS                       AGE
echo-udp         10.10.0.2:9000,10.10.1.2:9000   <unknown>
nginx-headless   10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-lb         10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-local      10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-nodeport   10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-svc        10.10.0.2:80,10.10.1.2:80       <unknown>
orphan-svc       <none>                          <unknown>
"
    );
}

#[test]
fn golden_describe_service() {
    let c = default_cluster();
    assert_eq!(
        describe_service(&c, "default", "nginx-svc").expect("nginx-svc"),
        "\
Name:                     nginx-svc
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.101.182.177
IPs:                      10.101.182.177
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
    // No endpoints: an empty value (kubectl pads the label anyway).
    let orphan = describe_service(&c, "default", "orphan-svc").expect("orphan-svc");
    assert!(
        orphan.contains("\nEndpoints:                \n"),
        "{orphan}"
    );
}

#[test]
fn golden_describe_node_port_service() {
    let c = default_cluster();
    // As the walkthrough's NodePort describe, with this Service's values.
    assert_eq!(
        describe_service(&c, "default", "nginx-nodeport").expect("nginx-nodeport"),
        "\
Name:                     nginx-nodeport
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.106.58.49
IPs:                      10.106.58.49
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30080/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
    assert_eq!(
        describe_service(&c, "default", "nginx-local").expect("nginx-local"),
        "\
Name:                     nginx-local
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.102.118.193
IPs:                      10.102.118.193
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30081/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Local
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
}

#[test]
fn golden_describe_load_balancer_service() {
    let c = default_cluster();
    // kubectl's order: IPs, External IPs, LoadBalancer Ingress, ports.
    assert_eq!(
        describe_service(&c, "default", "nginx-lb").expect("nginx-lb"),
        "\
Name:                     nginx-lb
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     LoadBalancer
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.103.242.70
IPs:                      10.103.242.70
External IPs:             192.168.200.20
LoadBalancer Ingress:     192.168.200.10
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30082/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
}

#[test]
fn golden_lab_lines() {
    let c = default_cluster();
    assert_eq!(
        lab_pods(&c),
        "\
default\tclient\t10.10.1.100\tmac-worker\t10.10.1.0/24\t10.10.1.1\t-\t-
default\tclient-master\t10.10.0.100\tmac-master\t10.10.0.0/24\t10.10.0.1\t-\t-
default\tnginx-deployment-756d6b7586-cctx5\t10.10.1.2\tmac-worker\t10.10.1.0/24\t10.10.1.1\t80\t9000
default\tnginx-deployment-756d6b7586-gwpsr\t10.10.0.2\tmac-master\t10.10.0.0/24\t10.10.0.1\t80\t9000
"
    );
    assert_eq!(
        lab_nodes(&c),
        "\
mac-master\t192.168.191.144\t10.10.0.0/24\t0e:6b:c0:a8:bf:90
mac-worker\t192.168.191.145\t10.10.1.0/24\t0e:6b:c0:a8:bf:91
"
    );
    assert_eq!(
        lab_services(&c),
        "\
default\techo-udp\tClusterIP\t10.100.97.119\t-\t9000/UDP
default\texample\tExternalName\t-\t-\t-
default\tnginx-headless\tClusterIP\tNone\t-\t80/TCP
default\tnginx-lb\tLoadBalancer\t10.103.242.70\t192.168.200.10,192.168.200.20\t80:30082/TCP
default\tnginx-local\tNodePort\t10.102.118.193\t-\t80:30081/TCP
default\tnginx-nodeport\tNodePort\t10.106.58.49\t-\t80:30080/TCP
default\tnginx-svc\tClusterIP\t10.101.182.177\t-\t80/TCP
default\torphan-svc\tClusterIP\t10.105.152.244\t-\t80/TCP
kube-system\tkube-dns\tClusterIP\t10.96.0.10\t-\t53/UDP,53/TCP
"
    );
    assert_eq!(
        lab_cluster(&c),
        "10.10.0.0/16\t10.96.0.0/12\t1\t8472\t1500\t1450\n"
    );
}

#[test]
fn lab_lines_follow_the_cluster() {
    let mut c = default_cluster();
    c.overlay = cluster::Overlay {
        vni: 42,
        port: 4789,
        underlay_mtu: 9000,
    };
    assert_eq!(
        lab_cluster(&c),
        "10.10.0.0/16\t10.96.0.0/12\t42\t4789\t9000\t8950\n"
    );
    c.services.retain(|s| s.name == "nginx-lb");
    let lb = &mut c.services[0];
    lb.load_balancer_ips.push(Ipv4Addr::new(192, 168, 200, 9));
    lb.external_ips.clear();
    lb.ports.push(ServicePort {
        name: Some("echo".into()),
        protocol: Protocol::Udp,
        port: 9000,
        target_port: TargetPort::Number(9000),
        node_port: Some(30090),
    });
    // File order, not kubectl's string sort; every address, no cut.
    assert_eq!(
            lab_services(&c),
            "default\tnginx-lb\tLoadBalancer\t10.103.242.70\t192.168.200.10,192.168.200.9\t80:30082/TCP,9000:30090/UDP\n"
        );
    c.services[0].load_balancer_ips.clear();
    c.services[0].ports.clear();
    assert_eq!(
        lab_services(&c),
        "default\tnginx-lb\tLoadBalancer\t10.103.242.70\t-\t-\n"
    );
}

#[test]
fn golden_describe_endpoints() {
    let c = default_cluster();
    assert_eq!(
        describe_endpoints(&c, "default", "nginx-svc").expect("exists"),
        "\
Name:         nginx-svc
Namespace:    default
Labels:       <none>
Annotations:  <none>
Subsets:
  Addresses:          10.10.0.2,10.10.1.2
  NotReadyAddresses:  <none>
  Ports:
    Name     Port  Protocol
    ----     ----  --------
    <unset>  80    TCP

Events:  <none>
"
    );
    let mut not_ready = c.clone();
    not_ready.pods.iter_mut().for_each(|p| {
        if p.ip == std::net::Ipv4Addr::new(10, 10, 0, 2) {
            p.ready = false;
        }
    });
    let out = describe_endpoints(&not_ready, "default", "nginx-svc").expect("exists");
    assert!(out.contains("  Addresses:          10.10.1.2\n"), "{out}");
    assert!(out.contains("  NotReadyAddresses:  10.10.0.2\n"), "{out}");
    assert_eq!(
        describe_endpoints(&c, "default", "example").map_err(|e| e.to_string()),
        Err("Error from server (NotFound): endpoints \"example\" not found".to_owned())
    );
}
