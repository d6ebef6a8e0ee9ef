//! Reads that the clusters of one run share (a sweep, a scan, a batch): a VPC's subnets, route tables,
//! security groups and open groups' rule ids, and the region's Kubernetes version support are read
//! once, not once per cluster. Clusters evaluated at once wait for the one read of what they share;
//! different keys are read in parallel. A fix's own reads never use them (`collect_fresh`).
//! Scoped to the run (a task-local set around the evaluations), so nothing outlives it and a later run
//! never sees stale data. A failed read is not kept: the next cluster tries again.

use super::convert::RawSubnet;
use super::groups::RuleIds;
use super::CollectError;
use crate::model::{Fact, SecurityGroup, VersionSupport};
use aws_sdk_ec2::types::RouteTable;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// One read per key, shared by everyone who asks for it during the run.
struct Memo<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    async fn get_or_read<F>(&self, key: K, read: F) -> Result<V, CollectError>
    where
        F: Future<Output = Result<V, CollectError>>,
    {
        let cell = match self.cells.lock() {
            Ok(mut cells) => cells.entry(key).or_default().clone(),
            // A poisoned map only loses sharing, never a read.
            Err(_) => Arc::new(OnceCell::new()),
        };
        cell.get_or_try_init(|| read).await.cloned()
    }
}

#[derive(Default)]
pub struct Shared {
    /// vpc id → its route tables.
    route_tables: Memo<String, Fact<Vec<RouteTable>>>,
    /// vpc id → its subnets.
    subnets: Memo<String, Fact<Vec<RawSubnet>>>,
    /// vpc id → its security groups.
    groups: Memo<String, Fact<Vec<SecurityGroup>>>,
    /// vpc id → the rule ids of its world-open groups.
    rule_ids: Memo<String, RuleIds>,
    /// (region, version) → what DescribeClusterVersions said.
    versions: Memo<(String, String), Fact<Option<VersionSupport>>>,
}

tokio::task_local! {
    static SHARED: Arc<Shared>;
}

/// Runs `work` with `shared` as the run's shared reads.
pub async fn within<F: Future>(shared: Arc<Shared>, work: F) -> F::Output {
    SHARED.scope(shared, work).await
}

fn current() -> Option<Arc<Shared>> {
    SHARED.try_with(Arc::clone).ok()
}

/// `read`, or the run's one read of the same key (outside a run, always `read`).
async fn once<K, V, F>(pick: fn(&Shared) -> &Memo<K, V>, key: K, read: F) -> Result<V, CollectError>
where
    K: Eq + Hash,
    V: Clone,
    F: Future<Output = Result<V, CollectError>>,
{
    match current() {
        Some(s) => pick(&s).get_or_read(key, read).await,
        None => read.await,
    }
}

type Read<V> = Result<V, CollectError>;

/// A VPC's route tables.
pub(super) async fn route_tables(
    vpc: &str,
    read: impl Future<Output = Read<Fact<Vec<RouteTable>>>>,
) -> Read<Fact<Vec<RouteTable>>> {
    once(|s| &s.route_tables, vpc.to_string(), read).await
}

/// A VPC's subnets.
pub(super) async fn subnets(
    vpc: &str,
    read: impl Future<Output = Read<Fact<Vec<RawSubnet>>>>,
) -> Read<Fact<Vec<RawSubnet>>> {
    once(|s| &s.subnets, vpc.to_string(), read).await
}

/// A VPC's security groups.
pub(super) async fn groups(
    vpc: &str,
    read: impl Future<Output = Read<Fact<Vec<SecurityGroup>>>>,
) -> Read<Fact<Vec<SecurityGroup>>> {
    once(|s| &s.groups, vpc.to_string(), read).await
}

/// The rule ids of a VPC's world-open groups.
pub(super) async fn rule_ids(
    vpc: &str,
    read: impl Future<Output = Read<RuleIds>>,
) -> Read<RuleIds> {
    once(|s| &s.rule_ids, vpc.to_string(), read).await
}

/// A Kubernetes version's support in a region.
pub(super) async fn version(
    region: &str,
    version: &str,
    read: impl Future<Output = Read<Fact<Option<VersionSupport>>>>,
) -> Read<Fact<Option<VersionSupport>>> {
    let key = (region.to_string(), version.to_string());
    once(|s| &s.versions, key, read).await
}

/// Whether the caller runs inside a run's shared reads.
pub(super) fn in_run() -> bool {
    current().is_some()
}
