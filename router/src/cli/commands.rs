//! Runs a parsed command: `router run`, the kubectl verbs against a running
//! router (or `--config FILE`), and the hidden `lab-*` commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cluster::Cluster;
use control::config;
use dataplane::DataplaneConfig;

use super::args::{Cli, Command, Output, Resource};
use super::{api, conntrack, json, stats, CliError, NotFound};
use super::{describe_endpoints, describe_service, Ages, NamespaceFilter};
use super::{get_endpoints, get_namespaces, get_pods, get_services};
use super::{lab_cluster, lab_nodes, lab_pods, lab_services};
use crate::protocol::{self, Request, Response};
use crate::shell::{self, RunOptions};

/// What `apply` and `delete` say without an API to change.
const NEEDS_API: &str = "apply and delete change the objects in a Kubernetes API server: give its kubeconfig with --kubeconfig FILE or $KUBECONFIG (and no --config, --server or --node); in the lab: export KUBECONFIG=$(scripts/lab kubeconfig)";

/// Which router (or file) a CLI command reads from.
struct Target {
    server: Option<PathBuf>,
    node: Option<String>,
    config: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    /// `$KUBECONFIG`, for the API verbs only.
    env_kubeconfig: Option<PathBuf>,
}

impl Target {
    /// The API server to ask, when the command names no file and no
    /// router.
    fn api(&self) -> Option<&Path> {
        if self.config.is_some() || self.server.is_some() || self.node.is_some() {
            return None;
        }
        self.kubeconfig
            .as_deref()
            .or(self.env_kubeconfig.as_deref())
    }
}

