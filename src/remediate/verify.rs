//! Verification: judge each applied fix on the one read made after the pass.

use super::{same_finding, Action, Outcome};
use crate::model::ClusterSnapshot;
use crate::rules::{RuleResult, Status};

/// Whether the fix took. A cluster update is asynchronous in EKS: while the cluster is UPDATING the fix is
/// reported applied-pending, and the re-check confirms it. A fix cut by the write limit is judged on what
/// it touched: the instances it changed must be gone from the finding.
pub(super) fn judge(
    after: &ClusterSnapshot,
    results: &[RuleResult],
    r: &RuleResult,
    action: &Action,
) -> (Outcome, String) {
    let still = results
        .iter()
        .find(|n| same_finding(n, r) && n.status == Status::Fail);
    let still = match (still, action) {
        (Some(n), Action::RequireImdsV2 { instance_ids }) => {
            let listed = n.evidence.get("instances").cloned().unwrap_or_default();
            let listed: Vec<&str> = listed.split(',').map(str::trim).collect();
            n.resource_id == r.resource_id
                && (instance_ids.iter().any(|i| listed.contains(&i.as_str()))
                    || !n.evidence.contains_key("instances"))
        }
        (found, _) => found.is_some(),
    };
    match (still, after.cluster.status.as_str()) {
        (false, _) => (
            Outcome::Remediated,
            "applied and verified on a fresh read".into(),
        ),
        (true, "UPDATING") => (
            Outcome::Remediated,
            "applied; the cluster is UPDATING and a re-check will confirm".into(),
        ),
        (true, _) => (
            Outcome::Failed,
            "applied, but the finding still holds on a fresh read".into(),
        ),
    }
}
