//! The diff of one evaluation against the cluster's last known state: what is new, resolved or exempted,
//! and the open set to remember. Pure: no I/O and no clock (the time comes in as an argument).

use crate::rules::{ResourceType, RuleResult, Severity, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Stored messages are cut to this many characters: the state item must stay far below 400 KB.
const MAX_STORED_MESSAGE: usize = 300;

/// A finding the state remembers: an open violation (`FAIL`) or one a person exempted (`EXEMPT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFinding {
    pub rule_id: String,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub severity: Severity,
    /// `FAIL` or `EXEMPT`.
    pub status: Status,
    pub message: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// One transition, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub finding_id: String,
    pub rule_id: String,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub severity: Severity,
    pub message: String,
}

impl Change {
    fn of_result(r: &RuleResult) -> Self {
        Change {
            finding_id: r.finding_id.clone(),
            rule_id: r.rule_id.clone(),
            resource_type: r.resource_type,
            resource_id: r.resource_id.clone(),
            severity: r.severity,
            message: r.message.clone(),
        }
    }

    fn of_open(id: &str, f: &OpenFinding, message: String) -> Self {
        Change {
            finding_id: id.to_string(),
            rule_id: f.rule_id.clone(),
            resource_type: f.resource_type,
            resource_id: f.resource_id.clone(),
            severity: f.severity,
            message,
        }
    }
}

/// What changed, and the open set to store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub new: Vec<Change>,
    pub resolved: Vec<Change>,
    pub exempted: Vec<Change>,
    /// finding id → what is open (or exempt) after this evaluation.
    pub open: BTreeMap<String, OpenFinding>,
}

impl Diff {
    /// True when subscribers have nothing to hear.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.resolved.is_empty() && self.exempted.is_empty()
    }

    /// The highest severity among the changes: a filter on HIGH that got the alarm gets its resolution too.
    pub fn highest(&self) -> Option<Severity> {
        self.new
            .iter()
            .chain(&self.resolved)
            .chain(&self.exempted)
            .map(|c| c.severity)
            .max()
    }
}

/// What this evaluation says about the cluster.
pub enum Seen<'a> {
    /// The cluster was read: its results, which rules are enabled, and the findings whose automatic fix was
    /// applied and verified in this evaluation (they are resolved by the fix, not left open).
    Evaluated {
        results: &'a [RuleResult],
        enabled: &'a dyn Fn(&str) -> bool,
        fixed: &'a BTreeSet<String>,
    },
    /// The cluster no longer exists: everything open is resolved.
    Gone,
}

fn cut(message: &str) -> String {
    if message.chars().count() <= MAX_STORED_MESSAGE {
        message.to_string()
    } else {
        message
            .chars()
            .take(MAX_STORED_MESSAGE - 1)
            .collect::<String>()
            + "…"
    }
}

/// Compares the previous open set with what this evaluation saw, at time `now` (RFC 3339).
///
/// * `new`: a FAIL that was not open (nothing before, or EXEMPT before).
/// * `resolved`: an open FAIL that now passes, whose resource is gone (absent from the results while its
///   rule read everything for this cluster), whose fix was applied, or whose cluster was deleted.
/// * `exempted`: an open FAIL that is now EXEMPT.
/// * UNKNOWN changes nothing: the last known state of the finding stands, and so does every finding of a
///   rule that gave any UNKNOWN for this cluster (it may not have seen the resource at all).
/// * Findings of a rule that is disabled (or no longer in the catalog) leave the state silently.
pub fn diff(previous: &BTreeMap<String, OpenFinding>, seen: Seen<'_>, now: &str) -> Diff {
    let mut d = Diff::default();
    let (results, enabled, fixed) = match seen {
        Seen::Gone => {
            for (id, f) in previous {
                if f.status == Status::Fail {
                    d.resolved
                        .push(Change::of_open(id, f, "the cluster was deleted".into()));
                }
            }
            return d;
        }
        Seen::Evaluated {
            results,
            enabled,
            fixed,
        } => (results, enabled, fixed),
    };
    let mut judged: BTreeSet<&str> = BTreeSet::new();
    for r in results {
        let id = r.finding_id.as_str();
        judged.insert(id);
        let before = previous.get(id);
        let was_open = before.is_some_and(|f| f.status == Status::Fail);
        let remember = |status: Status| OpenFinding {
            rule_id: r.rule_id.clone(),
            resource_type: r.resource_type,
            resource_id: r.resource_id.clone(),
            severity: r.severity,
            status,
            message: cut(&r.message),
            first_seen: before
                .filter(|f| f.status == status)
                .map(|f| f.first_seen.clone())
                .unwrap_or_else(|| now.to_string()),
            last_seen: now.to_string(),
        };
        match r.status {
            Status::Fail if fixed.contains(id) => {
                if !was_open {
                    d.new.push(Change::of_result(r));
                }
                let mut c = Change::of_result(r);
                c.message = "fixed automatically (see the remediation audit)".into();
                d.resolved.push(c);
            }
            Status::Fail => {
                if !was_open {
                    d.new.push(Change::of_result(r));
                }
                d.open.insert(id.to_string(), remember(Status::Fail));
            }
            Status::Exempt => {
                if was_open {
                    d.exempted.push(Change::of_result(r));
                }
                d.open.insert(id.to_string(), remember(Status::Exempt));
            }
            Status::Pass => {
                if let (true, Some(f)) = (was_open, before) {
                    d.resolved.push(Change::of_open(id, f, r.message.clone()));
                }
            }
            Status::Unknown => {
                if let Some(f) = before {
                    d.open.insert(id.to_string(), f.clone());
                }
            }
        }
    }
    absent(previous, &judged, results, enabled, &mut d);
    d
}

