//! One pod's life on this node, as a task fed the latest view of the pod
//! object (`Some` while it exists, `None` once it is gone): wait for its
//! IP, build its sandbox, report it Running and Ready once its server
//! answers, and when it is deleted stop it and release the object.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::node::NodeInfo;
use crate::sandbox::{container_ports, PodNet, Sandbox};
use crate::status;

/// What every pod task shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// This node.
    pub node: NodeInfo,
    /// The lab's plumbing.
    pub sandbox: Sandbox,
}

/// The latest view of one pod.
pub type View = watch::Receiver<Option<Pod>>;

/// The label of the cluster DNS pods, which their node's router serves in
/// process: they get no namespace and no server.
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// How a pod's life ends.
enum Ending {
    /// Deleted gracefully: stop it within its grace period, then release
    /// the object.
    Terminating(Box<Pod>, Duration),
    /// The object is gone already (force-deleted): stop it, set nothing.
    Gone,
}

fn ending(view: &Option<Pod>) -> Option<Ending> {
    match view {
        None => Some(Ending::Gone),
        Some(p) if p.metadata.deletion_timestamp.is_some() => {
            let grace = p
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30);
            let grace = Duration::from_secs(u64::try_from(grace).unwrap_or(0));
            Some(Ending::Terminating(Box::new(p.clone()), grace))
        }
        Some(_) => None,
    }
}

fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

fn describe(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// Waits up to `delay` for the pod to end; the ending if it did.
async fn ended_within(view: &mut View, delay: Duration) -> Option<Ending> {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        if let Some(e) = ending(&view.borrow_and_update()) {
            return Some(e);
        }
        match tokio::time::timeout_at(deadline, view.changed()).await {
            Err(_) => return None,
            Ok(Err(_)) => return Some(Ending::Gone),
            Ok(Ok(())) => {}
        }
    }
}

/// Runs one pod until it is gone.
pub async fn run(ctx: Arc<Context>, mut view: View) {
    // 1. The API server allocates the IP from the node's podCIDR right
    //    after binding (host-local style); wait for it.
    let (pod, ip) = loop {
        let current = view.borrow_and_update().clone();
        if let Some(end) = ending(&current) {
            finish(&ctx, None, end).await;
            return;
        }
        if let Some(pod) = current {
            if let Some(ip) = pod_ip(&pod) {
                break (pod, ip);
            }
        }
        if view.changed().await.is_err() {
            return;
        }
    };
    let (tcp, udp) = container_ports(&pod);
    let net = PodNet {
        name: pod.name_any(),
        namespace: pod.namespace().unwrap_or_else(|| "default".into()),
        node: ctx.node.name.clone(),
        ip,
        tcp,
        udp,
    };
    let who = describe(&pod);
    let dns = pod.labels().get(DNS_LABEL.0).map(String::as_str) == Some(DNS_LABEL.1);
    let started = Instant::now();
    let built = if dns {
        log::info!("pod {who}: {ip}, served by the router in process: no namespace");
        None
    } else {
        Some(start(&ctx, &mut view, &net, &who).await)
    };
    if let Some(Err(end)) = built {
        finish(&ctx, Some(&net), end).await;
        return;
    }
    if !dns {
        log::info!(
            "pod {who}: {ip} answers after {} ms: reporting Running and Ready",
            started.elapsed().as_millis()
        );
    }
    if let Some(end) = report_running(&ctx, &mut view, &pod, ip).await {
        finish(&ctx, (!dns).then_some(&net), end).await;
        return;
    }
    // 3. Until it is deleted.
    let end = loop {
        if let Some(end) = ending(&view.borrow_and_update()) {
            break end;
        }
        if view.changed().await.is_err() {
            break Ending::Gone;
        }
    };
    finish(&ctx, (!dns).then_some(&net), end).await;
}

/// 2. Builds the sandbox (with the kubelet's back-off: 0.4 s, doubling up
///    to 10 s) and waits until its server answers; the ending instead if
///    the pod is deleted meanwhile.
async fn start(ctx: &Context, view: &mut View, net: &PodNet, who: &str) -> Result<(), Ending> {
    log::info!(
        "pod {who}: building netns {} with {} (tcp {:?}, udp {:?})",
        net.netns(),
        net.ip,
        net.tcp,
        net.udp
    );
    let mut delay = Duration::from_millis(400);
    loop {
        match ctx.sandbox.up(net).await {
            Ok(()) => break,
            Err(e) => log::warn!("pod {who}: {e}; retrying in {delay:?}"),
        }
        if let Some(end) = ended_within(view, delay).await {
            return Err(end);
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    while !ctx.sandbox.ready(net).await {
        if let Some(end) = ended_within(view, Duration::from_millis(100)).await {
            return Err(end);
        }
    }
    Ok(())
}

/// The status patch, retried (back-off 0.2 s doubling to 5 s) until the
/// API server takes it, as a kubelet keeps syncing a pod's status: an API
/// server down for a while must not leave the pod NotReady, out of its
/// Services' endpoints, for good. The ending instead if the pod is deleted
/// meanwhile.
async fn report_running(ctx: &Context, view: &mut View, pod: &Pod, ip: Ipv4Addr) -> Option<Ending> {
    let containers: Vec<(String, String)> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect();
    let patch = status::running(&containers, ip, ctx.node.ip);
    let pods: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        &pod.namespace().unwrap_or_else(|| "default".into()),
    );
    let who = describe(pod);
    let mut delay = Duration::from_millis(200);
    let mut failures = 0u32;
    loop {
        match pods
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                if failures > 0 {
                    log::info!("pod {who}: status reported after {failures} failed attempts");
                }
                return None;
            }
            // Deleted meanwhile: the watch brings the ending.
            Err(kube::Error::Api(s)) if s.is_not_found() => return None,
            Err(e) => {
                failures += 1;
                log::warn!("pod {who}: reporting its status: {e}; retrying in {delay:?}");
            }
        }
        if let Some(end) = ended_within(view, delay).await {
            return Some(end);
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// 4. Stops what was built and, for a graceful deletion, releases the
///    object (delete with grace 0, only this pod: same uid).
async fn finish(ctx: &Context, built: Option<&PodNet>, end: Ending) {
    let grace = match &end {
        Ending::Terminating(_, grace) => *grace,
        Ending::Gone => Duration::ZERO,
    };
    if let Some(net) = built {
        let started = Instant::now();
        match ctx.sandbox.down(net, grace).await {
            Ok(()) => log::info!(
                "pod {}/{}: stopped, netns {} removed after {} ms",
                net.namespace,
                net.name,
                net.netns(),
                started.elapsed().as_millis()
            ),
            Err(e) => log::error!("pod {}/{}: {e}", net.namespace, net.name),
        }
    }
    let Ending::Terminating(pod, _) = end else {
        return;
    };
    let who = describe(&pod);
    let pods: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        &pod.namespace().unwrap_or_else(|| "default".into()),
    );
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    // The API server takes no preconditions yet: check the uid first.
    match pods.get_opt(&pod.name_any()).await {
        Ok(Some(now)) if now.uid() == pod.uid() => {}
        Ok(_) => return,
        Err(e) => log::warn!("pod {who}: {e}"),
    }
    match pods.delete(&pod.name_any(), &params).await {
        Ok(_) => log::info!("pod {who}: terminated; released"),
        Err(kube::Error::Api(s)) if s.is_not_found() => {}
        Err(e) => log::error!("pod {who}: releasing it (delete, grace 0): {e}"),
    }
}
