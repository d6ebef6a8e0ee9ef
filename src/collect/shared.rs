//! Reads that the clusters of one run share (a sweep, a scan, a batch): a VPC's subnets and route
//! tables and the region's Kubernetes version support are read once, not once per cluster. Clusters
//! evaluated at once wait for the one read of what they share; different keys are read in parallel.
//! Scoped to the run (a task-local set around the evaluations), so nothing outlives it and a later run
//! never sees stale data. A failed read is not kept: the next cluster tries again.

use super::convert::RawSubnet;
use super::CollectError;
use crate::model::{Fact, VersionSupport};
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

/// A VPC's route tables: the run's read of them, or `read` (outside a run, always `read`).
pub(super) async fn route_tables<F>(
    vpc: &str,
    read: F,
) -> Result<Fact<Vec<RouteTable>>, CollectError>
where
    F: Future<Output = Result<Fact<Vec<RouteTable>>, CollectError>>,
{
    match current() {
        Some(s) => s.route_tables.get_or_read(vpc.to_string(), read).await,
        None => read.await,
    }
}

/// A VPC's subnets, likewise.
pub(super) async fn subnets<F>(vpc: &str, read: F) -> Result<Fact<Vec<RawSubnet>>, CollectError>
where
    F: Future<Output = Result<Fact<Vec<RawSubnet>>, CollectError>>,
{
    match current() {
        Some(s) => s.subnets.get_or_read(vpc.to_string(), read).await,
        None => read.await,
    }
}

/// A Kubernetes version's support in a region, likewise.
pub(super) async fn version<F>(
    region: &str,
    version: &str,
    read: F,
) -> Result<Fact<Option<VersionSupport>>, CollectError>
where
    F: Future<Output = Result<Fact<Option<VersionSupport>>, CollectError>>,
{
    match current() {
        Some(s) => {
            let key = (region.to_string(), version.to_string());
            s.versions.get_or_read(key, read).await
        }
        None => read.await,
    }
}

/// Whether the caller runs inside a run's shared reads.
pub(super) fn in_run() -> bool {
    current().is_some()
}
