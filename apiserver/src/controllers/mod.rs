//! Controllers run in the API server process, as kube-controller-manager,
//! the scheduler and (for the lab, optionally) a stand-in kubelet would.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::api::Api;

/// Controller settings.
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// Run the controllers at all.
    pub enabled: bool,
}

/// Starts the controllers.
pub fn spawn(_api: Arc<Api>, _config: ControllerConfig) -> Vec<JoinHandle<()>> {
    Vec::new()
}
