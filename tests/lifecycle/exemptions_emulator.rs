//! Reviewed exceptions and CI use against the emulator: the central exemption list (SSM parameter for the
//! Lambda path, a file for the CLI), the function's own echo, and `scan --baseline` through the binary.

use crate::common;

use common::context::{context, context_over};
use common::seed::{self, Ingress};
use common::{assert_exit, one_line};
use eks_warden::exemptions::load::{Source, SsmList};
use eks_warden::handler::handle;
use eks_warden::rules::Status;
use serde_json::{json, Value};

fn temp(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(format!("eks-warden-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A cluster `web` whose only failure is HIGH: SSH open to the world on group `ssh`. Returns the group.
async fn seed_web(region: &str) -> String {
    let (clients, _) = common::clients(region).await;
    let (_, sg) = seed::open_ssh_cluster(&clients.eks, &clients.ec2, region, "web", seed::HARDENED)
        .await
        .unwrap();
    sg
}

fn list(entries: Value) -> String {
    json!({ "exemptions": entries }).to_string()
}

// ------------------------------------------------------------------------------ the exemption list

/// Guards: an active list entry exempts (naming entry, reason and owner), an expired one does not and
/// says so; the Lambda path reads the list from SSM over HTTP (GetParameter on the emulator).
#[tokio::test]
async fn the_lambda_path_reads_the_list_from_ssm_and_expired_entries_fail_again() {
    let region = "ap-east-1";
    let sg = seed_web(region).await;
    let conf = common::sdk_config(region).await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let entry = |expires: &str| {
        list(
            json!([{"id": "bastion", "cluster": "web", "rule": "sg-open-ingress", "resource": format!("{}*", &sg[..5]),
            "reason": "bastion until the VPN lands", "owner": "net-team@example.com", "expires": expires}]),
        )
    };
    ssm.put_parameter()
        .name("/eks-warden/exemptions")
        .value(entry("2099-12-31"))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let mut ctx = context(region).await;
    ctx.exemptions = Some(Source::Ssm(SsmList::new(
        ssm.clone(),
        "/eks-warden/exemptions".into(),
    )));
    let run = handle(&ctx, &json!({"clusters": ["web"]})).await.unwrap();
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    let r = run.clusters[0]
        .results
        .iter()
        .find(|r| r.rule_id == "sg-open-ingress" && r.resource_id == sg)
        .unwrap();
    assert_eq!(r.status, Status::Exempt, "{r:?}");
    assert_eq!(r.evidence["exempted_by"], "exemption list entry bastion");
    assert_eq!(r.evidence["exemption_owner"], "net-team@example.com");
    assert!(
        r.message.contains("bastion until the VPN lands") && r.message.contains("net-team"),
        "{}",
        r.message
    );

    // Expired: FAIL again, reported as expired. A fresh context, as a new container would be.
    ssm.put_parameter()
        .name("/eks-warden/exemptions")
        .value(entry("2020-01-31"))
        .overwrite(true)
        .send()
        .await
        .unwrap();
    ctx.exemptions = Some(Source::Ssm(SsmList::new(
        ssm.clone(),
        "/eks-warden/exemptions".into(),
    )));
    let run = handle(&ctx, &json!({"clusters": ["web"]})).await.unwrap();
    let r = run.clusters[0]
        .results
        .iter()
        .find(|r| r.rule_id == "sg-open-ingress" && r.resource_id == sg)
        .unwrap();
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert!(
        r.evidence["exemption_expired"].contains("bastion expired on 2020-01-31"),
        "{r:?}"
    );
    assert!(r.message.contains("expired on 2020-01-31"), "{}", r.message);
}

/// Guards: a list that cannot be read or does not validate judges nothing (no false alarms for exempt
/// findings) and retries the records, with an error naming the entry.
#[tokio::test]
async fn an_unreadable_or_invalid_list_retries_the_batch_with_a_clear_error() {
    let region = "ap-southeast-2";
    seed_web(region).await;
    let conf = common::sdk_config(region).await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let mut ctx = context(region).await;
    let batch = json!({"Records": [{"messageId": "m1", "body": "{\"clusters\": [\"web\"]}"}]});

    ctx.exemptions = Some(Source::Ssm(SsmList::new(ssm.clone(), "/missing".into())));
    let run = handle(&ctx, &batch).await.unwrap();
    assert!(run.evaluated.is_empty());
    assert_eq!(run.batch_item_failures.len(), 1);
    assert!(
        run.failures[0].error.contains("ParameterNotFound"),
        "{:?}",
        run.failures
    );

    ssm.put_parameter()
        .name("/bad")
        .value(list(json!([{"rule": "sg-open-ingres", "reason": "typo", "owner": "o", "expires": "2099-01-01"}])))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    ctx.exemptions = Some(Source::Ssm(SsmList::new(ssm, "/bad".into())));
    let run = handle(&ctx, &batch).await.unwrap();
    assert_eq!(run.batch_item_failures.len(), 1);
    assert!(
        run.failures[0]
            .error
            .contains("ssm:/bad: entry #1: unknown rule id \"sg-open-ingres\""),
        "{:?}",
        run.failures
    );
}

/// Guards: the CLI applies the same list from a file (and from the SSM parameter), so CLI and Lambda agree;
/// a bad file is exit 2 with one line naming the entry.
#[tokio::test]
async fn scan_applies_the_list_from_a_file_or_the_parameter() {
    let region = "ap-northeast-2";
    let sg = seed_web(region).await;
    let o = common::run_cli(region, &["scan"]);
    assert_eq!(o.status.code(), Some(1));

    let good = temp(
        "exemptions.json",
        &list(
            json!([{"rule": "sg-open-ingress", "resource": sg, "reason": "bastion", "owner": "net-team", "expires": "2099-12-31"}]),
        ),
    );
    let o = common::run_cli(region, &["scan", "--exemptions", &good, "--format", "json"]);
    assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let exempt: Vec<&Value> = v["clusters"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "EXEMPT")
        .collect();
    assert_eq!(exempt.len(), 1, "{exempt:?}");
    assert_eq!(exempt[0]["evidence"]["exemption_reason"], "bastion");
    assert_eq!(
        exempt[0]["evidence"]["exempted_by"],
        "exemption list entry #1"
    );
    // The environment variable names the file too.
    let o = common::run_cli_env(region, &["scan"], &[("EKS_WARDEN_EXEMPTIONS_FILE", &good)]);
    assert_eq!(o.status.code(), Some(0));

    // The Lambda's parameter, read by the CLI: the same verdict.
    let conf = common::sdk_config(region).await;
    aws_sdk_ssm::Client::new(&conf)
        .put_parameter()
        .name("/eks-warden/list")
        .value(std::fs::read_to_string(&good).unwrap())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let o = common::run_cli_env(
        region,
        &["scan"],
        &[("EKS_WARDEN_EXEMPTIONS", "/eks-warden/list")],
    );
    assert_exit(&o, 0);

    // `handle`, the Lambda's code path, judges alike with the same list.
    let invoke = temp("invoke.json", r#"{"clusters": ["web"]}"#);
    let o = common::run_cli_env(
        region,
        &["handle", &invoke],
        &[("EKS_WARDEN_EXEMPTIONS_FILE", &good)],
    );
    assert_exit(&o, 0);
    let run: Value = serde_json::from_slice(&o.stdout).unwrap();
    let statuses: Vec<&Value> = run["clusters"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        // The EKS-made cluster security group passes; the world-open group is the exempt one.
        .filter(|r| r["rule_id"] == "sg-open-ingress" && r["status"] != "PASS")
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, vec!["EXEMPT"]);
    // A parameter name SSM could never accept stops the function at start, naming the variable.
    let o = common::run_cli_env(
        region,
        &["handle", &invoke],
        &[("EKS_WARDEN_EXEMPTIONS", "my list")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o).contains("EKS_WARDEN_EXEMPTIONS: \"my list\""));

    let bad = temp(
        "bad-exemptions.json",
        &list(
            json!([{"id": "x", "rule": "sg-open-ingress", "reason": "r", "owner": "o", "expires": "31/12/2099"}]),
        ),
    );
    let o = common::run_cli(region, &["scan", "--exemptions", &bad]);
    assert_eq!(o.status.code(), Some(2));
    let line = one_line(&o);
    assert!(
        line.contains("entry #1 (x): \"expires\" \"31/12/2099\" is not a date"),
        "{line}"
    );
}

// ------------------------------------------------------------------------------ the function's own echo

/// Guards: a fix call made by the function's own role (as STS GetCallerIdentity names it) or by its
/// member-role session is ignored as an echo; the same call by a person is evaluated.
#[tokio::test]
async fn the_functions_own_fix_is_ignored_and_a_persons_is_not() {
    let region = "sa-east-1";
    let sg = seed_web(region).await;
    let conf = common::sdk_config(region).await;
    // The function runs with its role's credentials, as a Lambda does.
    let own = common::context::assume_role(
        &conf,
        "arn:aws:iam::123456789012:role/eks-warden-FunctionRole",
        "eks-warden-Function",
    )
    .await;
    let mut ctx = context_over(&own, eks_warden::collect::Clients::new(&own));
    ctx.member_role = Some("eks-warden-member".into());
    let revoke = |actor: &str| {
        json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
            "account": "123456789012", "region": region,
            "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "RevokeSecurityGroupIngress",
                "userIdentity": {"type": "AssumedRole", "arn": actor},
                "requestParameters": {"groupId": sg, "securityGroupRuleIds": {"items": [{"securityGroupRuleId": "sgr-1"}]}}}})
    };
    for actor in [
        "arn:aws:sts::123456789012:assumed-role/eks-warden-FunctionRole/eks-warden-Function",
        "arn:aws:sts::123456789012:assumed-role/eks-warden-member/eks-warden",
    ] {
        let run = handle(&ctx, &revoke(actor)).await.unwrap();
        assert!(run.evaluated.is_empty(), "{actor}: {run:?}");
        assert_eq!(
            run.ignored[0].reason, "eks-warden's own fix, verified on a fresh read",
            "{actor}"
        );
    }
    let run = handle(
        &ctx,
        &revoke("arn:aws:sts::123456789012:assumed-role/ops-admin/jane"),
    )
    .await
    .unwrap();
    assert_eq!(run.evaluated, vec!["web"], "{run:?}");
    // Not a fix call: an AuthorizeSecurityGroupIngress by the function's role is evaluated.
    let mut authorize = revoke(
        "arn:aws:sts::123456789012:assumed-role/eks-warden-FunctionRole/eks-warden-Function",
    );
    authorize["detail"]["eventName"] = json!("AuthorizeSecurityGroupIngress");
    let run = handle(&ctx, &authorize).await.unwrap();
    assert_eq!(run.evaluated, vec!["web"], "{run:?}");
}

// ------------------------------------------------------------------------------ scan --baseline

/// Guards: marks by finding id, resolved findings listed, `--fail-on-new` failing only on new violations
/// at or above `--fail-on`, and the table's marks.
#[tokio::test]
async fn baseline_marks_new_and_unchanged_and_lists_resolved() {
    let region = "ap-east-2";
    let sg = seed_web(region).await;
    let o = common::run_cli(region, &["scan", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let base = temp("baseline-1.json", &String::from_utf8_lossy(&o.stdout));

    // Nothing changed: every violation unchanged; --fail-on-new passes, plain --fail-on still fails.
    let o = common::run_cli(region, &["scan", "--baseline", &base, "--fail-on-new"]);
    assert_exit(&o, 0);
    let o = common::run_cli(region, &["scan", "--baseline", &base]);
    assert_eq!(o.status.code(), Some(1));

    // A second world-open rule appears and the first one goes.
    let (clients, _) = common::clients(region).await;
    seed::authorize(
        &clients.ec2,
        &sg,
        &[Ingress::Cidr("tcp", 3389, 3389, "0.0.0.0/0")],
    )
    .await
    .unwrap();
    seed::revoke(&clients.ec2, &sg, &[seed::OPEN_SSH])
        .await
        .unwrap();
    let o = common::run_cli(
        region,
        &[
            "scan",
            "--baseline",
            &base,
            "--format",
            "json",
            "--fail-on-new",
        ],
    );
    assert_exit(&o, 1);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let b = &v["baseline"];
    assert_eq!(b["new"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["unchanged"].as_array().unwrap().len(), 0, "{b}");
    let resolved = b["resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1, "{b}");
    assert_eq!(resolved[0]["rule_id"], "sg-open-ingress");
    assert_eq!(resolved[0]["now"], "gone");
    let new_id = b["new"][0].as_str().unwrap();
    let fail = v["clusters"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "FAIL")
        .unwrap();
    assert_eq!(fail["finding_id"], new_id);
    assert!(fail["message"].as_str().unwrap().contains("3389"), "{fail}");

    // The new violation is HIGH: --fail-on CRITICAL lets it through.
    let o = common::run_cli(
        region,
        &[
            "scan",
            "--baseline",
            &base,
            "--fail-on-new",
            "--fail-on",
            "CRITICAL",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let table =
        String::from_utf8_lossy(&common::run_cli(region, &["scan", "--baseline", &base]).stdout)
            .to_string();
    assert!(
        table.contains("HIGH     new       sg-open-ingress")
            && table.contains("resolved since")
            && table.contains("1 new, 0 unchanged, 1 resolved"),
        "{table}"
    );
}

/// Guards: a baseline that cannot be read is exit 2 with one line, before any scan.
#[test]
fn an_unreadable_baseline_is_exit_2_with_one_line() {
    let o = common::run_cli(
        "eu-central-2",
        &["scan", "--baseline", "/nonexistent/previous.json"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o).contains("/nonexistent/previous.json"));
    let junk = temp("junk.json", "not json");
    let o = common::run_cli("eu-central-2", &["scan", "--baseline", &junk]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o).contains("not a report of `eks-warden scan --format json`"));
    let o = common::run_cli("eu-central-2", &["scan", "--fail-on-new"]);
    assert_eq!(o.status.code(), Some(2), "--fail-on-new needs --baseline");
}
