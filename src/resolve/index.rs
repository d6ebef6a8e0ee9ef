//! The region's clusters and what their control planes use (groups, subnets, VPC), for matching resources
//! that carry no trustworthy cluster tag; cached for the life of a warm container with a short expiry.

use super::{error_line, filter, FILTER_VALUES};
use crate::collect::Clients;
use futures::{stream, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// DescribeCluster calls in flight while the region index is built.
const INDEX_FAN_OUT: usize = 8;
const INDEX_TTL: Duration = Duration::from_secs(120);

/// What one cluster's control plane is made of, for matching resources that carry no trustworthy tag.
#[derive(Debug, Clone, Default)]
pub struct IndexedCluster {
    pub groups: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
    pub vpc: Option<String>,
}

pub(super) type Index = BTreeMap<String, IndexedCluster>;

/// The region's clusters, cached for the life of a warm container with a short expiry. Built under an
/// async lock, so kinds resolved concurrently share one build.
#[derive(Default)]
pub struct RegionIndex {
    cached: tokio::sync::Mutex<Option<(Instant, std::sync::Arc<Index>)>>,
}

impl RegionIndex {
    /// The index, built with `clients` when absent or expired.
    pub async fn get(&self, clients: &Clients) -> Result<std::sync::Arc<Index>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((at, idx)) = cached.as_ref() {
            if at.elapsed() < INDEX_TTL {
                return Ok(idx.clone());
            }
        }
        let idx = std::sync::Arc::new(build_index(clients).await?);
        *cached = Some((Instant::now(), idx.clone()));
        Ok(idx)
    }
}

/// ListClusters, then DescribeCluster for each (bounded fan-out); a cluster deleted in between is left out.
async fn build_index(clients: &Clients) -> Result<Index, String> {
    let names = crate::collect::list_clusters(clients)
        .await
        .map_err(|e| e.to_string())?;
    let described: Vec<Result<Option<(String, IndexedCluster)>, String>> = stream::iter(names)
        .map(|name| async move {
            let out = match clients.eks.describe_cluster().name(&name).send().await {
                Ok(o) => o,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(error_line("DescribeCluster", &e)),
            };
            let vpc = out.cluster().and_then(|c| c.resources_vpc_config());
            let mut c = IndexedCluster::default();
            if let Some(vpc) = vpc {
                c.groups = vpc.security_group_ids().iter().cloned().collect();
                c.groups
                    .extend(vpc.cluster_security_group_id().map(str::to_string));
                c.subnets = vpc.subnet_ids().iter().cloned().collect();
                c.vpc = vpc.vpc_id().map(str::to_string);
            }
            Ok(Some((name, c)))
        })
        .buffer_unordered(INDEX_FAN_OUT)
        .collect()
        .await;
    let mut idx = Index::new();
    for d in described {
        if let Some((n, c)) = d? {
            idx.insert(n, c);
        }
    }
    // Some answers (the emulator's among them) leave out the VPC: take it from the subnets.
    let missing: Vec<String> = idx
        .values()
        .filter(|c| c.vpc.is_none())
        .flat_map(|c| c.subnets.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        let subnets = pages!(
            clients.ec2,
            describe_subnets,
            "DescribeSubnets",
            "subnet-id",
            missing,
            subnets
        );
        let vpc_of: BTreeMap<&str, &str> = subnets
            .iter()
            .filter_map(|s| Some((s.subnet_id()?, s.vpc_id()?)))
            .collect();
        for c in idx.values_mut().filter(|c| c.vpc.is_none()) {
            c.vpc = c
                .subnets
                .iter()
                .find_map(|s| vpc_of.get(s.as_str()).map(|v| v.to_string()));
        }
    }
    Ok(idx)
}
