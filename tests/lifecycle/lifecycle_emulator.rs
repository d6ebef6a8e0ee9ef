//! The finding lifecycle end to end against the emulator (DynamoDB state table, SNS → SQS subscriber),
//! through `handle`: a message on change only, exactly once, with the audit of the fixes.

use crate::common;

use common::seed::{self, Ingress};
use common::sns::{Received, Subscriber};
use common::CallCounter;
use eks_warden::handler::{handle, Context, RunSummary};
use eks_warden::remediate::Mode;
use eks_warden::state::store::Store;
use eks_warden::state::Lifecycle;
use serde_json::{json, Value};

struct World {
    conf: aws_config::SdkConfig,
    clients: eks_warden::collect::Clients,
    sg: String,
    /// The topic's ARN, whether or not it exists yet.
    topic: String,
    subscriber: Option<Subscriber>,
    table: String,
    dynamo_calls: CallCounter,
}

async fn subscriber(conf: &aws_config::SdkConfig) -> Subscriber {
    Subscriber::new(conf, "lifecycle-findings", "lifecycle-subscriber").await
}

/// A cluster `prod` whose additional security group opens SSH to the world, a state table, and a topic
/// with a subscriber (`create_topic` false: only the ARN the topic will have).
async fn world(region: &str, create_topic: bool) -> World {
    let (clients, _) = common::clients(region).await;
    let conf = common::sdk_config(region).await;
    let (_, sg) = seed::open_ssh_cluster(
        &clients.eks,
        &clients.ec2,
        region,
        "prod",
        Default::default(),
    )
    .await
    .unwrap();
    let table = "eks-warden-state".to_string();
    let out = common::run_cli(region, &["state", "create-table", &table]);
    common::assert_exit(&out, 0);
    let subscriber = match create_topic {
        true => Some(subscriber(&conf).await),
        false => None,
    };
    let topic = format!("arn:aws:sns:{region}:123456789012:lifecycle-findings");
    if let Some(s) = &subscriber {
        assert_eq!(s.topic_arn, topic);
    }
    World {
        clients,
        conf,
        sg,
        topic,
        subscriber,
        table,
        dynamo_calls: CallCounter::default(),
    }
}

impl World {
    fn ctx(&self) -> Context {
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.conf)
                .interceptor(self.dynamo_calls.clone())
                .build(),
        );
        let mut ctx = common::context::context_over(&self.conf, self.clients.clone());
        ctx.topic_arn = Some(self.topic.clone());
        ctx.state = Some(Lifecycle::new(&self.conf, Store::new(dynamo, &self.table)));
        ctx
    }

    /// The one message the subscriber queue holds now (fails on none or more).
    async fn one(&self) -> Received {
        let mut got = self.received().await;
        assert_eq!(got.len(), 1, "{got:?}");
        got.remove(0)
    }

    /// Every message the subscriber queue holds now.
    async fn received(&self) -> Vec<Received> {
        self.subscriber
            .as_ref()
            .expect("a subscribed topic")
            .received()
            .await
    }
}

fn direct() -> Value {
    json!({"clusters": ["prod"]})
}

fn ec2_event(region: &str, name: &str, group: &str) -> Value {
    json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
        "account": "123456789012", "region": region,
        "detail": {"eventSource": "ec2.amazonaws.com", "eventName": name, "eventID": format!("{name}-1"),
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
            "requestParameters": {"groupId": group}}})
}

fn ids(changes: &Value) -> Vec<String> {
    changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule_id"].as_str().unwrap().to_string())
        .collect()
}

async fn run(ctx: &Context, payload: &Value) -> RunSummary {
    let run = handle(ctx, payload).await.unwrap();
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    run
}

