//! SARIF 2.1.0 (the object model of the `serde-sarif` crate): every catalog rule in `tool.driver.rules`,
//! one result per violation (FAIL, and EXEMPT as a suppressed result) located at the resource's ARN as a
//! logical location. `partialFingerprints` carries the finding id, so code-scanning services follow one
//! finding across runs.

use super::{docs_url, resource_arn};
use crate::rules::{self, RuleResult, Severity, Status};
use crate::scan::{ClusterReport, ScanReport};
use serde_json::json;
use serde_sarif::sarif::{
    LogicalLocation, Message, MultiformatMessageString, PropertyBag, ReportingConfiguration,
    ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool,
    ToolComponent,
};
use std::collections::BTreeMap;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The key under which the finding id is a partial fingerprint.
pub const FINGERPRINT: &str = "eksWardenFindingId/v1";

fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low => ResultLevel::Note,
    }
}

/// GitHub code scanning ranks security results by this score (0.1–10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

fn text(s: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(s).build()
}

fn bag(pairs: impl IntoIterator<Item = (&'static str, serde_json::Value)>) -> PropertyBag {
    let additional: BTreeMap<String, serde_json::Value> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    PropertyBag::builder()
        .tags(vec!["security".to_string(), "eks".to_string()])
        .additional_properties(additional)
        .build()
}

fn descriptor(meta: &rules::RuleMeta) -> ReportingDescriptor {
    let config = ReportingConfiguration::builder()
        .level(json!(level(meta.severity).to_string().to_lowercase()))
        .build();
    let help = format!(
        "{}\n\nReferences: {}",
        meta.resolution,
        meta.references.join(", ")
    );
    let d = ReportingDescriptor::builder()
        .id(meta.id)
        .name(meta.id)
        .short_description(text(meta.title))
        .full_description(text(meta.description))
        .help(text(&help))
        .default_configuration(config)
        .properties(bag([
            ("security-severity", json!(security_severity(meta.severity))),
            ("precision", json!("high")),
        ]));
    match docs_url(meta.id) {
        Some(url) => d.help_uri(url).build(),
        None => d.build(),
    }
}

fn result(c: &ClusterReport, r: &RuleResult, index: Option<usize>) -> SarifResult {
    let arn = resource_arn(c, r);
    let location = serde_sarif::sarif::Location::builder()
        .logical_locations(vec![LogicalLocation::builder()
            .fully_qualified_name(arn.clone())
            .name(r.resource_id.clone())
            .kind("resource")
            .build()])
        .build();
    let props = bag([
        ("finding_id", json!(r.finding_id)),
        ("cluster", json!(c.cluster)),
        ("cluster_arn", json!(c.cluster_arn)),
        ("account", json!(c.account)),
        ("region", json!(c.region)),
        ("owner", json!(c.owner)),
        ("severity", json!(r.severity.as_str())),
        ("evidence", json!(r.evidence)),
    ]);
    let out = SarifResult::builder()
        .rule_id(r.rule_id.clone())
        .level(level(r.severity))
        .message(Message::builder().text(r.message.clone()).build())
        .locations(vec![location])
        .partial_fingerprints(BTreeMap::from([(
            FINGERPRINT.to_string(),
            r.finding_id.clone(),
        )]))
        .properties(props);
    let suppressions = (r.status == Status::Exempt).then(|| {
        let why = r
            .evidence
            .get("exempt_reason")
            .cloned()
            .unwrap_or_else(|| format!("exempted by the {} tag", rules::EXEMPT_TAG));
        vec![Suppression::builder()
            .kind(json!("external"))
            .justification(why)
            .build()]
    });
    let mut out = out.build();
    out.rule_index = index.map(|i| i as i64);
    out.suppressions = suppressions;
    out
}

/// The whole report as one SARIF log with one run.
pub fn log(report: &ScanReport) -> Sarif {
    let descriptors: Vec<ReportingDescriptor> =
        rules::ALL.iter().map(|r| descriptor(&r.meta)).collect();
    let results: Vec<SarifResult> = report
        .clusters
        .iter()
        .flat_map(|c| {
            c.results
                .iter()
                .filter(|r| matches!(r.status, Status::Fail | Status::Exempt))
                .map(move |r| {
                    let index = rules::ALL.iter().position(|x| x.meta.id == r.rule_id);
                    result(c, r, index)
                })
        })
        .collect();
    let driver = ToolComponent::builder()
        .name("eks-warden")
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri(
            "https://docs.aws.amazon.com/eks/latest/userguide/infrastructure-security.html",
        )
        .rules(descriptors)
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .build();
    Sarif::builder()
        .schema(SCHEMA)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;

    #[test]
    fn every_rule_and_one_result_per_violation() {
        let v = serde_json::to_value(log(&fixture::report())).unwrap();
        let run = &v["runs"][0];
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            rules::ALL.len()
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "FAIL and EXEMPT, not PASS or UNKNOWN");
        assert_eq!(results[0]["ruleId"], "sg-open-ingress");
        assert_eq!(results[0]["level"], "error");
        assert_eq!(
            results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1"
        );
        assert_eq!(
            results[0]["partialFingerprints"][FINGERPRINT],
            "ewf-sg-open-ingress-sg-1"
        );
        assert_eq!(results[0]["properties"]["owner"], "payments");
        assert_eq!(results[1]["suppressions"][0]["kind"], "external");
        let idx = results[0]["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "sg-open-ingress");
        assert_eq!(v["version"], "2.1.0");
    }
}
