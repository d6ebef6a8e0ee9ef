//! What one run reports: the `handle` summary (its JSON field names are relied on by users and tests).

use crate::scan::ClusterReport;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    /// When this run was made (RFC 3339, UTC) and by which version.
    pub generated_at: String,
    pub version: &'static str,
    pub triggers: Vec<TriggerLine>,
    pub ignored: Vec<Ignored>,
    /// Clusters evaluated, once each however many records named them.
    pub evaluated: Vec<String>,
    /// The same clusters with their account, region and the evidence that led to each.
    pub targets: Vec<TargetLine>,
    pub clusters: Vec<ClusterReport>,
    pub published: Vec<Published>,
    pub failures: Vec<Failure>,
    /// Re-checks queued for clusters that were still settling.
    pub rechecks: Vec<RecheckSent>,
    /// Evaluations a sweep queued, one message per cluster (or per account and region).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fanned_out: Vec<FannedOut>,
    /// Accounts and regions a sweep could not reach (AssumeRole denied, region disabled, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<Failure>,
    /// Findings imported into (and archived in) Security Hub, per cluster.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_hub: Vec<HubSync>,
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Serialize)]
pub struct HubSync {
    pub cluster: String,
    pub imported: usize,
    pub archived: usize,
}

#[derive(Debug, Serialize)]
pub struct TriggerLine {
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub clusters: Vec<String>,
    /// Per cluster, what led this trigger to it (a tag, an attachment, the region index, the event itself).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetLine {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Ignored {
    pub id: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Published {
    pub cluster: String,
    pub message_id: String,
    /// `change`, `reminder` or `full` (no state table).
    pub notification: String,
    pub subject: String,
}

#[derive(Debug, Serialize)]
pub struct RecheckSent {
    pub cluster: String,
    pub attempt: u32,
    pub delay_seconds: i32,
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FannedOut {
    pub account: String,
    pub region: String,
    /// The cluster, or absent for a message that sweeps a whole account and region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub what: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl RunSummary {
    /// True when the invocation must report failure (some record is to be retried, or a direct
    /// invoke could not be completed).
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    pub(crate) fn ignore(&mut self, id: String, reason: String, message_id: Option<String>) {
        self.ignored.push(Ignored {
            id,
            reason,
            message_id,
        });
    }

    pub(crate) fn fail(&mut self, what: String, error: String) {
        self.failures.push(Failure { what, error });
    }
}
