//! The resources this API server serves: one table that discovery, the
//! request router, the store and the Table printer all read, so a resource is
//! declared once.

use std::fmt;

/// One served resource type (a group/version/resource with its kind).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Resource {
    /// `v1` namespaces (cluster-scoped).
    Namespaces,
    /// `v1` nodes (cluster-scoped).
    Nodes,
    /// `v1` pods.
    Pods,
    /// `v1` services.
    Services,
    /// `v1` endpoints, mirrored from the EndpointSlices.
    Endpoints,
    /// `apps/v1` deployments.
    Deployments,
    /// `apps/v1` replicasets.
    ReplicaSets,
    /// `discovery.k8s.io/v1` endpointslices.
    EndpointSlices,
}

/// A served API group version (the legacy core group has an empty group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupVersion {
    /// The group name, "" for the core group.
    pub group: &'static str,
    /// The version, "v1" for every group served here.
    pub version: &'static str,
}

impl GroupVersion {
    /// The `apiVersion` string objects of this group version carry.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The core group, `v1`.
pub const CORE_V1: GroupVersion = GroupVersion {
    group: "",
    version: "v1",
};
/// `apps/v1`.
pub const APPS_V1: GroupVersion = GroupVersion {
    group: "apps",
    version: "v1",
};
/// `discovery.k8s.io/v1`.
pub const DISCOVERY_V1: GroupVersion = GroupVersion {
    group: "discovery.k8s.io",
    version: "v1",
};

/// The named (non-core) groups, in discovery order.
pub const NAMED_GROUPS: [GroupVersion; 2] = [APPS_V1, DISCOVERY_V1];

/// A subresource of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes change only `.status`.
    Status,
    /// `/scale` of a Deployment or ReplicaSet (autoscaling/v1 Scale).
    Scale,
}

impl Subresource {
    /// Parses a subresource path segment.
    pub fn parse(segment: &str) -> Option<Subresource> {
        match segment {
            "status" => Some(Subresource::Status),
            "scale" => Some(Subresource::Scale),
            _ => None,
        }
    }
}

/// The verbs a full read-write resource supports, as discovery lists them.
pub const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Resource {
    /// Every served resource.
    pub const ALL: [Resource; 8] = [
        Resource::Namespaces,
        Resource::Nodes,
        Resource::Pods,
        Resource::Services,
        Resource::Endpoints,
        Resource::Deployments,
        Resource::ReplicaSets,
        Resource::EndpointSlices,
    ];

    /// The group version the resource belongs to.
    pub fn group_version(self) -> GroupVersion {
        match self {
            Resource::Deployments | Resource::ReplicaSets => APPS_V1,
            Resource::EndpointSlices => DISCOVERY_V1,
            _ => CORE_V1,
        }
    }

    /// The plural lower-case name used in paths.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Namespaces => "namespaces",
            Resource::Nodes => "nodes",
            Resource::Pods => "pods",
            Resource::Services => "services",
            Resource::Endpoints => "endpoints",
            Resource::Deployments => "deployments",
            Resource::ReplicaSets => "replicasets",
            Resource::EndpointSlices => "endpointslices",
        }
    }

    /// The singular lower-case name discovery reports.
    pub fn singular(self) -> &'static str {
        match self {
            Resource::Namespaces => "namespace",
            Resource::Nodes => "node",
            Resource::Pods => "pod",
            Resource::Services => "service",
            Resource::Endpoints => "endpoints",
            Resource::Deployments => "deployment",
            Resource::ReplicaSets => "replicaset",
            Resource::EndpointSlices => "endpointslice",
        }
    }

    /// The object kind.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Namespaces => "Namespace",
            Resource::Nodes => "Node",
            Resource::Pods => "Pod",
            Resource::Services => "Service",
            Resource::Endpoints => "Endpoints",
            Resource::Deployments => "Deployment",
            Resource::ReplicaSets => "ReplicaSet",
            Resource::EndpointSlices => "EndpointSlice",
        }
    }

    /// The short names kubectl accepts (`po`, `svc`, ...).
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::Namespaces => &["ns"],
            Resource::Nodes => &["no"],
            Resource::Pods => &["po"],
            Resource::Services => &["svc"],
            Resource::Endpoints => &["ep"],
            Resource::Deployments => &["deploy"],
            Resource::ReplicaSets => &["rs"],
            Resource::EndpointSlices => &[],
        }
    }

    /// The categories discovery reports (`kubectl get all` uses "all").
    pub fn categories(self) -> &'static [&'static str] {
        match self {
            Resource::Pods | Resource::Services | Resource::Deployments | Resource::ReplicaSets => {
                &["all"]
            }
            _ => &[],
        }
    }

    /// Whether objects live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Resource::Namespaces | Resource::Nodes)
    }

    /// The subresources served for this resource.
    pub fn subresources(self) -> &'static [Subresource] {
        match self {
            Resource::Pods | Resource::Services | Resource::Nodes | Resource::Namespaces => {
                &[Subresource::Status]
            }
            Resource::Deployments | Resource::ReplicaSets => {
                &[Subresource::Status, Subresource::Scale]
            }
            Resource::Endpoints | Resource::EndpointSlices => &[],
        }
    }

    /// Whether clients may write the resource: Endpoints are mirrored from
    /// the EndpointSlices by the controller and read-only to everyone else.
    pub fn client_writable(self) -> bool {
        self != Resource::Endpoints
    }

    /// Whether `.metadata.generation` counts spec changes (the controllers
    /// compare it with `.status.observedGeneration`).
    pub fn has_generation(self) -> bool {
        matches!(
            self,
            Resource::Deployments | Resource::ReplicaSets | Resource::Pods
        )
    }

    /// Finds the resource of a group version by its plural.
    pub fn from_path(group: &str, version: &str, plural: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| {
            let gv = r.group_version();
            gv.group == group && gv.version == version && r.plural() == plural
        })
    }

    /// The resources of one group version.
    pub fn of_group(gv: GroupVersion) -> impl Iterator<Item = Resource> {
        Resource::ALL
            .into_iter()
            .filter(move |r| r.group_version() == gv)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gv = self.group_version();
        if gv.group.is_empty() {
            f.write_str(self.plural())
        } else {
            write!(f, "{}.{}", self.plural(), gv.group)
        }
    }
}
