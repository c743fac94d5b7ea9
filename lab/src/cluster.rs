//! What the lab is made of, as the checks see it: the client pods, the
//! nginx pods near and far from the client, the nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::env::show;
use crate::kubectl::{delete, wait_until};
use crate::objects::{lab_nodes, live_nginx, Node, Pod};

/// What the lab is made of, as the tests see it.
pub struct Cluster {
    /// The client pod (`client`, on the worker).
    pub client: Pod,
    /// The client pod on the other node (`client-master`).
    pub client_master: Pod,
    /// The nginx Deployment's pods.
    pub nginx: Vec<Pod>,
    /// The nginx pod on the client's node.
    pub near: Pod,
    /// The nginx pod on the other node.
    pub far: Pod,
    /// The client's node (the worker).
    pub worker: Node,
    /// The other node (the master).
    pub master: Node,
    /// Every node.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// The view of the lab with these pods (the store's, now).
    pub fn from_pods(pods: Vec<Pod>) -> Cluster {
        let nodes = lab_nodes();
        assert!(nodes.len() >= 2, "the lab needs two nodes: {nodes:?}");
        let client = pods
            .iter()
            .find(|p| p.name == "client")
            .or_else(|| pods.iter().find(|p| !p.has_ports()))
            .unwrap_or_else(|| panic!("no client pod (a pod without ports) in {pods:?}"))
            .clone();
        let nginx: Vec<Pod> = pods
            .iter()
            .filter(|p| p.name.starts_with("nginx-deployment-") && p.tcp.contains(&80))
            .cloned()
            .collect();
        let near = nginx
            .iter()
            .find(|p| p.node == client.node)
            .unwrap_or_else(|| panic!("no nginx pod on {}: {nginx:?}", client.node))
            .clone();
        let far = nginx
            .iter()
            .find(|p| p.node != client.node)
            .unwrap_or_else(|| panic!("no nginx pod off {}: {nginx:?}", client.node))
            .clone();
        let client_master = pods
            .iter()
            .find(|p| p.name == "client-master")
            .or_else(|| pods.iter().find(|p| !p.has_ports() && p.node == far.node))
            .unwrap_or_else(|| panic!("no client pod on {}: {pods:?}", far.node))
            .clone();
        let node = |name: &str| {
            nodes
                .iter()
                .find(|n| n.name == name)
                .unwrap_or_else(|| panic!("no node {name} in {nodes:?}"))
                .clone()
        };
        Cluster {
            worker: node(&client.node),
            master: node(&far.node),
            client,
            client_master,
            nginx,
            near,
            far,
            nodes,
        }
    }

    /// The nginx pods' names.
    pub fn nginx_names(&self) -> BTreeSet<&str> {
        self.nginx.iter().map(|p| p.name.as_str()).collect()
    }

    /// The node `name`.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The external client's address: .200 of the underlay /24 (as
    /// `scripts/lab` picks it when no node has it).
    pub fn external_ip(&self) -> String {
        let first: Ipv4Addr = self.nodes[0].address.parse().expect("node address");
        let o = first.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 200).to_string()
    }
}

/// Puts back the layout the checks expect, one nginx pod on every node,
/// when a replaced pod broke it. A deleted pod's replacement goes where the
/// API server's scheduler puts it (the node with the fewest pods, the
/// terminating one included), which may be the node that already has one;
/// this deletes an nginx pod of the crowded node (its replacement then goes
/// to the emptier one) until every node has one, and waits for them to be
/// Ready. Does nothing when the layout is right.
pub fn spread_nginx() -> Result<(), String> {
    let nodes = lab_nodes();
    let spread = |pods: &[Pod]| {
        pods.len() == nodes.len()
            && pods.iter().all(|p| p.ready)
            && nodes.iter().all(|n| pods.iter().any(|p| p.node == n.name))
    };
    for _ in 0..nodes.len() * 2 {
        let pods = live_nginx();
        if spread(&pods) {
            return Ok(());
        }
        let mut per_node: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
        for p in &pods {
            per_node.entry(p.node.as_str()).or_default().push(p);
        }
        let crowded = per_node
            .values()
            .find(|v| v.len() > 1)
            .and_then(|v| v.last());
        if let Some(pod) = crowded {
            eprintln!("[lab] {} shares {} with another nginx pod: deleting it so that its replacement goes to the other node", pod.name, pod.node);
            let out = delete(&["po", &pod.name]);
            if !out.status.success() {
                return Err(show(&format!("kubectl delete po {}", pod.name), &out));
            }
        }
        wait_until(Duration::from_secs(15), || {
            let now = live_nginx();
            now.len() == nodes.len() && now.iter().all(|p| p.ready)
        });
    }
    let pods = live_nginx();
    if spread(&pods) {
        Ok(())
    } else {
        Err(format!(
            "the nginx pods are not one per node Ready: {pods:?}"
        ))
    }
}
