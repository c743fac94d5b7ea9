//! The lab in kubernetes mode on etcd (`scripts/lab up --etcd`: the API
//! server stores in an etcd of the lab's own, not in its data directory):
//! the API server killed (`kill -9`) and started again as a new process
//! that has nothing of the old one but etcd, as if on another machine,
//! while the routers run. A stream through a ClusterIP outlasts it,
//! nothing is lost (same UIDs and resourceVersions), and a change made
//! afterwards reaches both routers. Its own test binary with its own lab
//! (see `lab::session`): switching a running lab's API server from its
//! embedded storage to an empty etcd would lose everything by design.
//! Needs root, kubectl and etcd: fails loudly without them.

use lab::session::check_kubernetes_on_etcd;

#[path = "kubernetes/kubectl.rs"]
mod kubectl;
#[path = "kubernetes/restart.rs"]
mod restart;

#[test]
fn the_api_server_restarts_as_a_new_process_on_etcd_and_nothing_is_lost() {
    check_kubernetes_on_etcd(|c| {
        restart::kill_and_restart_loses_nothing(c, restart::Storage::Etcd)
    });
}
