//! `scan --baseline PREVIOUS.json`: compare a scan with an earlier `--format json` report by finding id,
//! so a CI job can fail on what a change introduced rather than on everything that was already there.

use crate::rules::{Severity, Status};
use crate::scan::ScanReport;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a FAIL compares with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Not a FAIL in the baseline (absent, passing, exempt or unknown then).
    New,
    /// A FAIL in the baseline too.
    Unchanged,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::New => "new",
            Mark::Unchanged => "unchanged",
        }
    }
}

/// A finding as the baseline report recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub finding_id: String,
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub rule_id: String,
    pub resource_id: String,
    pub severity: Severity,
    #[serde(default)]
    pub message: String,
    /// What it is now: `PASS`, `EXEMPT`, or `gone` (the resource or its result no longer exists).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub now: String,
}

/// The parts of a `--format json` report the comparison reads.
#[derive(Deserialize)]
struct Report {
    clusters: Vec<Cluster>,
}

#[derive(Deserialize)]
struct Cluster {
    account: String,
    region: String,
    cluster: String,
    results: Vec<Result_>,
}

#[derive(Deserialize)]
struct Result_ {
    rule_id: String,
    severity: Severity,
    status: Status,
    resource_id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    finding_id: String,
}

/// A previous report: its FAIL findings and the clusters it covered.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub source: String,
    fails: BTreeMap<String, Recorded>,
}

impl Baseline {
    /// Reads a report written by `eks-warden scan --format json`. Every error is one line naming the file.
    pub fn load(path: &str) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--baseline {path}: {e}"))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Baseline, String> {
        let report: Report = serde_json::from_str(text).map_err(|e| {
            format!("--baseline {path}: not a report of `eks-warden scan --format json` ({e})")
        })?;
        let mut b = Baseline {
            source: path.to_string(),
            ..Baseline::default()
        };
        for c in report.clusters {
            for r in c.results {
                if r.finding_id.is_empty() {
                    return Err(format!(
                        "--baseline {path}: a result of {} on {} has no finding_id (written by an older \
                         eks-warden: run the scan again with --format json)",
                        r.rule_id, c.cluster
                    ));
                }
                if r.status == Status::Fail {
                    b.fails.insert(
                        r.finding_id.clone(),
                        Recorded {
                            finding_id: r.finding_id,
                            account: c.account.clone(),
                            region: c.region.clone(),
                            cluster: c.cluster.clone(),
                            rule_id: r.rule_id,
                            resource_id: r.resource_id,
                            severity: r.severity,
                            message: r.message,
                            now: String::new(),
                        },
                    );
                }
            }
        }
        Ok(b)
    }

    /// Marks each FAIL of `report` and lists the baseline's FAILs that are resolved: PASS or EXEMPT now,
    /// or gone from a cluster that was evaluated again. A finding that is UNKNOWN now, or whose cluster
    /// this scan did not cover, is neither resolved nor new: nothing says it changed.
    pub fn compare(&self, report: &ScanReport) -> Comparison {
        let mut cmp = Comparison {
            source: self.source.clone(),
            ..Comparison::default()
        };
        let mut seen: BTreeMap<&str, Status> = BTreeMap::new();
        for c in &report.clusters {
            for r in &c.results {
                seen.insert(&r.finding_id, r.status);
                if r.status != Status::Fail {
                    continue;
                }
                let list = if self.fails.contains_key(&r.finding_id) {
                    &mut cmp.unchanged
                } else {
                    &mut cmp.new
                };
                list.push(r.finding_id.clone());
            }
        }
        let evaluated: BTreeSet<(&str, &str, &str)> = report
            .clusters
            .iter()
            .map(|c| (c.account.as_str(), c.region.as_str(), c.cluster.as_str()))
            .collect();
        for f in self.fails.values() {
            let now = match seen.get(f.finding_id.as_str()) {
                Some(Status::Pass) => "PASS",
                Some(Status::Exempt) => "EXEMPT",
                None if evaluated.contains(&(
                    f.account.as_str(),
                    f.region.as_str(),
                    f.cluster.as_str(),
                )) =>
                {
                    "gone"
                }
                _ => continue,
            };
            cmp.resolved.push(Recorded {
                now: now.to_string(),
                ..f.clone()
            });
        }
        cmp
    }
}

/// The result of comparing a scan with its baseline; part of the JSON report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    pub source: String,
    /// Finding ids of FAILs that the baseline did not have.
    pub new: Vec<String>,
    /// Finding ids of FAILs the baseline had too.
    pub unchanged: Vec<String>,
    pub resolved: Vec<Recorded>,
}

impl Comparison {
    pub fn mark(&self, finding_id: &str) -> Option<Mark> {
        if self.new.iter().any(|id| id == finding_id) {
            Some(Mark::New)
        } else if self.unchanged.iter().any(|id| id == finding_id) {
            Some(Mark::Unchanged)
        } else {
            None
        }
    }

    /// True when some new FAIL is at or above `threshold`.
    pub fn new_fails_at(&self, report: &ScanReport, threshold: Severity) -> bool {
        report
            .clusters
            .iter()
            .flat_map(|c| c.failures())
            .any(|r| r.severity >= threshold && self.mark(&r.finding_id) == Some(Mark::New))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_without_finding_ids_or_of_another_shape_is_refused() {
        let err = Baseline::parse("old.json", r#"{"clusters": [{"account": "1", "region": "r", "cluster": "c",
            "results": [{"rule_id": "x", "severity": "LOW", "status": "FAIL", "resource_id": "c"}]}]}"#)
        .unwrap_err();
        assert!(err.contains("has no finding_id"), "{err}");
        let err = Baseline::parse("x.json", r#"[1, 2]"#).unwrap_err();
        assert!(err.starts_with("--baseline x.json: not a report"), "{err}");
        assert!(!err.contains('\n'));
    }
}
