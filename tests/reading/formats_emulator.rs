//! `eks-warden scan --format asff|ocsf|sarif` on the emulated demo account, each output checked by its
//! format's own tooling: ASFF imported into the emulator's Security Hub through boto3 (which validates every
//! finding against the API model first), OCSF through py-ocsf-models, SARIF against the SARIF 2.1.0 schema.

use crate::common;

use serde_json::Value;
use std::process::Command;

async fn seeded(region: &str) {
    common::seeded::demo(region).await;
}

fn scan(region: &str, format: &str) -> (Value, std::path::PathBuf) {
    let o = common::run_cli(region, &["scan", "--format", format]);
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document on stdout");
    let path =
        std::env::temp_dir().join(format!("eks-warden-{format}-{}.json", std::process::id()));
    std::fs::write(&path, &o.stdout).unwrap();
    (v, path)
}

/// Runs scripts/validate_formats.py with the emulator's Python; its one JSON line, or the failure.
fn validate(args: &[&str]) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let venv = std::env::var("EKS_WARDEN_VENV").unwrap_or_else(|_| format!("{root}/.venv"));
    let o = Command::new(format!("{venv}/bin/python"))
        .arg(format!("{root}/scripts/validate_formats.py"))
        .args(args)
        .output()
        .expect("run the validator");
    assert!(
        o.status.success(),
        "validator: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The finding ids of the JSON report, by status.
fn report_ids(region: &str, statuses: &[&str]) -> Vec<String> {
    let (v, _) = scan(region, "json");
    let mut ids: Vec<String> = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["results"].as_array().unwrap().clone())
        .filter(|r| statuses.contains(&r["status"].as_str().unwrap()))
        .map(|r| r["finding_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn asff_is_accepted_by_security_hub_with_the_report_s_ids() {
    let region = "eu-north-1";
    seeded(region).await;
    let (findings, path) = scan(region, "asff");
    let findings = findings.as_array().unwrap();
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|f| f["AwsAccountId"] == "123456789012" && f["Region"] == region));
    // The demo's insecure cluster carries team=payments.
    assert!(findings
        .iter()
        .any(|f| f["ProductFields"]["eks-warden/Owner"] == "payments"));
    let out = validate(&[
        "asff",
        path.to_str().unwrap(),
        &common::emulator().endpoint,
        region,
    ]);
    assert_eq!(out["imported"].as_u64().unwrap() as usize, findings.len());
    let mut ids: Vec<String> = findings
        .iter()
        .map(|f| f["Id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        report_ids(region, &["PASS", "FAIL", "EXEMPT"]),
        "same ids as the JSON report, UNKNOWN left out"
    );
    let stored: Vec<String> = serde_json::from_value(out["stored_ids"].clone()).unwrap();
    // Importing the same scan again updates, never duplicates.
    validate(&[
        "asff",
        path.to_str().unwrap(),
        &common::emulator().endpoint,
        region,
    ]);
    let again = validate(&[
        "asff",
        path.to_str().unwrap(),
        &common::emulator().endpoint,
        region,
    ]);
    assert_eq!(again["stored_ids"].as_array().unwrap().len(), stored.len());
}

#[tokio::test]
async fn ocsf_findings_are_valid_compliance_findings() {
    let region = "eu-south-1";
    seeded(region).await;
    let (findings, path) = scan(region, "ocsf");
    let n = findings.as_array().unwrap().len();
    let out = validate(&["ocsf", path.to_str().unwrap()]);
    assert_eq!(out["valid"].as_u64().unwrap() as usize, n);
    let mut uids: Vec<String> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["finding_info"]["uid"].as_str().unwrap().to_string())
        .collect();
    uids.sort();
    assert_eq!(
        uids,
        report_ids(region, &["PASS", "FAIL", "EXEMPT", "UNKNOWN"])
    );
}

/// serde-sarif ships the SARIF 2.1.0 schema its types are generated from; find it through cargo.
fn sarif_schema() -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "serde-sarif")
        .expect("serde-sarif in the dependency graph")["manifest_path"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = std::path::Path::new(&manifest).parent().unwrap();
    dir.join("src/schema.json").to_string_lossy().into_owned()
}

#[tokio::test]
async fn sarif_log_matches_the_schema_with_one_result_per_violation() {
    let region = "eu-west-3";
    seeded(region).await;
    let (log, path) = scan(region, "sarif");
    let out = validate(&["sarif", path.to_str().unwrap(), &sarif_schema()]);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(out["valid"].as_u64().unwrap() as usize, results.len());
    let mut ids: Vec<String> = results
        .iter()
        .map(|r| {
            r["partialFingerprints"]["eksWardenFindingId/v1"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, report_ids(region, &["FAIL", "EXEMPT"]));
    assert!(results.iter().all(
        |r| r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:")
    ));
}