/// Runs `cli`; returns what goes to stdout.
pub fn dispatch(cli: Cli) -> Result<String, CliError> {
    let Cli {
        server,
        node,
        config,
        kubeconfig,
        command,
    } = cli;
    let target = Target {
        server,
        node,
        config,
        kubeconfig,
        env_kubeconfig: std::env::var_os("KUBECONFIG").map(PathBuf::from),
    };
    match command {
        Command::Run {
            tun,
            mtu,
            offload,
            queues,
            control,
            conntrack_max,
            capture,
            capture_service,
            capture_max_mb,
            capture_files,
            no_manage_routing,
            state,
            metrics_bind_address,
        } => {
            let metrics = match metrics_bind_address.as_str() {
                "none" => None,
                addr => Some(addr.parse().map_err(|_| {
                    CliError::Usage("--metrics-bind-address takes IP:PORT or none")
                })?),
            };
            let config = target
                .config
                .ok_or(CliError::Usage("router run needs --config FILE"))?;
            let node = target
                .node
                .ok_or(CliError::Usage("router run needs --node NAME"))?;
            let control = control.unwrap_or_else(|| protocol::default_socket(&node));
            let opts = RunOptions {
                config,
                node,
                tun,
                mtu,
                offload: offload == "on",
                queues: queues.map_or_else(
                    || std::thread::available_parallelism().map_or(1, |n| n.get().min(256)),
                    usize::from,
                ),
                control,
                dataplane: DataplaneConfig {
                    conntrack_capacity: conntrack_max,
                    ..DataplaneConfig::default()
                },
                capture,
                capture_service,
                capture_limit: shell::capture::CaptureLimit {
                    max_bytes: capture_max_mb.saturating_mul(1 << 20),
                    files: capture_files,
                },
                manage_routing: !no_manage_routing,
                state,
                metrics,
                kubeconfig: target.kubeconfig.clone(),
            };
            shell::run(&opts)?;
            Ok(String::new())
        }
        Command::Apply { file } => {
            let kubeconfig = target.api().ok_or(CliError::Usage(NEEDS_API))?;
            let text = std::fs::read_to_string(&file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            api::ApiClient::new(kubeconfig)?.apply(&text, "default")
        }
        Command::Delete {
            resource,
            name,
            namespace,
        } => {
            if !matches!(resource, Resource::Pods | Resource::Services) {
                return Err(CliError::Usage("delete supports: pod (po), service (svc)"));
            }
            let kubeconfig = target.api().ok_or(CliError::Usage(NEEDS_API))?;
            let ns = NamespaceFilter::One(namespace);
            let path = api::path(resource, &ns, Some(&name))
                .ok_or(CliError::Usage("delete supports: pod (po), service (svc)"))?;
            api::ApiClient::new(kubeconfig)?.delete(&path)?;
            let kind = if resource == Resource::Pods {
                "pod"
            } else {
                "service"
            };
            Ok(format!("{kind} \"{name}\" deleted\n"))
        }
        Command::LabNodes => Ok(lab_nodes(&file_cluster(target.config.as_deref())?)),
        Command::LabPods => Ok(lab_pods(&file_cluster(target.config.as_deref())?)),
        Command::LabCluster => Ok(lab_cluster(&file_cluster(target.config.as_deref())?)),
        Command::LabServices => Ok(lab_services(&file_cluster(target.config.as_deref())?)),
        Command::Get {
            resource,
            name,
            output,
            namespace,
            all_namespaces,
            proto,
            src,
            dst,
        } => {
            let ns = if all_namespaces {
                NamespaceFilter::All
            } else {
                NamespaceFilter::One(namespace)
            };
            match resource {
                Resource::Conntrack => match ask(&target, &Request::Conntrack)? {
                    Response::Conntrack {
                        records, capacity, ..
                    } => {
                        let filter = conntrack::Filter { proto, src, dst };
                        let records = filter.apply(records);
                        match output {
                            Some(Output::Json) => Ok(conntrack::json(&records, capacity)?),
                            _ => Ok(conntrack::render(&records, capacity)),
                        }
                    }
                    other => Err(unexpected(other)),
                },
                Resource::Stats => match ask(&target, &Request::Stats)? {
                    Response::Stats { stats, flows } => match output {
                        Some(Output::Json) => stats::json(&stats, flows),
                        _ => Ok(stats::render(&stats, flows)),
                    },
                    other => Err(unexpected(other)),
                },
                _ if target.api().is_some() => {
                    let kubeconfig = target.api().ok_or(CliError::Usage("no kubeconfig"))?;
                    let path = api::path(resource, &ns, name.as_deref())
                        .ok_or(CliError::Usage("not an API resource"))?;
                    let client = api::ApiClient::new(kubeconfig)?;
                    if output == Some(Output::Json) {
                        return Ok(format!(
                            "{}\n",
                            serde_json::to_string_pretty(&client.get(&path)?)?
                        ));
                    }
                    let table: api::Table = serde_json::from_value(client.table(&path)?)?;
                    let text = api::render(&table, output == Some(Output::Wide), &ns);
                    if table.rows.is_empty() {
                        // kubectl says "No resources found" on stderr:
                        // stdout stays empty for scripts.
                        eprint!("{text}");
                        return Ok(String::new());
                    }
                    Ok(text)
                }
                _ => {
                    let (mut cluster, created, now_unix) = cluster_state(&target)?;
                    if let Some(name) = &name {
                        only(&mut cluster, resource, &ns, name)?;
                    }
                    let ages = Ages {
                        now_unix,
                        created: created.as_ref(),
                    };
                    if output == Some(Output::Json) {
                        return json::get(&cluster, resource, &ns, &ages);
                    }
                    let wide = output == Some(Output::Wide);
                    Ok(match resource {
                        Resource::Pods => get_pods(&cluster, &ns, wide, &ages),
                        Resource::Services => get_services(&cluster, &ns, wide, &ages),
                        Resource::Namespaces => get_namespaces(&cluster, &ages),
                        _ => get_endpoints(&cluster, &ns, &ages),
                    })
                }
            }
        }
        Command::Describe {
            resource,
            name,
            namespace,
        } => {
            if let Some(kubeconfig) = target.api() {
                return api::ApiClient::new(kubeconfig)?.describe(resource, &namespace, &name);
            }
            let (cluster, _, _) = cluster_state(&target)?;
            Ok(match resource {
                Resource::Services => describe_service(&cluster, &namespace, &name)?,
                Resource::Endpoints => describe_endpoints(&cluster, &namespace, &name)?,
                _ => {
                    return Err(CliError::Usage(
                        "describe supports: service (svc), endpoints (ep)",
                    ))
                }
            })
        }
    }
}

/// Keeps only the object `name` of `resource` (kubectl's `get KIND NAME`),
/// or says it is not there in kubectl's words.
fn only(
    cluster: &mut Cluster,
    resource: Resource,
    ns: &NamespaceFilter,
    name: &str,
) -> Result<(), CliError> {
    let in_ns = |n: &str| match ns {
        NamespaceFilter::All => true,
        NamespaceFilter::One(want) => n == want,
    };
    let (kind, found) = match resource {
        Resource::Pods => {
            cluster
                .pods
                .retain(|p| p.name == name && in_ns(&p.namespace));
            ("pods", !cluster.pods.is_empty())
        }
        Resource::Services | Resource::Endpoints => {
            cluster
                .services
                .retain(|s| s.name == name && in_ns(&s.namespace));
            let kind = if resource == Resource::Services {
                "services"
            } else {
                "endpoints"
            };
            (kind, !cluster.services.is_empty())
        }
        _ => {
            return Err(CliError::Usage(
                "a NAME is only taken for pods, services and endpoints",
            ))
        }
    };
    if found {
        Ok(())
    } else {
        Err(NotFound {
            kind,
            name: name.to_owned(),
        }
        .into())
    }
}

fn file_cluster(path: Option<&Path>) -> Result<Cluster, CliError> {
    let path = path.ok_or(CliError::Usage("this command needs --config FILE"))?;
    Ok(config::load(path)?)
}

/// A cluster, its objects' creation times (unknown when read from a file)
/// and the clock they are relative to.
type State = (Cluster, Option<BTreeMap<String, i64>>, i64);

/// The cluster from `--config FILE` (ages unknown) or from the running router.
fn cluster_state(target: &Target) -> Result<State, CliError> {
    if let Some(path) = &target.config {
        return Ok((file_cluster(Some(path))?, None, 0));
    }
    match ask(target, &Request::State)? {
        Response::State {
            cluster,
            created,
            now_unix,
            ..
        } => Ok((cluster, Some(created), now_unix)),
        other => Err(unexpected(other)),
    }
}

fn ask(target: &Target, request: &Request) -> Result<Response, CliError> {
    let path = match (&target.server, &target.node) {
        (Some(p), _) => p.clone(),
        (None, Some(node)) => protocol::default_socket(node),
        (None, None) => protocol::find_socket()?,
    };
    match protocol::request(&path, request)? {
        Response::Error(e) => Err(CliError::Router(e)),
        r => Ok(r),
    }
}

fn unexpected(r: Response) -> CliError {
    CliError::Unexpected(Box::new(r))
}
