//! Failure isolation in a batch: a cluster whose evaluation fails fails only the records that named it.

use crate::common;

use aws_sdk_eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use aws_sdk_eks::types::ClusterStatus;
use aws_smithy_mocks::{mock, mock_client, MockResponse, RuleMode};
use common::mocked::{cluster_in, describe_cluster, error, Mocked};
use eks_warden::handler::{handle, lambda_response};
use eks_warden::settings::Settings;
use serde_json::{json, Value};

/// Clusters answer ACTIVE by their name, except `bad`, whose DescribeCluster is throttled.
fn ctx() -> eks_warden::handler::Context {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_compute_response(|req| {
        let name = req.name().unwrap_or_default().to_string();
        if name == "bad" {
            MockResponse::Error(DescribeClusterError::generic(error("ThrottlingException")))
        } else {
            MockResponse::Output(
                DescribeClusterOutput::builder()
                    .cluster(cluster_in(&name, ClusterStatus::Active, true))
                    .build(),
            )
        }
    });
    // The SDK's retries of the throttled call are its own business; here the throttling has outlasted them.
    Mocked::quiet().eks(&[&describe]).no_eks_retries().context()
}

fn record(id: &str, cluster: &str) -> Value {
    let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.eks", "account": "111122223333",
        "region": "eu-west-1", "detail": {"eventSource": "eks.amazonaws.com", "eventName": "UpdateClusterConfig",
        "eventID": id, "requestParameters": {"name": cluster}}});
    json!({"messageId": id, "eventSource": "aws:sqs", "body": envelope.to_string()})
}

#[tokio::test]
async fn only_the_failed_clusters_records_are_retried() {
    let ctx = ctx();
    let batch = json!({"Records": [
        record("m1", "good"), record("m2", "bad"), record("m3", "good"), record("m4", "bad"),
        {"messageId": "m5", "body": "{ not json"},
        record("m6", "other"),
    ]});
    let run = handle(&ctx, &batch).await.unwrap();
    assert_eq!(run.evaluated, vec!["good", "other"]);
    let failed: Vec<&str> = run
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m2", "m4"]);
    // The poison message is dropped with its reason, not retried forever.
    assert!(run
        .ignored
        .iter()
        .any(|i| i.message_id.as_deref() == Some("m5") && i.reason.contains("not JSON")));

    let resp = lambda_response(&ctx, &batch).await.unwrap();
    assert_eq!(
        resp,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m4"}]})
    );
}

#[tokio::test]
async fn failed_calls_and_unknown_events_are_ignored_before_any_aws_call() {
    let ctx = ctx();
    let failed = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.eks", "detail": {
        "eventSource": "eks.amazonaws.com", "eventName": "UpdateClusterConfig", "errorCode": "AccessDeniedException",
        "requestParameters": {"name": "bad"}}});
    let run = handle(&ctx, &failed).await.unwrap();
    assert!(run.evaluated.is_empty() && !run.failed());
    assert!(run.ignored[0].reason.contains("AccessDeniedException"));
    let unknown = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": {
        "eventSource": "ec2.amazonaws.com", "eventName": "CreateKeyPair"}});
    let run = handle(&ctx, &unknown).await.unwrap();
    assert!(run.ignored[0]
        .reason
        .contains("not an event eks-warden acts on"));
    // A direct invoke that fails is an invocation error, so the caller retries.
    assert!(lambda_response(&ctx, &json!({"clusters": ["bad"]}))
        .await
        .is_err());
    assert!(lambda_response(&ctx, &json!({"clusters": ["good"]}))
        .await
        .is_ok());
}