/// Open findings this evaluation did not mention: resolved when their rule read the resource (or read
/// everything, the resource being gone); kept when it could not; dropped silently when their rule left.
fn absent(
    previous: &BTreeMap<String, OpenFinding>,
    judged: &BTreeSet<&str>,
    results: &[RuleResult],
    enabled: &dyn Fn(&str) -> bool,
    d: &mut Diff,
) {
    let unknown_rules: BTreeSet<&str> = results
        .iter()
        .filter(|r| r.status == Status::Unknown)
        .map(|r| r.rule_id.as_str())
        .collect();
    // (rule, resource type, resource id) → whether that rule read the resource (false: UNKNOWN on it).
    let mut read: BTreeMap<(&str, ResourceType, &str), bool> = BTreeMap::new();
    for r in results {
        let e = read
            .entry((r.rule_id.as_str(), r.resource_type, r.resource_id.as_str()))
            .or_insert(true);
        *e &= r.status != Status::Unknown;
    }
    for (id, f) in previous {
        if judged.contains(id.as_str()) {
            continue;
        }
        let in_catalog = crate::rules::find(&f.rule_id).is_some();
        if !in_catalog || !enabled(&f.rule_id) {
            continue;
        }
        // Absent: resolved when the rule read this very resource (the offending part is gone, e.g. one
        // permission of a group that now passes), or read everything (the resource itself is gone).
        let resource = (f.rule_id.as_str(), f.resource_type, f.resource_id.as_str());
        let why = match read.get(&resource) {
            Some(true) => Some(format!(
                "no longer found on {} {}",
                f.resource_type.as_str(),
                f.resource_id
            )),
            Some(false) => None,
            None if unknown_rules.contains(f.rule_id.as_str()) => None,
            None => Some(format!(
                "{} {} is gone",
                f.resource_type.as_str(),
                f.resource_id
            )),
        };
        match why {
            None => {
                d.open.insert(id.clone(), f.clone());
            }
            Some(why) if f.status == Status::Fail => {
                d.resolved.push(Change::of_open(id, f, why));
            }
            Some(_) => {}
        }
    }
}

