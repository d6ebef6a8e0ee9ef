//! The `eks-warden` binary as a user runs it: exit codes, one-line errors, the JSON report's shape.

use crate::common;

use common::{assert_exit, one_line as stderr_line, seed};
use serde_json::Value;
use std::process::Command;

/// A region with one cluster whose only failure is HIGH (SSH open to the world): audit logs and Secrets
/// encryption are on, and it has no nodes.
async fn seed_high_only(region: &str) {
    let (clients, _) = common::clients(region).await;
    seed::open_ssh_cluster(&clients.eks, &clients.ec2, region, "web", seed::HARDENED)
        .await
        .unwrap();
}

#[tokio::test]
async fn scan_json_report_and_fail_on_threshold() {
    let region = "ca-central-1";
    seed_high_only(region).await;
    let o = common::run_cli(region, &["scan", "--format", "json"]);
    assert_exit(&o, 1);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["clusters"][0];
    for key in ["account", "region", "cluster", "status", "results"] {
        assert!(c.get(key).is_some(), "missing {key}");
    }
    assert_eq!(c["cluster"], "web");
    let r = c["results"].as_array().unwrap();
    for key in [
        "rule_id",
        "severity",
        "status",
        "resource_type",
        "resource_id",
        "message",
    ] {
        assert!(r.iter().all(|x| x.get(key).is_some()), "missing {key}");
    }
    let fails: Vec<&Value> = r.iter().filter(|x| x["status"] == "FAIL").collect();
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0]["rule_id"], "sg-open-ingress");
    assert_eq!(fails[0]["severity"], "HIGH");
    assert_eq!(v["summary"]["fail"], 1);

    // Nothing at or above CRITICAL: exit 0. The same with the rule disabled by flag.
    let o = common::run_cli(
        region,
        &["scan", "--cluster", "web", "--fail-on", "CRITICAL"],
    );
    assert_eq!(o.status.code(), Some(0));
    let o = common::run_cli(region, &["scan", "--disable-rule", "sg-open-ingress"]);
    assert_exit(&o, 0);
    let table = String::from_utf8_lossy(&common::run_cli(region, &["scan"]).stdout).to_string();
    assert!(
        table.contains("HIGH")
            && table.contains("sg-open-ingress")
            && table.contains("1 violation"),
        "{table}"
    );
}

#[test]
fn unknown_cluster_is_exit_2_with_one_line() {
    let o = common::run_cli("sa-east-1", &["scan", "--cluster", "does-not-exist"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("does-not-exist"));
}

#[test]
fn bad_flag_and_bad_severity_are_exit_2_with_one_line() {
    for args in [
        &["scan", "--bogus"][..],
        &["scan", "--fail-on", "SEVERE"],
        &["frobnicate"],
    ] {
        let o = common::run_cli("sa-east-1", args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        stderr_line(&o);
    }
}

#[test]
fn bad_cidr_in_settings_names_the_variable() {
    let o = Command::new(env!("CARGO_BIN_EXE_eks-warden"))
        .args(["scan", "--region", "sa-east-1"])
        .env("EKS_WARDEN_ALLOWED_PUBLIC_CIDRS", "10.0.0.0/33")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("EKS_WARDEN_ALLOWED_PUBLIC_CIDRS"));
    let o = common::run_cli(
        "sa-east-1",
        &["scan", "--allowed-public-cidr", "300.1.1.1/8"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("--allowed-public-cidr"));
}

#[test]
fn no_region_and_no_credentials_are_exit_2() {
    let isolated = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eks-warden"));
    cmd.arg("scan");
    isolated(&mut cmd);
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_line(&o).contains("region"));

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eks-warden"));
    cmd.args(["scan", "--region", "eu-west-1"]);
    isolated(&mut cmd);
    cmd.env("AWS_ENDPOINT_URL", &common::emulator().endpoint);
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr_line(&o).to_lowercase().contains("credential"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn rules_json_lists_the_catalog() {
    let o = Command::new(env!("CARGO_BIN_EXE_eks-warden"))
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.len(), 16);
    assert_eq!(v.len(), eks_warden::rules::ALL.len());
    for r in &v {
        for key in [
            "id",
            "severity",
            "title",
            "description",
            "resolution",
            "references",
            "remediable",
            "fix_permission",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
    let imds = v.iter().find(|r| r["id"] == "nodes-imdsv1").unwrap();
    assert_eq!(imds["fix_permission"], "ec2:ModifyInstanceMetadataOptions");
}

#[test]
fn docs_rules_md_is_generated_from_the_registry() {
    let o = Command::new(env!("CARGO_BIN_EXE_eks-warden"))
        .args(["rules", "--format", "markdown"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let generated = String::from_utf8(o.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/rules.md is out of date with the rule registry; regenerate it with\n  \
         cargo run --bin eks-warden -- rules --format markdown > docs/rules.md"
    );
    for rule in eks_warden::rules::ALL {
        assert!(generated.contains(&format!("\n## {}\n", rule.meta.id)));
    }
}

#[test]
fn bad_catalog_settings_name_the_variable_or_flag() {
    for (var, value) in [
        ("EKS_WARDEN_REQUIRED_LOG_TYPES", "api,kubelet"),
        ("EKS_WARDEN_ALLOWED_ADMIN_PRINCIPALS", "root"),
        ("EKS_WARDEN_NETWORK_POLICY_ADDONS", "calico!"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_eks-warden"))
            .args(["scan", "--region", "sa-east-1"])
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{var}");
        assert!(stderr_line(&o).contains(var), "{var}");
    }
    for (flag, value) in [
        ("--required-log-type", "kubelet"),
        ("--allowed-admin-principal", "arn:aws:s3:::bucket"),
        ("--network-policy-addon", "bad!"),
    ] {
        let o = common::run_cli("sa-east-1", &["scan", flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag}");
        assert!(stderr_line(&o).contains(flag), "{flag}");
    }
}
