//! The Security Hub sink (`EKS_WARDEN_SECURITY_HUB=true`): after each evaluation, every PASS, FAIL and
//! EXEMPT verdict of the cluster is imported (BatchImportFindings, 100 a call) with its stable finding id,
//! the same findings `scan --format asff` writes, so a re-import updates and never duplicates. A finding
//! Security Hub still holds ACTIVE for the cluster but this evaluation no longer reports (the permission was
//! revoked, the resource is gone) is imported once more as PASSED and ARCHIVED — unless its rule could not
//! read that resource this time (UNKNOWN): a known state is never overwritten by an unread one. A member
//! account's findings are imported with that account's credentials: Security Hub accepts findings only for
//! the caller's own account.

use crate::formats::asff;
use crate::rules::Status;
use crate::scan::ClusterReport;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, Compliance, ComplianceStatus, MapFilter,
    MapFilterComparison, Partition, Recommendation, RecordState, Remediation, Resource, Severity,
    SeverityLabel, StringFilter, StringFilterComparison, Workflow, WorkflowStatus,
};
use serde_json::Value;
use std::collections::BTreeSet;

pub const ENV_SECURITY_HUB: &str = "EKS_WARDEN_SECURITY_HUB";
/// Findings BatchImportFindings takes in one call.
const BATCH: usize = 100;

/// What one cluster's sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Synced {
    pub imported: usize,
    pub archived: usize,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

/// One ASFF finding (as `formats::asff` writes it) in the SDK's model.
pub fn to_sdk(v: &Value) -> Result<AwsSecurityFinding, String> {
    let resources = v["Resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            Resource::builder()
                .r#type(s(r, "Type"))
                .id(s(r, "Id"))
                .partition(Partition::from(s(r, "Partition")))
                .region(s(r, "Region"))
                .build()
        })
        .collect();
    let rec = &v["Remediation"]["Recommendation"];
    let mut recommendation = Recommendation::builder().text(s(rec, "Text"));
    if let Some(url) = rec["Url"].as_str() {
        recommendation = recommendation.url(url);
    }
    let mut compliance =
        Compliance::builder().status(ComplianceStatus::from(s(&v["Compliance"], "Status")));
    for r in v["Compliance"]["RelatedRequirements"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        compliance = compliance.related_requirements(r.as_str().unwrap_or_default());
    }
    let mut b = AwsSecurityFinding::builder()
        .schema_version(s(v, "SchemaVersion"))
        .id(s(v, "Id"))
        .product_arn(s(v, "ProductArn"))
        .product_name(s(v, "ProductName"))
        .company_name(s(v, "CompanyName"))
        .generator_id(s(v, "GeneratorId"))
        .aws_account_id(s(v, "AwsAccountId"))
        .region(s(v, "Region"))
        .created_at(s(v, "CreatedAt"))
        .updated_at(s(v, "UpdatedAt"))
        .severity(
            Severity::builder()
                .label(SeverityLabel::from(s(&v["Severity"], "Label")))
                .build(),
        )
        .title(s(v, "Title"))
        .description(s(v, "Description"))
        .remediation(
            Remediation::builder()
                .recommendation(recommendation.build())
                .build(),
        )
        .set_resources(Some(resources))
        .compliance(compliance.build())
        .record_state(RecordState::from(s(v, "RecordState")));
    for t in v["Types"].as_array().map(Vec::as_slice).unwrap_or_default() {
        b = b.types(t.as_str().unwrap_or_default());
    }
    if let Some(fields) = v["ProductFields"].as_object() {
        for (k, f) in fields {
            b = b.product_fields(k, f.as_str().unwrap_or_default());
        }
    }
    if let Some(w) = v["Workflow"]["Status"].as_str() {
        b = b.workflow(Workflow::builder().status(WorkflowStatus::from(w)).build());
    }
    if s(v, "Id").is_empty() {
        return Err("an ASFF finding without an Id".into());
    }
    Ok(b.build())
}

/// The finding as it was, now PASSED and ARCHIVED.
fn archived(f: &AwsSecurityFinding, now: &str) -> Result<AwsSecurityFinding, String> {
    let mut b = AwsSecurityFinding::builder()
        .schema_version(f.schema_version().unwrap_or("2018-10-08"))
        .id(f.id().unwrap_or_default())
        .product_arn(f.product_arn().unwrap_or_default())
        .generator_id(f.generator_id().unwrap_or_default())
        .aws_account_id(f.aws_account_id().unwrap_or_default())
        .set_types(Some(f.types().to_vec()))
        .created_at(f.created_at().unwrap_or(now))
        .updated_at(now)
        .set_severity(f.severity().cloned())
        .title(f.title().unwrap_or_default())
        .description(f.description().unwrap_or_default())
        .set_resources(Some(f.resources().to_vec()))
        .set_product_fields(f.product_fields().cloned())
        .set_remediation(f.remediation().cloned())
        .compliance(
            Compliance::builder()
                .status(ComplianceStatus::Passed)
                .build(),
        )
        .record_state(RecordState::Archived);
    if let Some(r) = f.region() {
        b = b.region(r);
    }
    Ok(b.build())
}

