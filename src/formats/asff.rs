//! AWS Security Finding Format: a JSON list that `aws securityhub batch-import-findings --findings file://…`
//! accepts as it is. UNKNOWN verdicts are left out: importing them would overwrite a known state with an
//! unread one. EXEMPT verdicts are FAILED findings whose workflow is SUPPRESSED, with the reason.

use super::{aws_resource_type, clip, docs_url, resource_arn, standards};
use crate::finding::partition;
use crate::rules::{self, RuleResult, Status};
use crate::scan::{ClusterReport, ScanReport};
use serde_json::{json, Map, Value};

/// Security Hub's limits on the fields eks-warden fills.
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;
const RECOMMENDATION_MAX: usize = 512;
const PRODUCT_FIELD_MAX: usize = 2048;
/// ProductFields holds at most 50 pairs; eks-warden's own keys leave room for this much evidence.
const EVIDENCE_FIELDS_MAX: usize = 40;

/// Every PASS, FAIL and EXEMPT result of the report, as ASFF findings, stamped with the time of the
/// evaluation (the report's `generated_at`), not the time they are printed.
pub fn findings(report: &ScanReport) -> Vec<Value> {
    report
        .clusters
        .iter()
        .flat_map(|c| cluster_findings(c, &report.generated_at))
        .collect()
}

/// One cluster's findings (the Security Hub sink imports per cluster, with that account's credentials).
pub fn cluster_findings(c: &ClusterReport, generated_at: &str) -> Vec<Value> {
    c.results
        .iter()
        .filter(|r| r.status != Status::Unknown)
        .map(|r| finding(c, r, generated_at))
        .collect()
}

/// The account's default product, the one any account may import its own findings into.
pub fn product_arn(region: &str, account: &str) -> String {
    format!(
        "arn:{}:securityhub:{region}:{account}:product/{account}/default",
        partition(region)
    )
}

fn finding(c: &ClusterReport, r: &RuleResult, generated_at: &str) -> Value {
    let meta = rules::find(&r.rule_id).map(|x| &x.meta);
    let title = meta.map_or(r.rule_id.as_str(), |m| m.title);
    let resolution = meta.map_or("", |m| m.resolution);
    let mut recommendation = json!({ "Text": clip(resolution, RECOMMENDATION_MAX) });
    if let Some(url) = docs_url(&r.rule_id) {
        recommendation["Url"] = json!(url);
    }
    let mut types = vec!["Software and Configuration Checks/AWS Security Best Practices"];
    if standards(&r.rule_id).iter().any(|s| s.starts_with("CIS ")) {
        types.push(
            "Software and Configuration Checks/Industry and Regulatory Standards/CIS EKS Benchmark",
        );
    }
    let compliance = if r.status == Status::Pass {
        "PASSED"
    } else {
        "FAILED"
    };
    let mut f = json!({
        "SchemaVersion": "2018-10-08",
        "Id": r.finding_id,
        "ProductArn": product_arn(&c.region, &c.account),
        "ProductName": "eks-warden",
        "CompanyName": "eks-warden",
        "GeneratorId": r.rule_id,
        "AwsAccountId": c.account,
        "Region": c.region,
        "Types": types,
        "CreatedAt": generated_at,
        "UpdatedAt": generated_at,
        "Severity": { "Label": r.severity.as_str() },
        "Title": clip(title, TITLE_MAX),
        "Description": clip(&r.message, DESCRIPTION_MAX),
        "Remediation": { "Recommendation": recommendation },
        "ProductFields": product_fields(c, r),
        "Resources": resources(c, r),
        "Compliance": { "Status": compliance },
        "RecordState": "ACTIVE",
    });
    let related: Vec<&str> = standards(&r.rule_id)
        .into_iter()
        .filter(|s| s.starts_with("Security Hub "))
        .collect();
    if !related.is_empty() {
        f["Compliance"]["RelatedRequirements"] = json!(related);
    }
    if r.status == Status::Exempt {
        f["Workflow"] = json!({ "Status": "SUPPRESSED" });
    }
    f
}

fn resources(c: &ClusterReport, r: &RuleResult) -> Value {
    let p = partition(&c.region);
    let mut list = vec![json!({
        "Type": aws_resource_type(r.resource_type),
        "Id": resource_arn(c, r),
        "Partition": p,
        "Region": c.region,
    })];
    if r.resource_type != rules::ResourceType::Cluster {
        list.push(json!({
            "Type": "AwsEksCluster",
            "Id": c.cluster_arn,
            "Partition": p,
            "Region": c.region,
        }));
    }
    Value::Array(list)
}

fn product_fields(c: &ClusterReport, r: &RuleResult) -> Value {
    let mut m = Map::new();
    let mut put = |k: String, v: &str| {
        m.insert(k, json!(clip(v, PRODUCT_FIELD_MAX)));
    };
    put("eks-warden/RuleId".into(), &r.rule_id);
    put("eks-warden/FindingId".into(), &r.finding_id);
    put("eks-warden/Cluster".into(), &c.cluster);
    put("eks-warden/Status".into(), r.status.as_str());
    if let Some(owner) = &c.owner {
        put("eks-warden/Owner".into(), owner);
    }
    for (k, v) in r.evidence.iter().take(EVIDENCE_FIELDS_MAX) {
        put(format!("eks-warden/evidence/{}", clip(k, 80)), v);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn unknown_is_left_out_and_ids_are_the_report_s() {
        let report = fixture::report();
        let f = findings(&report);
        let ids: Vec<&str> = f.iter().map(|x| x["Id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "ewf-sg-open-ingress-sg-1",
                "ewf-endpoint-private-disabled-prod",
                "ewf-nodes-public-ip-subnet-1"
            ]
        );
        assert_eq!(f[0]["Compliance"]["Status"], "FAILED");
        assert_eq!(f[1]["Compliance"]["Status"], "PASSED");
        assert_eq!(f[2]["Workflow"]["Status"], "SUPPRESSED");
        assert_eq!(
            f[0]["ProductArn"],
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
        );
        assert_eq!(
            f[0]["Resources"][0]["Id"],
            "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1"
        );
        assert_eq!(f[0]["Resources"][1]["Type"], "AwsEksCluster");
        assert_eq!(f[0]["ProductFields"]["eks-warden/Owner"], "payments");
        assert!(f[0]["Remediation"]["Recommendation"]["Url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.aws.amazon.com/eks/"));
    }

    #[test]
    fn long_fields_respect_security_hub_limits() {
        let mut report = fixture::report();
        report.clusters[0].results[0].message = "x".repeat(5000);
        let f = findings(&report);
        let d = f[0]["Description"].as_str().unwrap();
        assert_eq!(d.chars().count(), DESCRIPTION_MAX);
        for x in &f {
            assert!(x["Title"].as_str().unwrap().chars().count() <= TITLE_MAX);
            let text = x["Remediation"]["Recommendation"]["Text"].as_str().unwrap();
            assert!(text.chars().count() <= RECOMMENDATION_MAX);
        }
    }
}
