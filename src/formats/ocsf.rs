//! OCSF 1.5 Compliance Findings (class 2003), one per result, as one JSON array.
//!
//! Compliance Finding rather than Detection Finding (2004, which Prowler emits): every eks-warden result
//! is the evaluation of a control against a resource with a pass/fail status, which is what class 2003's
//! `compliance` object carries; a detection finding describes suspicious activity, and a PASS is none.

use super::{aws_resource_type, docs_url, resource_arn, standards};
use crate::finding::partition;
use crate::rules::{self, RuleResult, Severity, Status};
use crate::scan::{ClusterReport, ScanReport};
use serde_json::{json, Value};

pub const OCSF_VERSION: &str = "1.5.0";
const CLASS_UID: u32 = 2003;
/// Activity 1, Create: the finding as evaluated now.
const TYPE_UID: u32 = CLASS_UID * 100 + 1;

/// Every result of the report, UNKNOWN included (compliance status Unknown: OCSF records events, it does
/// not overwrite state). Each finding's time is the evaluation's (the report's `generated_at`).
pub fn findings(report: &ScanReport) -> Vec<Value> {
    let generated_at = report.generated_at.as_str();
    let epoch_ms = epoch_ms(generated_at);
    report
        .clusters
        .iter()
        .flat_map(|c| {
            c.results
                .iter()
                .map(move |r| finding(c, r, generated_at, epoch_ms))
        })
        .collect()
}

/// `time` is epoch milliseconds of the same moment as `time_dt`; 0 for a report that carries no time.
fn epoch_ms(rfc3339: &str) -> i64 {
    aws_smithy_types::DateTime::from_str(rfc3339, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|t| t.to_millis().ok())
        .unwrap_or(0)
}

fn severity_id(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// (compliance status_id, status) and the finding's (status_id, status).
fn statuses(s: Status) -> ((u8, &'static str), (u8, &'static str)) {
    match s {
        Status::Pass => ((1, "Pass"), (1, "New")),
        Status::Fail => ((3, "Fail"), (1, "New")),
        Status::Unknown => ((0, "Unknown"), (1, "New")),
        Status::Exempt => ((3, "Fail"), (3, "Suppressed")),
    }
}

fn finding(c: &ClusterReport, r: &RuleResult, generated_at: &str, epoch_ms: i64) -> Value {
    let meta = rules::find(&r.rule_id).map(|x| &x.meta);
    let (sev_id, sev) = severity_id(r.severity);
    let ((cstat_id, cstat), (stat_id, stat)) = statuses(r.status);
    let mut resource = json!({
        "uid": resource_arn(c, r),
        "name": r.resource_id,
        "type": aws_resource_type(r.resource_type),
        "region": c.region,
        "cloud_partition": partition(&c.region),
        "labels": [format!("cluster:{}", c.cluster)],
    });
    if let Some(owner) = &c.owner {
        resource["group"] = json!({ "name": owner });
    }
    let references: Vec<&str> = meta
        .map(|m| {
            m.references
                .iter()
                .copied()
                .filter(|x| x.starts_with("https://"))
                .collect()
        })
        .unwrap_or_default();
    let mut info = json!({
        "uid": r.finding_id,
        "title": meta.map_or(r.rule_id.as_str(), |m| m.title),
        "desc": r.message,
        "types": [r.rule_id],
        "created_time": epoch_ms,
    });
    if let Some(url) = docs_url(&r.rule_id) {
        info["src_url"] = json!(url);
    }
    json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": TYPE_UID,
        "type_name": "Compliance Finding: Create",
        "severity_id": sev_id,
        "severity": sev,
        "status_id": stat_id,
        "status": stat,
        "message": r.message,
        "time": epoch_ms,
        "time_dt": generated_at,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "eks-warden",
                "vendor_name": "eks-warden",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "event_code": r.rule_id,
            "profiles": ["cloud"],
        },
        "finding_info": info,
        "compliance": {
            "control": r.rule_id,
            "standards": standards(&r.rule_id),
            "status_id": cstat_id,
            "status": cstat,
            "desc": meta.map_or("", |m| m.description),
        },
        "cloud": {
            "provider": "AWS",
            "region": c.region,
            "account": { "uid": c.account, "name": c.account, "type_id": 10, "type": "AWS Account" },
        },
        "resources": [resource],
        "remediation": {
            "desc": meta.map_or("", |m| m.resolution),
            "references": references,
        },
        "unmapped": {
            "cluster": c.cluster,
            "cluster_arn": c.cluster_arn,
            "owner": c.owner,
            "evidence": r.evidence,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn one_compliance_finding_per_result() {
        let f = findings(&fixture::report());
        assert_eq!(f.len(), 4);
        // The evaluation's time, in both of OCSF's forms.
        assert!(f
            .iter()
            .all(|x| x["time_dt"] == "2026-12-02T06:00:00Z" && x["time"] == 1_796_191_200_000_i64));
        assert!(f
            .iter()
            .all(|x| x["class_uid"] == 2003 && x["type_uid"] == 200301));
        let status: Vec<(&str, &str)> = f
            .iter()
            .map(|x| {
                (
                    x["compliance"]["status"].as_str().unwrap(),
                    x["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            status,
            [
                ("Fail", "New"),
                ("Pass", "New"),
                ("Unknown", "New"),
                ("Fail", "Suppressed")
            ]
        );
        assert_eq!(f[0]["finding_info"]["uid"], "ewf-sg-open-ingress-sg-1");
        assert_eq!(f[0]["cloud"]["account"]["uid"], "111122223333");
        assert_eq!(f[0]["resources"][0]["group"]["name"], "payments");
    }
}
