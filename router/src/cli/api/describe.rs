//! `router describe svc|ep NAME` against the API: the Service and its
//! EndpointSlices, read through the routers' own translation
//! (`control::kube`), described by the same code as from a router.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use serde_json::Value;

use cluster::Cluster;
use control::kube::{translate_service, translate_slice, SERVICE_NAME_LABEL};

use super::ApiClient;
use crate::cli::args::Resource;
use crate::cli::{describe_endpoints, describe_service, CliError, NotFound};

impl ApiClient {
    /// The Service `ns/name` and its slices as a one-Service cluster.
    fn service_cluster(
        &self,
        ns: &str,
        name: &str,
        kind: &'static str,
    ) -> Result<Cluster, CliError> {
        let not_found = || NotFound {
            kind,
            name: name.to_owned(),
        };
        let svc = match self.get(&format!("/api/v1/namespaces/{ns}/services/{name}")) {
            Ok(v) => v,
            Err(CliError::Api { reason, .. }) if reason == "NotFound" => {
                return Err(not_found().into())
            }
            Err(e) => return Err(e),
        };
        let svc: core::Service = serde_json::from_value(svc)?;
        let service = translate_service(&svc)
            .map_err(|skip| CliError::Kube(skip.to_string()))?
            .ok_or_else(not_found)?;
        let list = self.get(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={SERVICE_NAME_LABEL}%3D{name}"
        ))?;
        let mut slices = Vec::new();
        for item in list
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let slice: discovery::EndpointSlice = serde_json::from_value(item.clone())?;
            if let Ok(Some(s)) = translate_slice(&slice) {
                slices.push(s);
            }
        }
        // Describing needs the Service and its slices only; the cluster
        // settings are the router's, not the API's, and are not shown.
        let mut cluster = Cluster::watched(
            Default::default(),
            Default::default(),
            String::new(),
            Default::default(),
        );
        cluster.services.push(service);
        cluster.endpoint_slices = Some(slices);
        Ok(cluster)
    }

    /// `describe svc|ep NAME -n NS`.
    pub fn describe(&self, resource: Resource, ns: &str, name: &str) -> Result<String, CliError> {
        match resource {
            Resource::Services => {
                let c = self.service_cluster(ns, name, "services")?;
                Ok(describe_service(&c, ns, name)?)
            }
            Resource::Endpoints => {
                let c = self.service_cluster(ns, name, "endpoints")?;
                Ok(describe_endpoints(&c, ns, name)?)
            }
            _ => Err(CliError::Usage(
                "describe supports: service (svc), endpoints (ep)",
            )),
        }
    }
}
