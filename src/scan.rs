//! Evaluating clusters: collect each snapshot, run the rules, gather one report.

use crate::collect::{self, Clients, CollectError};
use crate::rules::{self, RuleResult, Severity, Status};
use crate::settings::Settings;
use futures::{stream, StreamExt};
use serde::Serialize;
use tracing::{info, warn, Instrument};

/// How many clusters are evaluated at once.
pub const CLUSTER_CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub cluster_arn: String,
    /// The owning team, from the cluster's owner tag (`EKS_WARDEN_OWNER_TAGS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub status: String,
    pub results: Vec<RuleResult>,
    /// AWS requests the evaluation made.
    pub aws_calls: u32,
    /// Fixes planned, applied or skipped (remediation modes only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remediations: Vec<crate::remediate::Remediation>,
}

impl ClusterReport {
    pub fn failures(&self) -> impl Iterator<Item = &RuleResult> {
        self.results.iter().filter(|r| r.status == Status::Fail)
    }
}

/// A cluster that could not be evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterError {
    pub cluster: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub clusters: usize,
    pub results: usize,
    pub pass: usize,
    pub fail: usize,
    pub unknown: usize,
    pub exempt: usize,
    /// FAIL results per severity.
    pub fail_by_severity: std::collections::BTreeMap<Severity, usize>,
    pub highest_severity: Option<Severity>,
    pub errors: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// When the scan was made (RFC 3339, UTC) and by which version of eks-warden.
    pub generated_at: String,
    pub version: &'static str,
    pub clusters: Vec<ClusterReport>,
    /// Clusters listed by the region but deleted before they could be read.
    pub skipped: Vec<ClusterError>,
    pub errors: Vec<ClusterError>,
    pub summary: Summary,
    /// With `scan --baseline`: each FAIL marked new or unchanged, and the resolved ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::baseline::Comparison>,
}

impl ScanReport {
    fn finish(mut self) -> Self {
        self.clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        let mut s = Summary {
            clusters: self.clusters.len(),
            errors: self.errors.len(),
            ..Summary::default()
        };
        for r in self.clusters.iter().flat_map(|c| &c.results) {
            s.results += 1;
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Unknown => s.unknown += 1,
                Status::Exempt => s.exempt += 1,
                Status::Fail => {
                    s.fail += 1;
                    *s.fail_by_severity.entry(r.severity).or_default() += 1;
                    s.highest_severity = s.highest_severity.max(Some(r.severity));
                }
            }
        }
        self.summary = s;
        self.generated_at = crate::state::rfc3339(std::time::SystemTime::now());
        self.version = env!("CARGO_PKG_VERSION");
        self
    }

    /// True when some cluster has a FAIL at or above `threshold`.
    pub fn fails_at(&self, threshold: Severity) -> bool {
        self.summary
            .highest_severity
            .is_some_and(|h| h >= threshold)
    }
}

/// Evaluates one cluster. `Err(ClusterNotFound)` when it does not exist (any more).
pub async fn evaluate_cluster(
    clients: &Clients,
    name: &str,
    settings: &Settings,
) -> Result<ClusterReport, CollectError> {
    let span = tracing::info_span!("evaluate", cluster = %name);
    async {
        let (snapshot, stats) = collect::collect_with(clients, name, settings).await?;
        let mut results = rules::evaluate(&snapshot, settings);
        let scope = crate::finding::Scope {
            account: &snapshot.account,
            region: &snapshot.region,
            cluster: &snapshot.cluster.name,
        };
        crate::finding::assign_ids(scope, &mut results);
        let cluster_arn = if snapshot.cluster.arn.is_empty() {
            crate::finding::cluster_arn(&snapshot.account, &snapshot.region, &snapshot.cluster.name)
        } else {
            snapshot.cluster.arn.clone()
        };
        let fails = results.iter().filter(|r| r.status == Status::Fail).count();
        info!(
            fails,
            results = results.len(),
            aws_calls = stats.calls,
            "evaluated"
        );
        Ok(ClusterReport {
            account: snapshot.account,
            region: snapshot.region,
            cluster: snapshot.cluster.name,
            cluster_arn,
            owner: settings.owner_of(&snapshot.cluster.tags),
            status: snapshot.cluster.status,
            results,
            aws_calls: stats.calls,
            remediations: vec![],
        })
    }
    .instrument(span)
    .await
}

/// Evaluates the named clusters, or every cluster of the region when `names` is empty.
///
/// A named cluster that does not exist is an error; a listed one deleted before it was read is skipped.
pub async fn scan(
    clients: &Clients,
    names: &[String],
    settings: &Settings,
) -> Result<ScanReport, CollectError> {
    let (names, named) = if names.is_empty() {
        (collect::list_clusters(clients).await?, false)
    } else {
        let mut n = names.to_vec();
        n.dedup();
        (n, true)
    };
    // A VPC's route tables and the region's version support, read once for all the clusters; their
    // node instances, read together.
    let reads = std::sync::Arc::new(collect::shared::Shared::default());
    let peers = collect::shared::Peers::new(names.iter().cloned());
    let outcomes: Vec<(String, Result<ClusterReport, CollectError>)> = stream::iter(names)
        .map(|name| {
            let (reads, peers) = (reads.clone(), peers.clone());
            async move {
                let work = evaluate_cluster(clients, &name, settings);
                let r = collect::shared::within_peers(reads, peers, work).await;
                (name, r)
            }
        })
        .buffer_unordered(CLUSTER_CONCURRENCY)
        .collect()
        .await;
    let mut report = ScanReport::default();
    for (name, outcome) in outcomes {
        match outcome {
            Ok(c) => report.clusters.push(c),
            Err(e @ CollectError::ClusterNotFound(_)) if !named => {
                info!(cluster = %name, "cluster deleted during the scan; skipped");
                report.skipped.push(ClusterError {
                    cluster: name,
                    error: e.to_string(),
                });
            }
            Err(e) => {
                warn!(cluster = %name, error = %e, "evaluation failed");
                report.errors.push(ClusterError {
                    cluster: name,
                    error: e.to_string(),
                });
            }
        }
    }
    report.errors.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    Ok(report.finish())
}
