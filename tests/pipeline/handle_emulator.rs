//! The main job end to end against the emulator: a CloudTrail event through `eks-warden handle`, the
//! findings, and the SNS message exactly as an SQS subscriber of the topic receives it.

use crate::common;

use common::seeded::Seeded;

use common::context::{context_over, member_clients};
use common::seed;
use common::sns::Subscriber;
use eks_warden::handler::handle;
use serde_json::{json, Value};

fn fixture(name: &str, replace: &[(&str, &str)]) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap()
}

async fn subscriber(conf: &aws_config::SdkConfig) -> Subscriber {
    Subscriber::new(conf, "eks-warden-findings", "findings-subscriber").await
}

#[tokio::test]
async fn authorize_ingress_event_to_sns_subscriber() {
    let region = "eu-west-2";
    let (_, _, demo) = common::seeded::demo(region).await;
    let conf = common::sdk_config(region).await;
    let sub = subscriber(&conf).await;

    let event = fixture(
        "ec2-authorize-sg-ingress-items.json",
        &[
            ("sg-PLACEHOLDER", &demo.open_all_sg),
            ("\"eu-west-1\"", &format!("\"{region}\"")),
        ],
    );
    let file = std::env::temp_dir().join(format!("eks-warden-e2e-{}.json", std::process::id()));
    std::fs::write(&file, event.to_string()).unwrap();
    let out = common::run_cli_env(
        region,
        &["handle", file.to_str().unwrap()],
        &[("EKS_WARDEN_TOPIC_ARN", &sub.topic_arn)],
    );
    common::assert_exit(&out, 0);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["evaluated"], json!(["insecure"]), "{summary:#}");
    assert_eq!(summary["triggers"][0]["kind"], "cloudtrail");
    assert_eq!(summary["published"].as_array().unwrap().len(), 1);
    assert_eq!(summary["batchItemFailures"], json!([]));

    let got = sub.received().await;
    assert_eq!(got.len(), 1);
    let subject = got[0].subject.as_str();
    assert!(subject.starts_with("[CRITICAL] eks-warden: "), "{subject}");
    assert!(
        subject.contains("on insecure (123456789012/eu-west-2)") && subject.chars().count() <= 100,
        "{subject}"
    );
    let attrs = &got[0].attributes;
    assert_eq!(attrs["severity"]["Value"], "CRITICAL");
    assert_eq!(attrs["cluster"]["Value"], "insecure");
    assert_eq!(attrs["account"]["Value"], "123456789012");
    assert_eq!(attrs["region"]["Value"], region);
    assert_eq!(
        attrs["event_name"]["Value"],
        "AuthorizeSecurityGroupIngress"
    );
    assert_eq!(attrs["rule_ids"]["Type"], "String.Array");
    let rule_ids: Vec<String> =
        serde_json::from_str(attrs["rule_ids"]["Value"].as_str().unwrap()).unwrap();
    assert!(
        rule_ids.contains(&"sg-open-ingress".to_string()),
        "{rule_ids:?}"
    );
    // The SQS protocol gets the machine JSON.
    let body = &got[0].body;
    assert_eq!(body["cluster"], "insecure");
    assert_eq!(
        body["triggers"][0]["eventName"],
        "AuthorizeSecurityGroupIngress"
    );
    assert!(
        body["triggers"][0]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:")),
        "{body:#}"
    );
    let findings = body["findings"].as_array().unwrap();
    assert!(findings.iter().any(
        |f| f["rule_id"] == "sg-open-ingress" && f["resource_id"] == demo.open_all_sg.as_str()
    ));
}

