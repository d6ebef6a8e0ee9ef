//! The rules that read add-ons, access entries, cluster versions, the authentication mode and deletion
//! protection, and their fixes, through the real SDK over HTTP against the emulator's EKS extension
//! (scripts/moto_eks_ext.py). AccessDenied and odd answers stay in catalog_mocked.rs.

use crate::common;

use aws_sdk_eks::types::{AuthenticationMode, VersionStatus};
use common::context::fix_policy;
use common::report::{only, results as verdict};
use common::seed::{self, ClusterExtras, ClusterSpec};
use eks_warden::collect::Clients;
use eks_warden::remediate::{remediate_once, Mode, Outcome, Policy};
use eks_warden::rules::Status;
use eks_warden::scan::evaluate_cluster;
use eks_warden::settings::Settings;
use serde_json::{json, Value};

const CREATOR: &str = "arn:aws:iam::123456789012:role/terraform";
const BREAK_GLASS: &str = "arn:aws:iam::123456789012:role/ops/break-glass";
const TEAM: &str = "arn:aws:iam::123456789012:role/team-a";

/// A private cluster in `region`'s seeded network that passes every rule not under test. Returns its ARN.
async fn cluster(c: &Clients, region: &str, name: &str, extras: ClusterExtras<'_>) -> String {
    let net = seed::network(&c.ec2, region).await.unwrap();
    seed::cluster_with(&c.eks, ClusterSpec::private(name, &net), extras)
        .await
        .unwrap()
}

fn hardened<'a>() -> ClusterExtras<'a> {
    ClusterExtras {
        network_policy: false,
        ..seed::HARDENED
    }
}

fn policy(rules: &[&str]) -> Policy {
    fix_policy(Mode::Remediate, rules)
}

