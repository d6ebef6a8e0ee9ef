//! Stage 3, evaluate (each cluster once, a few at a time) and stage 4, act (remediate, when the policy
//! says so). Both stop at the invocation's cut-off: a cluster not done by then is handed back for retry.

use super::route::{Named, Target};
use crate::collect::CollectError;
use crate::handler::Context;
use crate::remediate::{remediate, Budget, NoHistory, Run as FixRun};
use crate::scan::{evaluate_cluster, ClusterReport, CLUSTER_CONCURRENCY};
use crate::settings::Settings;
use futures::{stream, StreamExt};
use std::collections::BTreeMap;
use tokio::time::Instant;

/// What evaluating one cluster came to.
pub enum Evaluated {
    Report(ClusterReport),
    Error(CollectError),
    /// The invocation's cut-off came before the evaluation finished (or started).
    Late,
}

/// Runs `work` unless the cut-off comes first.
pub async fn before<T>(
    cutoff: Option<Instant>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    match cutoff {
        Some(c) => tokio::time::timeout_at(c, work).await.ok(),
        None => Some(work.await),
    }
}

/// Evaluates each cluster once, a few at a time, yielding each as soon as it is done (so it is acted on
/// and notified while the others are still being read).
pub fn evaluate<'a>(
    settings: &'a Settings,
    wanted: &'a BTreeMap<Target, Named>,
    cutoff: Option<Instant>,
) -> impl futures::Stream<Item = (Target, Evaluated)> + 'a {
    // A VPC's route tables and the region's version support, read once for all the run's clusters; the
    // node instances of a scope's clusters, read together.
    let reads = std::sync::Arc::new(crate::collect::shared::Shared::default());
    let mut scopes: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for (account, region, name) in wanted.keys() {
        scopes
            .entry((account, region))
            .or_default()
            .push(name.clone());
    }
    let peers: BTreeMap<_, _> = scopes
        .into_iter()
        .map(|(scope, names)| (scope, crate::collect::shared::Peers::new(names)))
        .collect();
    stream::iter(wanted.iter())
        .map(move |(key, named)| {
            let reads = reads.clone();
            let peers = peers[&(key.0.as_str(), key.1.as_str())].clone();
            async move {
                let work = crate::collect::shared::within_peers(
                    reads,
                    peers,
                    evaluate_cluster(&named.scope.clients, &key.2, settings),
                );
                let out = match before(cutoff, work).await {
                    Some(Ok(r)) => Evaluated::Report(r),
                    Some(Err(e)) => Evaluated::Error(e),
                    None => Evaluated::Late,
                };
                (key.clone(), out)
            }
        })
        .buffer_unordered(CLUSTER_CONCURRENCY)
}

/// Stage 4: applies (or plans) the opted-in fixes. `Ok(true)`: the cluster needs a re-check after them.
pub async fn act(
    ctx: &Context,
    (settings, budget): (&Settings, &Budget),
    named: &Named,
    report: &mut ClusterReport,
    cutoff: Option<Instant>,
) -> Result<bool, String> {
    if !ctx.policy.active() {
        return Ok(false);
    }
    let mut history = NoHistory;
    let mut fixes = FixRun {
        budget,
        history: &mut history,
    };
    let work = remediate(
        &named.scope.clients,
        &report.cluster,
        &report.results,
        settings,
        &ctx.policy,
        &mut fixes,
    );
    match before(cutoff, work).await {
        Some(Ok(pass)) => {
            report.remediations = pass.remediations;
            Ok(pass.recheck)
        }
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the invocation's deadline came before the fixes were done".into()),
    }
}