#[tokio::test]
async fn storm_of_1000_records_evaluates_each_cluster_once() {
    let region = "us-east-2";
    let s = Seeded::new(region).await;
    let (clients, net, counter) = (s.clients.clone(), s.net.clone(), s.counter.clone());
    for name in ["alpha", "beta", "gamma"] {
        s.cluster(seed::ClusterSpec::private(name, &net)).await;
    }
    let conf = common::sdk_config(region).await;
    let records: Vec<Value> = (0..1000)
        .map(|i| {
            let name = ["alpha", "beta", "gamma"][i % 3];
            let envelope = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.eks",
                "account": "123456789012", "region": region,
                "detail": {"eventSource": "eks.amazonaws.com", "eventName": "UpdateClusterConfig",
                    "eventID": format!("3f1c2a9e-0b7d-4e5f-9a1b-{i:012}"), "eventTime": "2026-11-27T01:00:00Z",
                    "sourceIPAddress": "198.51.100.77",
                    "userIdentity": {"type": "AssumedRole",
                        "arn": format!("arn:aws:sts::123456789012:assumed-role/terraform-deployer-platform-team/session-{i}")},
                    "requestParameters": {"name": name, "logging": {}}}});
            json!({"messageId": format!("m-{i}"), "eventSource": "aws:sqs", "body": envelope.to_string()})
        })
        .collect();
    let mut ctx = context_over(&conf, clients);
    // Publishing too: a storm's hundreds of triggers must not push a message past SNS's size limit.
    let sub = subscriber(&conf).await;
    ctx.topic_arn = Some(sub.topic_arn.clone());
    let before = counter.get();
    let run = handle(&ctx, &json!({"Records": records})).await.unwrap();
    let calls = counter.get() - before;
    assert_eq!(run.evaluated, vec!["alpha", "beta", "gamma"]);
    assert_eq!(run.triggers.len(), 1000);
    assert!(run.batch_item_failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.published.len(), 3, "{:?}", run.failures);
    let body = &sub.received().await[0].body;
    assert!(
        body["triggers_total"].as_u64().unwrap() >= 333,
        "{}",
        body["triggers_total"]
    );
    // Three evaluations of a cluster without nodegroups: 8 calls each at most (see README).
    assert!(
        calls <= 3 * 8,
        "{calls} AWS calls for 1000 records over 3 clusters"
    );
}

#[tokio::test]
async fn event_from_a_member_account_is_evaluated_through_assume_role() {
    let region = "eu-north-1";
    let member = "222233334444";
    let conf = common::sdk_config(region).await;
    let b = member_clients(&conf, member).await;
    let (_, open) =
        seed::open_ssh_cluster(&b.eks, &b.ec2, region, "member-cluster", Default::default())
            .await
            .unwrap();
    // The home account sees no such cluster: the accounts really are apart.
    let (home_clients, _) = common::clients(region).await;
    assert!(eks_warden::collect::list_clusters(&home_clients)
        .await
        .unwrap()
        .is_empty());

    let event = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
        "account": member, "region": region,
        "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "requestParameters": {"groupId": open, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22,
                "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}}});

    // Without a member role the event is ignored with the reason.
    let mut ctx = context_over(&conf, home_clients.clone());
    let _ = ctx.home_account.set("123456789012".into());
    let run = handle(&ctx, &event).await.unwrap();
    assert!(run.evaluated.is_empty());
    assert!(
        run.ignored[0].reason.contains("EKS_WARDEN_MEMBER_ROLE"),
        "{:?}",
        run.ignored
    );

    // With it, the function assumes the role in the member account (its own account comes from STS).
    ctx = context_over(&conf, home_clients);
    ctx.member_role = Some("eks-warden-member".into());
    let run = handle(&ctx, &event).await.unwrap();
    assert_eq!(run.evaluated, vec!["member-cluster"], "{run:?}");
    assert_eq!(run.clusters[0].account, member);
    assert!(run.clusters[0]
        .failures()
        .any(|f| f.rule_id == "sg-open-ingress" && f.resource_id == open));
    assert_eq!(
        ctx.home_account.get().map(String::as_str),
        Some("123456789012")
    );
}

#[tokio::test]
async fn handle_exit_codes() {
    let run = |args: &[&str], stdin: Option<&str>| common::run_cli_stdin("sa-east-1", args, stdin);
    let one_line = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .trim_end()
            .lines()
            .count()
            == 1
    };
    let o = run(&["handle", "-"], Some("{ not json"));
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o));
    let o = run(&["handle", "-"], Some(r#"{"hello": "world"}"#));
    assert_eq!(o.status.code(), Some(2));
    assert!(one_line(&o) && String::from_utf8_lossy(&o.stderr).contains("not a known payload"));
    let o = run(&["handle", "/nonexistent/event.json"], None);
    assert_eq!(o.status.code(), Some(2));
    // Rightly ignored: exit 0, with the reason in the summary.
    let fixture = format!(
        "{}/events/unrelated-s3-put-bucket-policy.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = run(&["handle", &fixture], None);
    common::assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["ignored"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not an event"));
}
