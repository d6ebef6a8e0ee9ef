//! What the emulator serves: its EKS extension answers in botocore's shapes, it gives every rule a
//! verdict, and without the extension (plain moto 5.2.5) the verdicts it cannot back stay UNKNOWN.

use crate::common;

use common::seed::{self, ClusterExtras, ClusterSpec};
use serde_json::Value;
use std::collections::BTreeMap;

/// Guards the extension against drifting from AWS: every response of scripts/moto_eks_ext.py is checked
/// against botocore's EKS service model by scripts/check_moto_eks_ext.py (a member the model lacks, a
/// wrong type or enum value, a missing required member, an undeclared error all fail it).
#[test]
fn extension_answers_match_the_botocore_model() {
    let root = env!("CARGO_MANIFEST_DIR");
    let venv = std::env::var("EKS_WARDEN_VENV").unwrap_or_else(|_| format!("{root}/.venv"));
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .arg(format!("{root}/scripts/check_moto_eks_ext.py"))
        .output()
        .expect("run scripts/check_moto_eks_ext.py (make emulator)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("0 problems"), "{report}");
}

fn verdicts(out: &std::process::Output) -> BTreeMap<String, Vec<(String, String)>> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut by_rule: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for c in v["clusters"].as_array().into_iter().flatten() {
        for r in c["results"].as_array().into_iter().flatten() {
            by_rule
                .entry(r["rule_id"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push((
                    r["status"].as_str().unwrap_or_default().to_string(),
                    r["message"].as_str().unwrap_or_default().to_string(),
                ));
        }
    }
    by_rule
}

/// The promise: in the emulated demo account every rule of the catalog gives PASS or FAIL, none
/// UNKNOWN (it fails if the extension stops serving one of the reads a rule needs).
#[tokio::test]
async fn every_rule_gets_a_verdict_in_the_emulated_account() {
    let region = "ap-southeast-5";
    common::seeded::demo(region).await;
    let out = common::run_cli(region, &["scan", "--format", "json"]);
    let by_rule = verdicts(&out);
    let unknown: Vec<_> = by_rule
        .iter()
        .flat_map(|(rule, rs)| rs.iter().map(move |r| (rule, r)))
        .filter(|(_, (status, _))| status == "UNKNOWN")
        .collect();
    assert!(unknown.is_empty(), "{unknown:#?}");
    for rule in eks_warden::rules::ALL {
        let rs = by_rule.get(rule.meta.id).map(Vec::as_slice).unwrap_or(&[]);
        assert!(
            rs.iter().any(|(s, _)| s == "PASS" || s == "FAIL"),
            "{} has no verdict: {rs:?}",
            rule.meta.id
        );
    }
    // Both sides of each moved rule are seen: the insecure cluster fails, the compliant one passes.
    for rule in [
        "network-policy-not-enforced",
        "auth-configmap-only",
        "version-unsupported",
        "deletion-protection-off",
    ] {
        let statuses: Vec<&str> = by_rule[rule].iter().map(|(s, _)| s.as_str()).collect();
        assert!(
            statuses.contains(&"PASS") && statuses.contains(&"FAIL"),
            "{rule}: {statuses:?}"
        );
    }
}

/// Guards "an operation not offered stays UNKNOWN, never empty": against plain moto (no extension) the
/// add-on, access-entry and version reads answer 404 and the fields DescribeCluster omits are missing;
/// the five rules they back are UNKNOWN with the reason, the others still judge.
#[tokio::test]
async fn plain_moto_leaves_what_it_lacks_unknown() {
    let region = "ap-southeast-6";
    let emu = common::plain_emulator();
    let (c, _) = common::clients_for(emu, region).await;
    let net = seed::network(&c.ec2, region).await.unwrap();
    seed::cluster_with(
        &c.eks,
        ClusterSpec::private("plain", &net),
        ClusterExtras {
            logging: seed::HARDENED.logging,
            secrets_key: seed::HARDENED.secrets_key,
            authentication_mode: Some("API"),
            deletion_protection: true,
            ..ClusterExtras::default()
        },
    )
    .await
    .unwrap();
    let by_rule = verdicts(&common::run_cli_on(
        emu,
        region,
        &["scan", "--format", "json"],
    ));
    let only = |rule: &str| -> (String, String) {
        let rs = &by_rule[rule];
        assert_eq!(rs.len(), 1, "{rule}: {rs:?}");
        rs[0].clone()
    };
    for rule in [
        "network-policy-not-enforced",
        "access-entry-broad-admin",
        "version-unsupported",
    ] {
        let (status, message) = only(rule);
        assert_eq!(status, "UNKNOWN", "{rule}: {message}");
        assert!(message.contains("not offered"), "{rule}: {message}");
    }
    for rule in ["auth-configmap-only", "deletion-protection-off"] {
        let (status, message) = only(rule);
        assert_eq!(status, "UNKNOWN", "{rule}: {message}");
        assert!(message.contains("answered without"), "{rule}: {message}");
    }
    assert_eq!(only("endpoint-private-disabled").0, "PASS");
    assert_eq!(only("control-plane-logging-incomplete").0, "PASS");
}
