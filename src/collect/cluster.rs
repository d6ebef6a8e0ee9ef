//! The cluster's own description, the region's cluster list, and its Kubernetes version's support.

use super::errors::fatal;
use super::page::{every_page, plain, Round};
use super::{convert, endpoint_flags, shared, Clients, CollectError};
use crate::model::{Cluster, Fact, Part, ReadPlan, VersionSupport};

/// Lists every cluster name in the region (paginated).
pub async fn list_clusters(clients: &Clients) -> Result<Vec<String>, CollectError> {
    clients
        .eks
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| fatal("ListClusters", e))
}

/// DescribeCluster; without the cluster itself there is nothing to evaluate, so every failure is fatal.
pub(super) async fn describe(
    clients: &Clients,
    name: &str,
    at: Round<'_>,
) -> Result<Cluster, CollectError> {
    at.call();
    let flags = endpoint_flags::EndpointFlags::default();
    let out = clients
        .eks
        .describe_cluster()
        .name(name)
        .customize()
        .interceptor(flags.clone())
        .send()
        .await;
    match out {
        Ok(out) => match out.cluster() {
            Some(c) => Ok(endpoint_flags::unless_missing(
                convert::cluster(c, name),
                &flags,
            )),
            None => Err(CollectError::ClusterNotFound(name.to_string())),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_not_found_exception()) =>
        {
            Err(CollectError::ClusterNotFound(name.to_string()))
        }
        Err(e) => Err(fatal("DescribeCluster", e)),
    }
}

/// EKS's support status of one Kubernetes version (with `includeAll`, so unsupported ones are listed
/// too), read once per region and version in a run.
pub(super) async fn version_support(
    clients: &Clients,
    version: Option<&str>,
    plan: &impl ReadPlan,
    at: Round<'_>,
) -> Result<Fact<Option<VersionSupport>>, CollectError> {
    if !plan.needs(Part::VersionSupport) {
        return Ok(super::not_collected(Part::VersionSupport));
    }
    let Some(version) = version else {
        return Ok(Fact::unknown(
            "NotReturned",
            "DescribeCluster answered without the Kubernetes version",
        ));
    };
    let region = clients
        .eks
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    shared::version(&region, version, read_version(clients, version, at)).await
}

async fn read_version(
    clients: &Clients,
    version: &str,
    at: Round<'_>,
) -> Result<Fact<Option<VersionSupport>>, CollectError> {
    let pages = clients
        .eks
        .describe_cluster_versions()
        .cluster_versions(version)
        .include_all(true)
        .into_paginator()
        .send();
    let found = every_page(
        "DescribeClusterVersions",
        pages,
        at,
        |p, out| {
            out.extend(
                p.cluster_versions()
                    .iter()
                    .filter(|v| v.cluster_version() == Some(version))
                    .filter_map(convert::version_support),
            )
        },
        plain,
    )
    .await?;
    Ok(found.map(|v| v.into_iter().next()))
}
