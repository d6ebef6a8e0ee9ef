//! Reads that the clusters of one run share (a sweep, a scan, a batch): a VPC's subnets, route tables,
//! security groups and open groups' rule ids, and the region's Kubernetes version support are read
//! once, not once per cluster. Clusters evaluated at once wait for the one read of what they share;
//! different keys are read in parallel. A fix's own reads never use them (`collect_fresh`).
//! The node instances of the clusters a run evaluates in one scope (one account and region) are read
//! together: one DescribeInstances for up to `PEER_CHUNK` clusters, by their
//! `kubernetes.io/cluster/<name>` tag keys, split by those tags.
//! Scoped to the run (a task-local set around the evaluations), so nothing outlives it and a later run
//! never sees stale data. A failed read is not kept: the next cluster tries again.

use super::convert::RawSubnet;
use super::groups::RuleIds;
use super::CollectError;
use crate::model::{Fact, Instance, SecurityGroup, VersionSupport};
use aws_sdk_ec2::types::RouteTable;
use std::collections::{BTreeMap, HashMap};
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

/// How many clusters' instances one DescribeInstances asks for: one `tag-key` value each, and EC2
/// takes at most 200 filter values in a call (four more go to the instance states).
pub const PEER_CHUNK: usize = 150;

/// A cluster's node instances, by cluster name.
pub type InstancesByCluster = Arc<BTreeMap<String, Vec<Instance>>>;

/// The clusters a run evaluates with the same clients (one account and region).
#[derive(Default)]
pub struct Peers {
    /// Sorted, each once.
    names: Vec<String>,
    /// chunk number → the instances of that chunk's clusters.
    chunks: Memo<usize, Fact<InstancesByCluster>>,
}

impl Peers {
    pub fn new(names: impl IntoIterator<Item = String>) -> Arc<Peers> {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        Arc::new(Peers {
            names,
            chunks: Memo::default(),
        })
    }
}

struct Run {
    shared: Arc<Shared>,
    peers: Option<Arc<Peers>>,
}

tokio::task_local! {
    static RUN: Run;
}

/// Runs `work` with `shared` as the run's shared reads.
pub async fn within<F: Future>(shared: Arc<Shared>, work: F) -> F::Output {
    RUN.scope(
        Run {
            shared,
            peers: None,
        },
        work,
    )
    .await
}

/// Runs `work` (one cluster of `peers`) with `shared` as the run's shared reads and its node instances
/// read together with its peers'.
pub async fn within_peers<F: Future>(shared: Arc<Shared>, peers: Arc<Peers>, work: F) -> F::Output {
    let run = Run {
        shared,
        peers: Some(peers),
    };
    RUN.scope(run, work).await
}

fn current() -> Option<Arc<Shared>> {
    RUN.try_with(|r| r.shared.clone()).ok()
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

/// `cluster`'s node instances from the one read of its chunk of peers (`read` takes the chunk's names);
/// `None` when the run has no peers that include it.
pub(super) async fn peer_instances<F, R>(
    cluster: &str,
    read: F,
) -> Option<Read<Fact<Vec<Instance>>>>
where
    F: FnOnce(Vec<String>) -> R,
    R: Future<Output = Read<Fact<InstancesByCluster>>>,
{
    let peers = RUN.try_with(|r| r.peers.clone()).ok().flatten()?;
    let at = peers
        .names
        .binary_search_by(|n| n.as_str().cmp(cluster))
        .ok()?;
    let chunk = at / PEER_CHUNK;
    let end = peers.names.len().min((chunk + 1) * PEER_CHUNK);
    // Lazy: only the cluster that reads its chunk copies the chunk's names.
    let read_chunk = async { read(peers.names[chunk * PEER_CHUNK..end].to_vec()).await };
    let all = peers.chunks.get_or_read(chunk, read_chunk).await;
    Some(all.map(|f| f.map(|m| m.get(cluster).cloned().unwrap_or_default())))
}

/// Whether the caller runs inside a run's shared reads.
pub(super) fn in_run() -> bool {
    current().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// 160 peers: two reads (150 names, then 10), each cluster answered from its own chunk's read.
    #[tokio::test]
    async fn peers_are_read_in_chunks_of_at_most_150() {
        let names: Vec<String> = (0..160).map(|i| format!("c{i:03}")).collect();
        let (run, peers) = (Arc::new(Shared::default()), Peers::new(names.clone()));
        let asked: Mutex<Vec<Vec<String>>> = Mutex::default();
        for n in &names {
            let read = |chunk: Vec<String>| async {
                asked.lock().unwrap().push(chunk.clone());
                let map = chunk.into_iter().map(|c| (c, vec![])).collect();
                Ok(Fact::Known(Arc::new(map)))
            };
            let found = within_peers(run.clone(), peers.clone(), peer_instances(n, read)).await;
            assert!(matches!(found, Some(Ok(Fact::Known(_)))), "{n}");
        }
        let sizes: Vec<usize> = asked.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [150, 10]);
        let outside = within(run, peer_instances("c000", |_| async { unreachable!() })).await;
        assert!(outside.is_none(), "without peers, a cluster reads alone");
    }
}