#[tokio::test]
async fn network_policy_verdicts_from_the_add_ons() {
    let region = "ap-south-1";
    let (c, counter) = common::clients(region).await;
    type Case = (
        &'static str,
        &'static [(&'static str, Option<&'static str>)],
        Status,
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            "on",
            &[("vpc-cni", Some(r#"{"enableNetworkPolicy":"true"}"#))],
            Status::Pass,
            "VPC CNI",
        ),
        (
            "off",
            &[("vpc-cni", Some(r#"{"enableNetworkPolicy":"false"}"#))],
            Status::Fail,
            "",
        ),
        (
            "bare",
            &[("vpc-cni", None), ("coredns", None)],
            Status::Fail,
            "",
        ),
        ("none", &[], Status::Fail, "0 add-on"),
        (
            "calico",
            &[("vpc-cni", None), ("tigera-operator", None)],
            Status::Pass,
            "tigera-operator add-on",
        ),
        // An engine installed with Helm, declared by tag on the cluster.
        (
            "declared",
            &[("vpc-cni", Some(r#"{"enableNetworkPolicy":"false"}"#))],
            Status::Pass,
            "declared",
        ),
    ];
    for (name, addons, want, says) in cases {
        let arn = cluster(&c, region, name, hardened()).await;
        if name == "declared" {
            c.eks
                .tag_resource()
                .resource_arn(arn)
                .tags("eks-warden:network-policy", "cilium")
                .send()
                .await
                .unwrap();
        }
        for (addon, config) in addons {
            seed::addon(&c.eks, name, addon, *config).await.unwrap();
        }
        let before = counter.operations().len();
        let r = evaluate_cluster(&c, name, &Settings::default())
            .await
            .unwrap();
        let (st, msg) = only(&r, "network-policy-not-enforced");
        assert_eq!(st, want, "{name}: {msg}");
        assert!(msg.contains(says), "{name}: {msg}");
        // Only vpc-cni's configuration is read, and not when another engine is installed.
        let describes = counter.operations()[before..]
            .iter()
            .filter(|o| *o == "DescribeAddon")
            .count();
        let cni_read =
            addons.iter().any(|(a, _)| *a == "vpc-cni") && !["calico", "declared"].contains(&name);
        assert_eq!(describes, usize::from(cni_read), "{name}");
    }
}

#[tokio::test]
async fn access_entries_and_the_authentication_mode() {
    let region = "ap-northeast-2";
    let (c, counter) = common::clients(region).await;
    cluster(&c, region, "entries", hardened()).await;
    let admins: [(&str, &[&str]); 3] = [(CREATOR, &[]), (BREAK_GLASS, &[]), (TEAM, &["team-a"])];
    for (principal, namespaces) in admins {
        let policy = "AmazonEKSClusterAdminPolicy";
        seed::access_entry(&c.eks, "entries", principal, policy, namespaces)
            .await
            .unwrap();
    }
    // A viewer holds no admin policy: the API's filter leaves it out, no call is spent on it.
    seed::access_entry(
        &c.eks,
        "entries",
        "arn:aws:iam::123456789012:role/viewer",
        "AmazonEKSViewPolicy",
        &[],
    )
    .await
    .unwrap();
    let settings = Settings {
        allowed_admin_principals: vec![BREAK_GLASS.to_string()],
        ..Settings::default()
    };
    let before = counter.operations().len();
    let r = evaluate_cluster(&c, "entries", &settings).await.unwrap();
    let mut admins: Vec<(String, Status)> = verdict(&r, "access-entry-broad-admin")
        .iter()
        .map(|x| (x.resource_id.clone(), x.status))
        .collect();
    admins.sort();
    assert_eq!(
        admins,
        vec![
            (BREAK_GLASS.to_string(), Status::Pass),
            (TEAM.to_string(), Status::Pass),
            (CREATOR.to_string(), Status::Fail),
        ]
    );
    let policies = counter.operations()[before..]
        .iter()
        .filter(|o| *o == "ListAssociatedAccessPolicies")
        .count();
    assert_eq!(policies, 3, "one read per admin principal");
    assert_eq!(only(&r, "auth-configmap-only").0, Status::Pass);

    // CONFIG_MAP: the rule fails, and access entries are not even asked for.
    cluster(
        &c,
        region,
        "configmap",
        ClusterExtras {
            authentication_mode: None,
            ..hardened()
        },
    )
    .await;
    let before = counter.operations().len();
    let r = evaluate_cluster(&c, "configmap", &settings).await.unwrap();
    let (st, msg) = only(&r, "auth-configmap-only");
    assert_eq!(st, Status::Fail, "{msg}");
    assert_eq!(only(&r, "access-entry-broad-admin").0, Status::Pass);
    assert!(!counter.operations()[before..]
        .iter()
        .any(|o| o == "ListAccessEntries"));
}

#[tokio::test]
async fn version_support_from_the_emulated_calendar() {
    let region = "ap-southeast-2";
    let (c, _) = common::clients(region).await;
    let versions = c
        .eks
        .describe_cluster_versions()
        .include_all(true)
        .send()
        .await
        .unwrap();
    let first = |status: VersionStatus| {
        versions
            .cluster_versions()
            .iter()
            .find(|v| v.version_status() == Some(&status))
            .and_then(|v| v.cluster_version())
            .map(str::to_string)
    };
    // The calendar is dated: some version is always past extended support; one in standard support
    // exists while the table is current (scripts/check_moto_eks_ext.py says when it is not).
    let mut cases = vec![
        (
            first(VersionStatus::StandardSupport).unwrap(),
            Status::Pass,
            "standard support until",
        ),
        (
            "1.19".to_string(),
            Status::Fail,
            "is unsupported: extended support ended",
        ),
    ];
    if let Some(v) = first(VersionStatus::ExtendedSupport) {
        cases.push((v, Status::Fail, "extended support"));
    }
    for (i, (version, want, says)) in cases.into_iter().enumerate() {
        let name = format!("v{i}");
        cluster(
            &c,
            region,
            &name,
            ClusterExtras {
                version: Some(&version),
                ..seed::HARDENED
            },
        )
        .await;
        let r = evaluate_cluster(&c, &name, &Settings::default())
            .await
            .unwrap();
        let (st, msg) = only(&r, "version-unsupported");
        assert_eq!(st, want, "{version}: {msg}");
        assert!(msg.contains(says), "{version}: {msg}");
    }
}

#[tokio::test]
async fn deletion_protection_verdicts() {
    let region = "ap-southeast-1";
    let (c, _) = common::clients(region).await;
    cluster(&c, region, "kept", seed::HARDENED).await;
    cluster(
        &c,
        region,
        "loose",
        ClusterExtras {
            deletion_protection: false,
            ..seed::HARDENED
        },
    )
    .await;
    for (name, want) in [("kept", Status::Pass), ("loose", Status::Fail)] {
        let r = evaluate_cluster(&c, name, &Settings::default())
            .await
            .unwrap();
        assert_eq!(only(&r, "deletion-protection-off").0, want, "{name}");
    }
}

/// The three control-plane fixes applied over HTTP, one cluster update per pass (the rest deferred), each
/// verified on a fresh read; the add-on's other settings survive the network-policy merge; a last pass
/// finds nothing to do.
#[tokio::test]
async fn access_entries_deletion_protection_and_network_policy_fixes() {
    let region = "ap-northeast-3";
    let (c, counter) = common::clients(region).await;
    let loose = ClusterExtras {
        authentication_mode: None,
        deletion_protection: false,
        ..hardened()
    };
    cluster(&c, region, "fixme", loose).await;
    seed::addon(
        &c.eks,
        "fixme",
        "vpc-cni",
        Some(r#"{"env":{"WARM_IP_TARGET":"5"}}"#),
    )
    .await
    .unwrap();
    let rules = [
        "auth-configmap-only",
        "deletion-protection-off",
        "network-policy-not-enforced",
    ];
    let settings = Settings::default();
    let mut remediated = Vec::new();
    for pass in 0..4 {
        let report = evaluate_cluster(&c, "fixme", &settings).await.unwrap();
        let done = remediate_once(&c, "fixme", &report.results, &settings, &policy(&rules))
            .await
            .unwrap();
        let applied: Vec<_> = done
            .remediations
            .iter()
            .filter(|m| m.outcome != Outcome::Skipped)
            .collect();
        if pass < 3 {
            assert_eq!(applied.len(), 1, "pass {pass}: {:?}", done.remediations);
            assert_eq!(applied[0].outcome, Outcome::Remediated, "{:?}", applied[0]);
            remediated.push(applied[0].rule_id.clone());
            assert_eq!(
                done.recheck,
                pass < 2,
                "pass {pass}: the rest is deferred to a re-check"
            );
        } else {
            assert!(applied.is_empty(), "{:?}", done.remediations);
        }
    }
    remediated.sort();
    assert_eq!(
        remediated,
        rules.iter().map(|r| r.to_string()).collect::<Vec<_>>()
    );
    let writes = counter.writes();
    for op in ["UpdateClusterConfig", "UpdateAddon"] {
        assert!(writes.iter().any(|w| w == op), "{writes:?}");
    }

    let cluster = c.eks.describe_cluster().name("fixme").send().await.unwrap();
    let cluster = cluster.cluster().unwrap();
    assert_eq!(
        cluster
            .access_config()
            .and_then(|a| a.authentication_mode()),
        Some(&AuthenticationMode::ApiAndConfigMap)
    );
    assert_eq!(cluster.deletion_protection(), Some(true));
    let addon = c
        .eks
        .describe_addon()
        .cluster_name("fixme")
        .addon_name("vpc-cni")
        .send()
        .await
        .unwrap();
    let config: Value =
        serde_json::from_str(addon.addon().unwrap().configuration_values().unwrap()).unwrap();
    assert_eq!(
        config,
        json!({"env": {"WARM_IP_TARGET": "5"}, "enableNetworkPolicy": "true"})
    );
    let after = evaluate_cluster(&c, "fixme", &settings).await.unwrap();
    for rule in rules {
        assert_eq!(only(&after, rule).0, Status::Pass, "{rule}");
    }
}

/// The Secrets encryption fix over HTTP: without a configured key it is skipped with the reason; with one
/// it associates the key (AssociateEncryptionConfig), which the fresh read confirms, and the next pass
/// has nothing left to do (EKS would refuse a second association).
#[tokio::test]
async fn secrets_encryption_fix_associates_the_configured_key() {
    let region = "me-central-1";
    let (c, counter) = common::clients(region).await;
    let plain = ClusterExtras {
        secrets_key: None,
        ..seed::HARDENED
    };
    cluster(&c, region, "secrets", plain).await;
    let settings = Settings::default();
    let key = "arn:aws:kms:me-central-1:123456789012:key/5e1c0000-1111-2222-3333-444455556666";
    let with_key = Policy {
        secrets_key_arn: Some(key.to_string()),
        ..policy(&["secrets-not-encrypted"])
    };
    for (p, want) in [
        (policy(&["secrets-not-encrypted"]), Outcome::Skipped),
        (with_key.clone(), Outcome::Remediated),
    ] {
        let report = evaluate_cluster(&c, "secrets", &settings).await.unwrap();
        let done = remediate_once(&c, "secrets", &report.results, &settings, &p)
            .await
            .unwrap();
        assert_eq!(done.remediations.len(), 1, "{:?}", done.remediations);
        assert_eq!(
            done.remediations[0].outcome, want,
            "{:?}",
            done.remediations
        );
    }
    let described = c
        .eks
        .describe_cluster()
        .name("secrets")
        .send()
        .await
        .unwrap();
    let arn = described
        .cluster()
        .and_then(|c| c.encryption_config().first())
        .and_then(|e| e.provider())
        .and_then(|p| p.key_arn());
    assert_eq!(arn, Some(key));
    let writes = counter.writes().len();
    let report = evaluate_cluster(&c, "secrets", &settings).await.unwrap();
    let done = remediate_once(&c, "secrets", &report.results, &settings, &with_key)
        .await
        .unwrap();
    assert!(done.remediations.is_empty(), "{:?}", done.remediations);
    assert_eq!(counter.writes().len(), writes, "nothing written");
}