#[tokio::test]
async fn settling_cluster_is_rechecked_with_a_bounded_attempt_counter() {
    use eks_warden::handler::RecheckQueue;
    let describe = describe_cluster(cluster_in("busy", ClusterStatus::Updating, true));
    let mut ctx = Mocked::quiet().eks(&[&describe]).context();
    // SQS itself is mocked too: what matters is the message the function sends.
    let sent = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|r| {
            r.delay_seconds() == Some(120) && r.queue_url() == Some("https://sqs/ingest")
        })
        .then_compute_output(|r| {
            aws_sdk_sqs::operation::send_message::SendMessageOutput::builder()
                .message_id(format!("sent:{}", r.message_body().unwrap_or_default()))
                .build()
        });
    ctx.sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&sent]);
    ctx.recheck = Some(RecheckQueue {
        url: "https://sqs/ingest".into(),
        delay_seconds: 120,
        max_attempts: 3,
    });

    let run = handle(&ctx, &json!({"clusters": ["busy"]})).await.unwrap();
    assert_eq!(run.rechecks.len(), 1);
    assert_eq!(run.rechecks[0].attempt, 1);
    let body: Value =
        serde_json::from_str(run.rechecks[0].message_id.trim_start_matches("sent:")).unwrap();
    assert_eq!(
        body,
        json!({"kind": "recheck", "account": "111122223333", "region": "eu-west-1", "cluster": "busy", "attempt": 1})
    );

    // The re-check message comes back through the queue; its counter grows, and stops at the limit.
    let again = handle(
        &ctx,
        &json!({"Records": [{"messageId": "r1", "body": body.to_string()}]}),
    )
    .await
    .unwrap();
    assert_eq!(again.rechecks[0].attempt, 2);
    let last = json!({"kind": "recheck", "account": "111122223333", "region": "eu-west-1", "cluster": "busy", "attempt": 3});
    let stop = handle(
        &ctx,
        &json!({"Records": [{"messageId": "r3", "body": last.to_string()}]}),
    )
    .await
    .unwrap();
    assert!(stop.rechecks.is_empty());
    assert!(
        stop.ignored
            .iter()
            .any(|i| i.reason.contains("no further re-check")),
        "{:?}",
        stop.ignored
    );
    assert!(stop.batch_item_failures.is_empty());
}

#[tokio::test]
async fn no_fix_while_the_cluster_is_updating_and_dry_run_writes_nothing() {
    use common::context::fix_policy;
    use eks_warden::remediate::{remediate_once as remediate, Mode, Outcome};
    let describe = describe_cluster(cluster_in("busy", ClusterStatus::Updating, false));
    let update = mock!(aws_sdk_eks::Client::update_cluster_config).then_output(|| {
        aws_sdk_eks::operation::update_cluster_config::UpdateClusterConfigOutput::builder().build()
    });
    let clients = Mocked::quiet().eks(&[&describe, &update]).clients();
    let settings = Settings::default();
    let report = eks_warden::scan::evaluate_cluster(&clients, "busy", &settings)
        .await
        .unwrap();
    for mode in [Mode::Remediate, Mode::DryRun] {
        let policy = fix_policy(mode, &["endpoint-private-disabled"]);
        let pass = remediate(&clients, "busy", &report.results, &settings, &policy)
            .await
            .unwrap();
        assert_eq!(pass.remediations.len(), 1);
        assert_eq!(pass.remediations[0].outcome, Outcome::Skipped);
        assert!(
            pass.remediations[0].detail.contains("UPDATING"),
            "{}",
            pass.remediations[0].detail
        );
        assert!(pass.recheck);
    }
    assert_eq!(update.num_calls(), 0);
}

#[tokio::test]
async fn a_cluster_being_deleted_is_neither_published_nor_fixed() {
    let describe = describe_cluster(cluster_in("going", ClusterStatus::Deleting, false));
    let mut ctx = Mocked::quiet().eks(&[&describe]).context();
    // A topic is set: publishing would call SNS, which has no endpoint here and would fail the run.
    ctx.topic_arn = Some("arn:aws:sns:eu-west-1:111122223333:findings".into());
    let run = handle(&ctx, &json!({"clusters": ["going"]})).await.unwrap();
    assert!(
        run.evaluated.is_empty() && run.published.is_empty() && !run.failed(),
        "{run:?}"
    );
    assert!(run.ignored[0].reason.contains("being deleted"));
}
