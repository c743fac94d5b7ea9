//! A pod's sandbox: its network namespace ([`PodNet::netns`]), the veth to its
//! node, and `pod-server` on its container ports, made and removed by the
//! lab's own plumbing (`scripts/lab pod-up|pod-probe|pod-down`), whose
//! output goes to this kubelet's log.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::process::Command;

/// The lab plumbing and what every pod's resolv.conf gets.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// `scripts/lab`.
    pub lab: PathBuf,
    /// The cluster DNS Service's IP.
    pub dns: Option<Ipv4Addr>,
    /// The cluster domain.
    pub domain: String,
}

/// What the plumbing needs to know of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNet {
    /// Pod name (its netns: [`PodNet::netns`]).
    pub name: String,
    /// Kubernetes namespace (resolv.conf's search path).
    pub namespace: String,
    /// Node name.
    pub node: String,
    /// The pod's IP (from the API server's allocation).
    pub ip: Ipv4Addr,
    /// TCP container ports: pod-server answers HTTP there.
    pub tcp: Vec<u16>,
    /// UDP container ports: pod-server's UDP responder.
    pub udp: Vec<u16>,
}

/// A plumbing command that failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Could not run the lab script.
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    /// It ran and failed (its messages are in the log above).
    #[error("`{0}` failed ({1}); see the lines above")]
    Failed(String, std::process::ExitStatus),
}

/// The container ports of every container, TCP and UDP, sorted, without
/// duplicates.
pub fn container_ports(pod: &Pod) -> (Vec<u16>, Vec<u16>) {
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    for port in containers.flat_map(|c| c.ports.iter().flatten()) {
        let Ok(number) = u16::try_from(port.container_port) else {
            continue;
        };
        match port.protocol.as_deref() {
            Some("UDP") => udp.push(number),
            // TCP is the default; SCTP is not served by pod-server.
            None | Some("TCP") => tcp.push(number),
            Some(_) => {}
        }
    }
    for list in [&mut tcp, &mut udp] {
        list.sort_unstable();
        list.dedup();
    }
    (tcp, udp)
}

/// `80,8080`, or `-` for none (the lab's notation).
fn port_list(ports: &[u16]) -> String {
    if ports.is_empty() {
        return "-".to_string();
    }
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl PodNet {
    /// The pod's network namespace, as the lab plumbing names it:
    /// `ksr-<pod>` in the default namespace, `ksr-<namespace>_<pod>`
    /// elsewhere (`_` is in neither kind of name, so pods of one name in
    /// two namespaces get two namespaces).
    pub fn netns(&self) -> String {
        if self.namespace == "default" {
            format!("ksr-{}", self.name)
        } else {
            format!("ksr-{}_{}", self.namespace, self.name)
        }
    }
}

impl Sandbox {
    fn command(&self, verb: &str, pod: &PodNet) -> Command {
        let mut c = Command::new(&self.lab);
        c.arg(verb)
            .args(["--node", &pod.node, "--pod", &pod.name])
            .args(["--namespace", &pod.namespace])
            .args(["--ip", &pod.ip.to_string()])
            .args(["--tcp", &port_list(&pod.tcp), "--udp", &port_list(&pod.udp)])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, verb: &str, mut command: Command) -> Result<(), SandboxError> {
        let what = format!("{} {verb}", self.lab.display());
        let status = command
            .status()
            .await
            .map_err(|e| SandboxError::Spawn(what.clone(), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(SandboxError::Failed(what, status))
        }
    }

    /// Builds the pod's namespace and starts its server (a namespace left
    /// from an earlier kubelet for the same pod and IP is kept).
    pub async fn up(&self, pod: &PodNet) -> Result<(), SandboxError> {
        let mut c = self.command("pod-up", pod);
        if let Some(dns) = self.dns {
            c.args(["--dns", &dns.to_string(), "--domain", &self.domain]);
        }
        self.run("pod-up", c).await
    }

    /// Whether the pod's servers answer (HTTP on every TCP port from the
    /// node, a bound socket on every UDP port).
    pub async fn ready(&self, pod: &PodNet) -> bool {
        let mut c = self.command("pod-probe", pod);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        self.run("pod-probe", c).await.is_ok()
    }

    /// Stops the server (SIGTERM; SIGKILL after `grace`) and removes the
    /// namespace and the node's route to the pod.
    pub async fn down(&self, pod: &PodNet, grace: Duration) -> Result<(), SandboxError> {
        let mut c = self.command("pod-down", pod);
        c.args(["--grace", &grace.as_secs().max(1).to_string()]);
        self.run("pod-down", c).await
    }
}

#[cfg(test)]
mod tests;