/// The diff of a plain evaluation (every rule enabled, nothing fixed): what most tests of the lifecycle
/// and its messages need.
#[cfg(test)]
pub(crate) fn evaluated(
    prev: &BTreeMap<String, OpenFinding>,
    results: &[RuleResult],
    now: &str,
) -> Diff {
    diff(
        prev,
        Seen::Evaluated {
            results,
            enabled: &|_| true,
            fixed: &BTreeSet::new(),
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::evaluated as run;
    use super::*;

    fn r(rule: &str, resource: &str, status: Status) -> RuleResult {
        RuleResult {
            rule_id: rule.into(),
            severity: Severity::High,
            status,
            resource_type: ResourceType::SecurityGroup,
            resource_id: resource.into(),
            message: format!("{rule} on {resource}"),
            evidence: Default::default(),
            discriminator: None,
            finding_id: format!("id-{rule}-{resource}"),
        }
    }

    const SG: &str = "sg-open-ingress";
    const LOG: &str = "control-plane-logging-incomplete";

    fn run_with(
        prev: &BTreeMap<String, OpenFinding>,
        results: &[RuleResult],
        now: &str,
        enabled: &dyn Fn(&str) -> bool,
        fixed: &BTreeSet<String>,
    ) -> Diff {
        diff(
            prev,
            Seen::Evaluated {
                results,
                enabled,
                fixed,
            },
            now,
        )
    }

    fn ids(c: &[Change]) -> Vec<&str> {
        c.iter().map(|c| c.finding_id.as_str()).collect()
    }

    #[test]
    fn first_evaluation_everything_failing_is_new_and_passes_are_not_stored() {
        let d = run(
            &BTreeMap::new(),
            &[
                r(SG, "sg-1", Status::Fail),
                r(SG, "sg-2", Status::Pass),
                r(LOG, "c", Status::Fail),
            ],
            "t1",
        );
        assert_eq!(
            ids(&d.new),
            [
                "id-sg-open-ingress-sg-1",
                "id-control-plane-logging-incomplete-c"
            ]
        );
        assert!(d.resolved.is_empty() && d.exempted.is_empty());
        assert_eq!(d.open.len(), 2);
        assert_eq!(d.open["id-sg-open-ingress-sg-1"].first_seen, "t1");
    }

    #[test]
    fn the_same_state_again_is_no_change_and_keeps_first_seen() {
        let results = [r(SG, "sg-1", Status::Fail)];
        let first = run(&BTreeMap::new(), &results, "t1");
        let again = run(&first.open, &results, "t2");
        assert!(again.is_empty(), "{again:?}");
        let f = &again.open["id-sg-open-ingress-sg-1"];
        assert_eq!((f.first_seen.as_str(), f.last_seen.as_str()), ("t1", "t2"));
    }

    #[test]
    fn pass_resolves_and_fail_again_is_new() {
        let open = run(&BTreeMap::new(), &[r(SG, "sg-1", Status::Fail)], "t1").open;
        let fixed = run(&open, &[r(SG, "sg-1", Status::Pass)], "t2");
        assert_eq!(ids(&fixed.resolved), ["id-sg-open-ingress-sg-1"]);
        assert!(fixed.open.is_empty());
        let reopened = run(&fixed.open, &[r(SG, "sg-1", Status::Fail)], "t3");
        assert_eq!(ids(&reopened.new), ["id-sg-open-ingress-sg-1"]);
        assert_eq!(reopened.open["id-sg-open-ingress-sg-1"].first_seen, "t3");
    }

    #[test]
    fn a_resource_that_is_gone_resolves_when_its_rule_read_everything() {
        let open = run(
            &BTreeMap::new(),
            &[r(SG, "sg-1", Status::Fail), r(SG, "sg-2", Status::Fail)],
            "t1",
        )
        .open;
        let d = run(&open, &[r(SG, "sg-2", Status::Fail)], "t2");
        assert_eq!(ids(&d.resolved), ["id-sg-open-ingress-sg-1"]);
        assert!(d.resolved[0].message.contains("is gone"));
        assert_eq!(d.open.len(), 1);
    }

    /// Guards: a rule that could not read everything never resolves by absence.
    #[test]
    fn unknown_changes_nothing() {
        let open = run(
            &BTreeMap::new(),
            &[r(SG, "sg-1", Status::Fail), r(LOG, "c", Status::Fail)],
            "t1",
        )
        .open;
        // The same finding unknown: it stays open, unchanged.
        let d = run(
            &open,
            &[r(SG, "sg-1", Status::Unknown), r(LOG, "c", Status::Fail)],
            "t2",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            d.open["id-sg-open-ingress-sg-1"],
            open["id-sg-open-ingress-sg-1"]
        );
        // Another resource of the rule unknown, sg-1 absent: it may simply not have been seen.
        let d = run(
            &open,
            &[r(SG, "sg-9", Status::Unknown), r(LOG, "c", Status::Fail)],
            "t2",
        );
        assert!(d.is_empty(), "{d:?}");
        assert!(d.open.contains_key("id-sg-open-ingress-sg-1"));
        // An unknown never opens either.
        let d = run(&BTreeMap::new(), &[r(SG, "sg-1", Status::Unknown)], "t1");
        assert!(d.is_empty() && d.open.is_empty());
    }

    /// Guards against over-caution: an UNKNOWN on one group must not keep a fixed permission of another
    /// group open, while an UNKNOWN on the same group keeps it.
    #[test]
    fn a_keyed_finding_resolves_when_its_resource_was_read() {
        let keyed = r(SG, "sg-1", Status::Fail).keyed("tcp 22 0.0.0.0/0");
        let mut keyed = keyed;
        keyed.finding_id = "id-keyed".into();
        let open = run(&BTreeMap::new(), &[keyed], "t1").open;
        let d = run(
            &open,
            &[r(SG, "sg-1", Status::Pass), r(SG, "sg-9", Status::Unknown)],
            "t2",
        );
        assert_eq!(ids(&d.resolved), ["id-keyed"]);
        assert!(d.resolved[0]
            .message
            .contains("no longer found on security-group sg-1"));
        let d = run(&open, &[r(SG, "sg-1", Status::Unknown)], "t2");
        assert!(d.is_empty() && d.open.contains_key("id-keyed"));
    }

    #[test]
    fn exempt_after_fail_is_exempted_and_fail_after_exempt_is_new() {
        let open = run(&BTreeMap::new(), &[r(SG, "sg-1", Status::Fail)], "t1").open;
        let d = run(&open, &[r(SG, "sg-1", Status::Exempt)], "t2");
        assert_eq!(ids(&d.exempted), ["id-sg-open-ingress-sg-1"]);
        assert_eq!(d.open["id-sg-open-ingress-sg-1"].status, Status::Exempt);
        let same = run(&d.open, &[r(SG, "sg-1", Status::Exempt)], "t3");
        assert!(same.is_empty());
        let back = run(&d.open, &[r(SG, "sg-1", Status::Fail)], "t4");
        assert_eq!(ids(&back.new), ["id-sg-open-ingress-sg-1"]);
        // An exempt finding that passes or vanishes leaves silently.
        assert!(run(&d.open, &[r(SG, "sg-1", Status::Pass)], "t5").is_empty());
        assert!(run(&d.open, &[], "t5").is_empty());
    }

    /// Guards: disabling a rule is not a fix; its findings leave the state without a "resolved".
    #[test]
    fn findings_of_a_disabled_rule_leave_silently() {
        let open = run(
            &BTreeMap::new(),
            &[r(SG, "sg-1", Status::Fail), r(LOG, "c", Status::Fail)],
            "t1",
        )
        .open;
        let d = run_with(
            &open,
            &[r(LOG, "c", Status::Fail)],
            "t2",
            &|id| id != SG,
            &BTreeSet::new(),
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            d.open.keys().collect::<Vec<_>>(),
            ["id-control-plane-logging-incomplete-c"]
        );
    }

    #[test]
    fn a_deleted_cluster_resolves_every_open_violation() {
        let mut open = run(
            &BTreeMap::new(),
            &[r(SG, "sg-1", Status::Fail), r(LOG, "c", Status::Fail)],
            "t1",
        )
        .open;
        open.get_mut("id-control-plane-logging-incomplete-c")
            .unwrap()
            .status = Status::Exempt;
        let d = diff(&open, Seen::Gone, "t2");
        assert_eq!(ids(&d.resolved), ["id-sg-open-ingress-sg-1"]);
        assert!(d.open.is_empty() && d.new.is_empty());
    }

    #[test]
    fn a_verified_fix_resolves_in_the_same_evaluation() {
        let fixed: BTreeSet<String> = ["id-sg-open-ingress-sg-1".to_string()].into();
        // Not open before: new and resolved at once, nothing left open.
        let d = run_with(
            &BTreeMap::new(),
            &[r(SG, "sg-1", Status::Fail)],
            "t1",
            &|_| true,
            &fixed,
        );
        assert_eq!((d.new.len(), d.resolved.len(), d.open.len()), (1, 1, 0));
        // Open before: resolved only.
        let open = run(&BTreeMap::new(), &[r(SG, "sg-1", Status::Fail)], "t1").open;
        let d = run_with(
            &open,
            &[r(SG, "sg-1", Status::Fail)],
            "t2",
            &|_| true,
            &fixed,
        );
        assert_eq!((d.new.len(), d.resolved.len(), d.open.len()), (0, 1, 0));
    }

    #[test]
    fn highest_severity_among_changes() {
        let mut crit = r(LOG, "c", Status::Fail);
        crit.severity = Severity::Critical;
        let open = run(&BTreeMap::new(), &[crit.clone()], "t1").open;
        let d = run(&open, &[r(SG, "sg-1", Status::Fail)], "t2");
        assert_eq!(
            d.highest(),
            Some(Severity::Critical),
            "the resolution carries its own severity"
        );
    }

    #[test]
    fn long_messages_are_cut_in_the_state() {
        let mut long = r(SG, "sg-1", Status::Fail);
        long.message = "x".repeat(5000);
        let d = run(&BTreeMap::new(), &[long], "t1");
        assert_eq!(
            d.open["id-sg-open-ingress-sg-1"].message.chars().count(),
            MAX_STORED_MESSAGE
        );
    }
}