#[tokio::test]
async fn change_messages_only_when_a_verdict_changes() {
    let region = "ca-central-1";
    let w = world(region, true).await;
    let ctx = w.ctx();

    // First evaluation: one change message, every violation new, the full open list beside it.
    let before = w.dynamo_calls.operations().len();
    let first = run(&ctx, &direct()).await;
    let ops = w.dynamo_calls.operations()[before..].to_vec();
    assert_eq!(first.published.len(), 1);
    assert_eq!(first.published[0].notification, "change");
    let got = w.one().await;
    let Received {
        subject,
        body,
        attributes: attrs,
    } = &got;
    assert_eq!(body["notification"], "change");
    assert_eq!(attrs["notification"]["Value"], "change");
    let fails = first.clusters[0].failures().count();
    assert!(fails >= 2, "{:?}", first.clusters[0].results);
    assert_eq!(body["changes"]["new"].as_array().unwrap().len(), fails);
    assert_eq!(body["changes"]["resolved"], json!([]));
    assert_eq!(body["findings"].as_array().unwrap().len(), fails);
    for c in body["changes"]["new"].as_array().unwrap() {
        for k in ["rule_id", "resource_id", "finding_id", "severity"] {
            assert!(c[k].is_string(), "{k} in {c}");
        }
    }
    assert!(
        subject.starts_with(&format!(
            "[HIGH] eks-warden: {fails} new on prod (123456789012/{region})"
        )),
        "{subject}"
    );
    // One read, one transaction (state + pending message), one delete of the pending message.
    assert_eq!(
        ops,
        ["Query", "TransactWriteItems", "DeleteItem"],
        "{ops:?}"
    );
    println!("DynamoDB calls, evaluation with a change: {ops:?}");

    // The same state again: no message, one read and one conditional write.
    let before = w.dynamo_calls.operations().len();
    let again = run(&ctx, &direct()).await;
    let ops = w.dynamo_calls.operations()[before..].to_vec();
    assert!(again.published.is_empty());
    assert!(w.received().await.is_empty());
    assert_eq!(ops, ["Query", "PutItem"], "{ops:?}");
    println!("DynamoDB calls, evaluation without a change: {ops:?}");

    // An event that changes no verdict: a rule that is not world-open added to the group.
    seed::authorize(
        &w.clients.ec2,
        &w.sg,
        &[Ingress::Cidr("tcp", 443, 443, "10.0.0.0/8")],
    )
    .await
    .unwrap();
    let quiet = run(
        &ctx,
        &ec2_event(region, "AuthorizeSecurityGroupIngress", &w.sg),
    )
    .await;
    assert_eq!(quiet.evaluated, ["prod"]);
    assert!(quiet.published.is_empty() && w.received().await.is_empty());

    // The world-open rule revoked: one message, it is resolved.
    seed::revoke(&w.clients.ec2, &w.sg, &[seed::OPEN_SSH])
        .await
        .unwrap();
    run(
        &ctx,
        &ec2_event(region, "RevokeSecurityGroupIngress", &w.sg),
    )
    .await;
    let got = w.one().await;
    let Received {
        subject,
        body,
        attributes: attrs,
    } = &got;
    assert_eq!(ids(&body["changes"]["resolved"]), ["sg-open-ingress"]);
    assert_eq!(body["changes"]["new"], json!([]));
    assert!(
        subject.starts_with("[HIGH] eks-warden: 1 resolved on prod"),
        "{subject}"
    );
    assert_eq!(
        attrs["severity"]["Value"], "HIGH",
        "the resolution reaches a HIGH filter"
    );
    assert_eq!(
        body["triggers"][0]["eventName"],
        "RevokeSecurityGroupIngress"
    );

    // Re-opened: new again.
    seed::authorize(&w.clients.ec2, &w.sg, &[seed::OPEN_SSH])
        .await
        .unwrap();
    run(
        &ctx,
        &ec2_event(region, "AuthorizeSecurityGroupIngress", &w.sg),
    )
    .await;
    let got = w.one().await;
    assert_eq!(ids(&got.body["changes"]["new"]), ["sg-open-ingress"]);

    // Exempted by tagging the group.
    seed::tag(
        &w.clients.ec2,
        &w.sg,
        "eks-warden:exempt",
        "sg-open-ingress",
    )
    .await
    .unwrap();
    run(&ctx, &direct()).await;
    let got = w.one().await;
    assert_eq!(ids(&got.body["changes"]["exempted"]), ["sg-open-ingress"]);
    assert!(got.subject.contains("1 exempted"), "{}", got.subject);

    // `state show` prints what the table holds.
    let out = common::run_cli(
        region,
        &[
            "state", "show", "prod", "--table", &w.table, "--format", "json",
        ],
    );
    common::assert_exit(&out, 0);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(shown["open"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule_id"] == "sg-open-ingress" && f["status"] == "EXEMPT"));
}

/// Guards the optimistic concurrency: two `handle` processes racing on one change yield one message.
#[tokio::test]
async fn two_concurrent_handle_processes_publish_one_message() {
    let region = "ap-south-1";
    let w = world(region, true).await;
    let file = std::env::temp_dir().join(format!("eks-warden-race-{}.json", std::process::id()));
    std::fs::write(&file, direct().to_string()).unwrap();
    let env = [
        ("EKS_WARDEN_TOPIC_ARN", w.topic.as_str()),
        ("EKS_WARDEN_STATE_TABLE", w.table.as_str()),
    ];
    let spawn = || {
        common::cli_command(
            common::emulator(),
            region,
            &["handle", file.to_str().unwrap()],
            &env,
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut published = 0;
    for o in [&a, &b] {
        common::assert_exit(o, 0);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        published += v["published"].as_array().unwrap().len();
    }
    let got = w.received().await;
    assert_eq!((published, got.len()), (1, 1), "{got:?}");
    assert_eq!(got[0].body["notification"], "change");
}

/// Guards the pending message: a publish that fails is retried from the state, never lost, never doubled,
/// and the message carries the audit of the fix made before the failure.
#[tokio::test]
async fn a_failed_publish_is_retried_once_with_the_fix_audit() {
    let region = "eu-south-1";
    // The topic does not exist yet: the first publish fails.
    let mut w = world(region, false).await;
    let mut ctx = w.ctx();
    ctx.policy = common::context::fix_policy(Mode::Remediate, &["sg-open-ingress"]);
    let records = json!({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs",
        "body": direct().to_string()}]});
    let first = handle(&ctx, &records).await.unwrap();
    assert!(first.published.is_empty());
    assert_eq!(first.batch_item_failures.len(), 1, "{:?}", first.failures);
    assert!(first.clusters[0]
        .remediations
        .iter()
        .any(|m| m.rule_id == "sg-open-ingress"));

    // The topic appears; the redelivered record publishes the pending message (old enough to claim).
    let s = subscriber(&w.conf).await;
    assert_eq!(s.topic_arn, w.topic);
    w.subscriber = Some(s);
    if let Some(lc) = ctx.state.as_mut() {
        lc.claim_after_secs = 0;
    }
    let second = handle(&ctx, &records).await.unwrap();
    assert!(second.failures.is_empty(), "{:?}", second.failures);
    assert!(second.batch_item_failures.is_empty());
    let got = w.one().await;
    let body = &got.body;
    let audit = body["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 1, "{body:#}");
    assert_eq!(audit[0]["rule_id"], "sg-open-ingress");
    assert_eq!(audit[0]["action"]["revoked"][0]["cidr_ipv4"], "0.0.0.0/0");
    assert_eq!(audit[0]["permission"], "ec2:RevokeSecurityGroupIngress");
    assert!(
        audit[0]["role"].as_str().unwrap().starts_with("arn:aws:"),
        "{audit:?}"
    );
    assert!(audit[0]["at"].is_string());
    assert!(ids(&body["changes"]["resolved"]).contains(&"sg-open-ingress".to_string()));

    // Nothing left to say.
    let third = handle(&ctx, &records).await.unwrap();
    assert!(third.published.is_empty() && w.received().await.is_empty());
}

#[tokio::test]
async fn a_deleted_cluster_resolves_everything_and_its_state_goes() {
    let region = "me-south-1";
    let w = world(region, true).await;
    let ctx = w.ctx();
    run(&ctx, &direct()).await;
    let opened = w.received().await;
    let open = opened[0].body["changes"]["new"].as_array().unwrap().len();
    w.clients
        .eks
        .delete_cluster()
        .name("prod")
        .send()
        .await
        .unwrap();
    let event = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.eks",
        "account": "123456789012", "region": region,
        "detail": {"eventSource": "eks.amazonaws.com", "eventName": "DeleteCluster",
            "requestParameters": {"name": "prod"}}});
    let gone = run(&ctx, &event).await;
    assert_eq!(gone.published.len(), 1, "{gone:?}");
    let got = w.one().await;
    assert_eq!(
        got.body["changes"]["resolved"].as_array().unwrap().len(),
        open
    );
    assert_eq!(got.body["findings"], json!([]));
    let shown = eks_warden::state::show(
        &Store::new(aws_sdk_dynamodb::Client::new(&w.conf), &w.table),
        "123456789012",
        region,
        "prod",
    )
    .await
    .unwrap();
    assert_eq!(shown["known"], false, "{shown:#}");
    // Once gone, nothing more.
    let again = run(&ctx, &event).await;
    assert!(again.published.is_empty() && w.received().await.is_empty());
}

/// Guards the installer: the command is idempotent, and creates what template.yaml declares.
#[tokio::test]
async fn create_table_is_idempotent_and_agrees_with_the_template() {
    let region = "af-south-1";
    for _ in 0..2 {
        let out = common::run_cli(region, &["state", "create-table", "warden-state"]);
        common::assert_exit(&out, 0);
    }
    let conf = common::sdk_config(region).await;
    let db = aws_sdk_dynamodb::Client::new(&conf);
    let t = db
        .describe_table()
        .table_name("warden-state")
        .send()
        .await
        .unwrap();
    let t = t.table().unwrap();
    let text =
        std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let tpl: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let p = &tpl["Resources"]["StateTable"]["Properties"];
    let keys: Vec<(String, String)> = t
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    // The template's (AttributeName, `kind`) pairs of one of the table's lists.
    let declared = |list: &str, kind: &str| -> Vec<(String, String)> {
        p[list]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| {
                let field = |f: &str| k[f].as_str().unwrap().to_string();
                (field("AttributeName"), field(kind))
            })
            .collect()
    };
    assert_eq!(keys, declared("KeySchema", "KeyType"));
    let attrs: Vec<(String, String)> = t
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_string(),
                a.attribute_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(attrs, declared("AttributeDefinitions", "AttributeType"));
    assert_eq!(
        t.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str()),
        p["BillingMode"].as_str()
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
    assert_eq!(
        t.sse_description()
            .and_then(|s| s.status())
            .map(|s| s.as_str()),
        Some("ENABLED")
    );
    let ttl = db
        .describe_time_to_live()
        .table_name("warden-state")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(
        ttl.attribute_name(),
        p["TimeToLiveSpecification"]["AttributeName"].as_str()
    );
    assert_eq!(
        p["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    let backups = db
        .describe_continuous_backups()
        .table_name("warden-state")
        .send()
        .await
        .unwrap();
    let pitr = backups
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str());
    assert_eq!(pitr, Some("ENABLED"));
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

fn sweep(region: &str) -> Value {
    json!({"version": "0", "id": "sweep-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "region": region, "detail": {}})
}

/// Reminders go out on the sweep only, and only once the last message is older than the setting.
#[tokio::test]
async fn the_sweep_reminds_of_violations_that_stay_open() {
    let region = "eu-west-3";
    let w = world(region, true).await;
    let mut ctx = w.ctx();
    run(&ctx, &direct()).await;
    assert_eq!(w.received().await.len(), 1);
    // Just notified: the sweep stays quiet.
    assert!(run(&ctx, &sweep(region)).await.published.is_empty());
    // The last message is two days old.
    let db = aws_sdk_dynamodb::Client::new(&w.conf);
    let backdate = || async {
        db.update_item()
            .table_name(&w.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!(
                    "CLUSTER#aws#123456789012#{region}#prod"
                )),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("STATE".into()),
            )
            .update_expression("SET last_notified = :t")
            .expression_attribute_values(
                ":t",
                aws_sdk_dynamodb::types::AttributeValue::S("2026-01-01T00:00:00Z".into()),
            )
            .send()
            .await
            .unwrap();
    };
    backdate().await;
    // An event is no reminder.
    assert!(run(&ctx, &direct()).await.published.is_empty());
    let reminded = run(&ctx, &sweep(region)).await;
    assert_eq!(reminded.published.len(), 1);
    assert_eq!(reminded.published[0].notification, "reminder");
    let got = w.one().await;
    assert!(
        got.subject.contains("eks-warden: reminder, "),
        "{}",
        got.subject
    );
    assert_eq!(got.attributes["notification"]["Value"], "reminder");
    assert_eq!(got.body["changes"]["new"], json!([]));
    // Reminded now: the next sweep is quiet again; with reminders off, so is an old one.
    assert!(run(&ctx, &sweep(region)).await.published.is_empty());
    backdate().await;
    if let Some(lc) = ctx.state.as_mut() {
        lc.remind_after_hours = 0;
    }
    assert!(run(&ctx, &sweep(region)).await.published.is_empty());
    assert!(w.received().await.is_empty());
}

/// Guards the optimistic concurrency without relying on timing: a write on a version that moved, or a
/// first write when someone else already created the state, is refused.
#[tokio::test]
async fn a_write_on_a_stale_version_is_refused() {
    use eks_warden::state::store::{cluster_pk, Commit, State, WriteError};
    let region = "eu-north-1";
    let w = world(region, true).await;
    run(&w.ctx(), &direct()).await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&w.conf), &w.table);
    let pk = cluster_pk("123456789012", region, "prod");
    let current = store.load(&pk).await.unwrap().state.unwrap();
    assert_eq!(current.version, 1);
    let next = State {
        version: 2,
        ..current.clone()
    };
    for expected in [None, Some(0)] {
        let c = Commit {
            expected,
            next: Some(&next),
            pending: None,
            audit: &[],
            now_epoch: 0,
            audit_days: 90,
        };
        assert!(matches!(
            store.commit(&pk, c).await,
            Err(WriteError::Conflict)
        ));
    }
    let c = Commit {
        expected: Some(1),
        next: Some(&next),
        pending: None,
        audit: &[],
        now_epoch: 0,
        audit_days: 90,
    };
    assert!(store.commit(&pk, c).await.is_ok());
    assert_eq!(store.load(&pk).await.unwrap().state.unwrap().version, 2);
}