/// The findings Security Hub holds ACTIVE for this cluster (the filter is also applied here, since not
/// every endpoint honours it).
async fn active(
    hub: &aws_sdk_securityhub::Client,
    report: &ClusterReport,
) -> Result<Vec<AwsSecurityFinding>, String> {
    let eq = |v: &str| {
        StringFilter::builder()
            .value(v)
            .comparison(StringFilterComparison::Equals)
            .build()
    };
    let filters = AwsSecurityFindingFilters::builder()
        .aws_account_id(eq(&report.account))
        .record_state(eq("ACTIVE"))
        .product_fields(
            MapFilter::builder()
                .key("eks-warden/Cluster")
                .value(&report.cluster)
                .comparison(MapFilterComparison::Equals)
                .build(),
        )
        .build();
    let mut out = vec![];
    let mut pages = hub
        .get_findings()
        .filters(filters)
        .max_results(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::collect::error_line("securityhub:GetFindings", &e))?;
        out.extend(page.findings().iter().cloned());
    }
    let ours = |f: &AwsSecurityFinding| {
        f.aws_account_id() == Some(report.account.as_str())
            && f.region().is_none_or(|r| r == report.region)
            && f.record_state() != Some(&RecordState::Archived)
            && f.product_fields()
                .and_then(|m| m.get("eks-warden/Cluster"))
                .is_some_and(|c| c == &report.cluster)
    };
    Ok(out.into_iter().filter(ours).collect())
}

/// Imports the cluster's verdicts and archives what it no longer reports.
pub async fn sync(
    hub: &aws_sdk_securityhub::Client,
    report: &ClusterReport,
    now: &str,
) -> Result<Synced, String> {
    let current: Vec<Value> = asff::cluster_findings(report, now);
    let ids: BTreeSet<&str> = current.iter().map(|f| s(f, "Id")).collect();
    // An UNKNOWN keeps whatever Security Hub knew about that rule on that resource.
    let unread: BTreeSet<(&str, &str)> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Unknown)
        .map(|r| (r.rule_id.as_str(), r.resource_id.as_str()))
        .collect();
    let mut batch: Vec<AwsSecurityFinding> =
        current.iter().map(to_sdk).collect::<Result<_, _>>()?;
    let mut synced = Synced {
        imported: batch.len(),
        archived: 0,
    };
    for f in active(hub, report).await? {
        let id = f.id().unwrap_or_default();
        let field = |k: &str| {
            f.product_fields()
                .and_then(|m| m.get(k))
                .map(String::as_str)
                .unwrap_or_default()
        };
        let resource = f
            .resources()
            .first()
            .and_then(|r| r.id())
            .and_then(|arn| arn.rsplit('/').next())
            .unwrap_or_default();
        let rule = field("eks-warden/RuleId");
        let unknown_here =
            unread.contains(&(rule, resource)) || unread.contains(&(rule, report.cluster.as_str()));
        if ids.contains(id) || unknown_here {
            continue;
        }
        batch.push(archived(&f, now)?);
        synced.archived += 1;
    }
    for chunk in batch.chunks(BATCH) {
        let out = hub
            .batch_import_findings()
            .set_findings(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| crate::collect::error_line("securityhub:BatchImportFindings", &e))?;
        if let Some(failed) = out.failed_findings().first() {
            return Err(format!(
                "securityhub:BatchImportFindings refused {} finding(s); first {}: {} {}",
                out.failed_count().unwrap_or(1),
                failed.id().unwrap_or("?"),
                failed.error_code().unwrap_or("?"),
                failed.error_message().unwrap_or("")
            ));
        }
    }
    Ok(synced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asff_field_reaches_the_sdk_model() {
        let report = crate::formats::fixture::report();
        let findings = asff::findings(&report);
        for v in &findings {
            let f = to_sdk(v).unwrap();
            assert_eq!(f.id(), v["Id"].as_str());
            assert_eq!(f.generator_id(), v["GeneratorId"].as_str());
            assert_eq!(
                f.compliance().and_then(|c| c.status()).map(|s| s.as_str()),
                v["Compliance"]["Status"].as_str()
            );
            assert_eq!(
                f.resources().len(),
                v["Resources"].as_array().unwrap().len()
            );
        }
        let exempt = to_sdk(&findings[2]).unwrap();
        assert_eq!(
            exempt.workflow().and_then(|w| w.status()),
            Some(&WorkflowStatus::Suppressed)
        );
        let gone = archived(&to_sdk(&findings[0]).unwrap(), "2026-12-03T00:00:00Z").unwrap();
        assert_eq!(gone.record_state(), Some(&RecordState::Archived));
        assert_eq!(
            gone.compliance().and_then(|c| c.status()),
            Some(&ComplianceStatus::Passed)
        );
        assert_eq!(gone.id(), findings[0]["Id"].as_str());
    }
}
