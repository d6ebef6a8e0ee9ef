//! Reading a cluster's verdicts, and which clusters a run reached, in assertions.

use eks_warden::rules::{RuleResult, Status};
use eks_warden::scan::ClusterReport;

/// Every verdict of `rule`.
pub fn results<'a>(r: &'a ClusterReport, rule: &str) -> Vec<&'a RuleResult> {
    r.results.iter().filter(|x| x.rule_id == rule).collect()
}

/// The one verdict of `rule` (asserted to be one): its status and message.
#[track_caller]
pub fn only(r: &ClusterReport, rule: &str) -> (Status, String) {
    let v = results(r, rule);
    assert_eq!(v.len(), 1, "{rule}: {v:#?}");
    (v[0].status, v[0].message.clone())
}

/// The failures of `rule`.
pub fn fails<'a>(r: &'a ClusterReport, rule: &str) -> Vec<&'a RuleResult> {
    r.results
        .iter()
        .filter(|x| x.rule_id == rule && x.status == Status::Fail)
        .collect()
}

/// Each verdict of `rule` as (resource, status).
pub fn statuses(r: &ClusterReport, rule: &str) -> Vec<(String, Status)> {
    r.results
        .iter()
        .filter(|x| x.rule_id == rule)
        .map(|x| (x.resource_id.clone(), x.status))
        .collect()
}

/// The (account, region, cluster) a run evaluated, sorted.
pub fn reached(run: &eks_warden::handler::RunSummary) -> Vec<(String, String, String)> {
    let mut got: Vec<_> = run
        .targets
        .iter()
        .map(|t| (t.account.clone(), t.region.clone(), t.cluster.clone()))
        .collect();
    got.sort();
    got
}
