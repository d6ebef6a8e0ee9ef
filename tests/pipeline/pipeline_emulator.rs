//! The batch pipeline against the emulator, AWS calls counted on the wire: a storm routed as a batch, a
//! large RunInstances, a stale cluster tag, a held call against the invocation's deadline and the SDK
//! timeouts, a sweep fanned out per cluster, and an organization sweep over accounts and regions.

use crate::common;

use common::seeded::Seeded;
#[path = "../../benches/warden/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "../../benches/warden/storm.rs"]
mod storm;

use common::context::{context, context_over, member_clients};
use common::proxy::{Fault, FaultProxy, Plan};
use common::report::reached;
use common::sns::Queue;
use common::{seed, via_proxy};
use eks_warden::collect::Clients;
use eks_warden::handler::{handle, handle_until, lambda_response_until, Context, MemberAccounts};
use eks_warden::settings::Settings;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";

fn counted_ctx(
    conf: &aws_config::SdkConfig,
    clients: Clients,
    counter: &common::CallCounter,
) -> Context {
    let mut ctx = context_over(conf, clients);
    let _ = ctx.home_account.set(ACCOUNT.into());
    ctx.sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    ctx.sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    ctx
}

async fn plain_cluster(clients: &Clients, net: &seed::Network, name: &str, groups: Vec<String>) {
    seed::cluster(
        &clients.eks,
        seed::ClusterSpec::private(name, net).groups(groups),
    )
    .await
    .unwrap();
}

/// Guards batch routing: every record of a storm resolved once per (kind, id), ids of a kind together.
/// Per-record routing made 1,039 calls for this batch.
#[tokio::test]
async fn storm_of_1000_records_costs_at_most_64_calls() {
    let region = "af-south-1";
    let (clients, _) = common::clients(region).await;
    let clusters = fleet::storm_clusters(&clients, region).await.unwrap();
    let conf = common::sdk_config(region).await;
    let topic = fleet::topic(&conf, "storm-findings").await.unwrap();
    let (counted, counter) = common::clients(region).await;
    let mut ctx = counted_ctx(&conf, counted, &counter);
    ctx.topic_arn = Some(topic);
    let run = handle(&ctx, &storm::batch(region, 1000, &clusters))
        .await
        .unwrap();
    let ops = counter.operations();
    let mut by_op = std::collections::BTreeMap::<&str, usize>::new();
    for o in &ops {
        *by_op.entry(o.as_str()).or_default() += 1;
    }
    eprintln!("storm: {} calls {by_op:?}", ops.len());
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.evaluated, vec!["storm-a", "storm-b", "storm-c"]);
    // One message per cluster with a violation (the emulated fleet may be compliant), never one per record.
    let violating = run
        .clusters
        .iter()
        .filter(|c| c.failures().next().is_some())
        .count();
    assert_eq!(run.published.len(), violating);
    assert_eq!(run.triggers.len(), 1000);
    assert!(ops.len() <= 64, "{} calls: {ops:?}", ops.len());
    // The summary says what led each trigger to its cluster.
    let sg = run
        .triggers
        .iter()
        .find(|t| t.id == "evt-000009")
        .expect("an AuthorizeSecurityGroupIngress trigger");
    assert!(
        sg.evidence["storm-a"].iter().any(|e| e.contains("uses")),
        "{:?}",
        sg.evidence
    );
    assert_eq!(run.targets.len(), 3);
    assert!(run
        .targets
        .iter()
        .all(|t| !t.evidence.is_empty() && t.region == region));
}

/// Guards batch routing of one event naming many ids: one filtered DescribeInstances for all of them
/// (per-id routing made 101).
#[tokio::test]
async fn run_instances_of_100_nodes_costs_at_most_3_describe_instances() {
    let region = "eu-west-3";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    plain_cluster(&clients, &net, "wide", vec![]).await;
    let out = clients
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(100)
        .max_count(100)
        .subnet_id(&net.private[0])
        .tag_specifications(seed::cluster_name_tag(
            aws_sdk_ec2::types::ResourceType::Instance,
            "wide",
        ))
        .send()
        .await
        .unwrap();
    let items: Vec<Value> = out
        .instances()
        .iter()
        .map(|i| json!({"instanceId": i.instance_id().unwrap()}))
        .collect();
    assert_eq!(items.len(), 100);
    let event = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
        "account": ACCOUNT, "region": region,
        "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "eventID": "run-100",
            "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-12c6146b", "minCount": 100, "maxCount": 100}]}},
            "responseElements": {"instancesSet": {"items": items}}}});
    let conf = common::sdk_config(region).await;
    let (counted, counter) = common::clients(region).await;
    let ctx = counted_ctx(&conf, counted, &counter);
    let run = handle(&ctx, &event).await.unwrap();
    assert_eq!(run.evaluated, vec!["wide"], "{run:?}");
    let describes = counter
        .operations()
        .iter()
        .filter(|o| *o == "DescribeInstances")
        .count();
    assert!(describes <= 3, "{describes} DescribeInstances");
}

/// Guards issue 11's routing: a security group still tagged for a deleted cluster is a hint that failed;
/// its attachments lead the event to the cluster that really uses it.
#[tokio::test]
async fn a_stale_cluster_tag_still_leads_to_the_real_cluster() {
    let region = "ap-south-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let sg = s.group("reused", &[]).await;
    seed::tag(
        &clients.ec2,
        &sg,
        "kubernetes.io/cluster/deleted-long-ago",
        "owned",
    )
    .await
    .unwrap();
    plain_cluster(&clients, &net, "real", vec![sg.clone()]).await;
    let node = seed::node(&clients.ec2, "real", Some("ng"), &net.private[0], &[&sg])
        .await
        .unwrap();
    let event = json!({"detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT, "region": region,
        "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "eventID": "stale-tag", "requestParameters": {"groupId": sg}}});
    let conf = common::sdk_config(region).await;
    let ctx = context_over(&conf, clients);
    let run = handle(&ctx, &event).await.unwrap();
    assert_eq!(run.evaluated, vec!["real"], "{run:?}");
    let evidence = &run.triggers[0].evidence["real"];
    assert!(
        evidence
            .iter()
            .any(|e| e == &format!("control plane uses {sg}")),
        "{evidence:?}"
    );
    assert!(
        evidence
            .iter()
            .any(|e| e == &format!("node instance {node} uses {sg}")),
        "{evidence:?}"
    );
    assert!(!run.triggers[0]
        .clusters
        .contains(&"deleted-long-ago".to_string()));
}

fn recheck_record(id: &str, region: &str, cluster: &str) -> Value {
    let body = json!({"kind": "recheck", "account": ACCOUNT, "region": region, "cluster": cluster, "attempt": 1});
    json!({"messageId": id, "eventSource": "aws:sqs", "body": body.to_string()})
}

/// A re-check record for each of `fast` (m-fast) and `slow` (m-slow).
fn fast_and_slow_records(region: &str) -> Value {
    json!({"Records": [recheck_record("m-fast", region, "fast"), recheck_record("m-slow", region, "slow")]})
}

/// Clusters `fast` and `slow` in a fresh network, and a proxy that holds every request about `slow`.
async fn fast_and_held_slow(region: &str) -> FaultProxy {
    let s = Seeded::new(region).await;
    s.private_cluster("fast", &[]).await;
    s.private_cluster("slow", &[]).await;
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    proxy.set(vec![
        Plan::new(Fault::Delay(Duration::from_secs(120))).matching("/clusters/slow")
    ]);
    proxy
}

/// Guards the invocation deadline: a call that never answers fails only its own records, and the
/// invocation returns well before Lambda's deadline instead of being killed with the good records.
#[tokio::test]
async fn a_held_call_fails_only_its_records_before_the_deadline() {
    let region = "ca-central-1";
    let proxy = fast_and_held_slow(region).await;
    let (proxied, conf) = via_proxy(&proxy, &common::sdk_config(region).await);
    let mut ctx = context_over(&conf, proxied);
    ctx.deadline_margin = Duration::from_secs(3);
    let payload = fast_and_slow_records(region);
    let started = Instant::now();
    let deadline = std::time::SystemTime::now() + Duration::from_secs(10);
    let answer = lambda_response_until(&ctx, &payload, Some(deadline))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(9), "took {took:?}");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-slow"}]})
    );
    // The same batch with a cut-off only: the good cluster is evaluated, the held one handed back.
    let run = handle_until(
        &ctx,
        &payload,
        Some(tokio::time::Instant::now() + Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert_eq!(run.evaluated, vec!["fast"]);
    assert!(
        run.failures[0].error.contains("deadline"),
        "{:?}",
        run.failures
    );
}

/// Guards the SDK timeouts: with them on the configuration, a held call gives up after the operation
/// timeout even with no deadline at all (the CLI), and only its records fail.
#[tokio::test]
async fn sdk_timeouts_bound_a_call_that_never_answers() {
    let region = "ca-west-1";
    let proxy = fast_and_held_slow(region).await;
    let timeouts = eks_warden::timeouts::from_lookup(Some(2.0), |_| None).unwrap();
    let conf = common::sdk_config(region)
        .await
        .to_builder()
        .timeout_config(timeouts)
        .build();
    let (proxied, conf) = via_proxy(&proxy, &conf);
    let ctx = context_over(&conf, proxied);
    let payload = fast_and_slow_records(region);
    let started = Instant::now();
    let run = handle(&ctx, &payload).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.evaluated, vec!["fast"]);
    assert_eq!(run.batch_item_failures.len(), 1);
    assert_eq!(run.batch_item_failures[0].item_identifier, "m-slow");
}

/// Guards sweep isolation: the sweep fans out one message per cluster, so a throttled cluster is its
/// own retry and the sweep record succeeds (before, it failed the sweep and re-evaluated every cluster).
#[tokio::test]
async fn a_throttled_cluster_is_queued_again_and_the_sweep_succeeds() {
    let region = "ap-east-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    for name in ["one", "two", "bad"] {
        plain_cluster(&clients, &net, name, vec![]).await;
    }
    let conf = common::sdk_config(region).await;
    let queue = Queue::create(&conf, "eks-warden-recheck").await;
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    proxy.set(vec![Plan::new(Fault::Throttle).matching("/clusters/bad")]);
    let (proxied, pconf) = via_proxy(&proxy, &conf);
    let mut ctx = context_over(&pconf, proxied);
    let _ = ctx.home_account.set(ACCOUNT.into());
    ctx.recheck = Some(queue.as_recheck());
    let sweep = json!({"Records": [{"messageId": "sweep-1", "eventSource": "aws:sqs",
        "body": json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "region": region, "detail": {}}).to_string()}]});
    let run = handle(&ctx, &sweep).await.unwrap();
    assert!(run.batch_item_failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.fanned_out.len(), 3, "{run:?}");
    let records = queue.records().await;
    assert_eq!(records.len(), 3);
    for r in &records {
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["origin"], "sweep");
        assert_eq!(body["attempt"], 0);
    }
    let bad_id = records
        .iter()
        .find(|r| r["body"].as_str().unwrap().contains("\"bad\""))
        .unwrap()["messageId"]
        .clone();
    let run = handle(&ctx, &json!({"Records": records})).await.unwrap();
    assert_eq!(run.evaluated, vec!["one", "two"]);
    assert_eq!(run.batch_item_failures.len(), 1);
    assert_eq!(json!(run.batch_item_failures[0].item_identifier), bad_id);
}

/// Guards the organization sweep: every member account in every listed region is swept, in-line (CLI)
/// and fanned out per account and region then per cluster (Lambda).
#[tokio::test]
async fn organization_sweep_of_3_accounts_and_2_regions_reaches_every_cluster() {
    let accounts = ["111111111111", "222222222222", "333333333333"];
    let regions = ["us-west-1", "ap-northeast-2"];
    let mut expected = vec![];
    for a in accounts {
        for r in regions {
            let c = member_clients(&common::sdk_config(r).await, a).await;
            let net = seed::network(&c.ec2, r).await.unwrap();
            let name = format!("c-{}-{r}", &a[..3]);
            plain_cluster(&c, &net, &name, vec![]).await;
            expected.push((a.to_string(), r.to_string(), name));
        }
    }
    let home = "eu-central-1";
    let conf = common::sdk_config(home).await;
    let mut ctx = context(home).await;
    let _ = ctx.home_account.set(ACCOUNT.into());
    ctx.member_role = Some("eks-warden-member".into());
    ctx.member_accounts = Some(MemberAccounts::List(
        accounts.iter().map(|a| a.to_string()).collect(),
    ));
    ctx.regions = regions.iter().map(|r| r.to_string()).collect();
    let schedule = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT, "region": home, "detail": {}});

    // In-line, as the CLI runs it.
    let run = handle(&ctx, &schedule).await.unwrap();
    assert!(
        run.failures.is_empty() && run.unreachable.is_empty(),
        "{run:?}"
    );
    expected.sort();
    assert_eq!(reached(&run), expected);

    // Fanned out, as the Lambda runs it: 6 scope messages, then one message per cluster.
    let queue = Queue::create(&conf, "org-sweep").await;
    ctx.recheck = Some(queue.as_recheck());
    let run = handle(&ctx, &schedule).await.unwrap();
    assert_eq!(run.fanned_out.len(), 6, "{run:?}");
    let scopes = queue.records().await;
    let run = handle(&ctx, &json!({"Records": scopes})).await.unwrap();
    assert!(run.batch_item_failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.fanned_out.len(), 6);
    let per_cluster = queue.records().await;
    let run = handle(&ctx, &json!({"Records": per_cluster}))
        .await
        .unwrap();
    assert_eq!(reached(&run), expected);
}

/// Guards shared reads: clusters of one run that share a VPC read its route tables once, not once per
/// cluster (8 reads before). The version-support cache is not exercised here: the emulator does not answer
/// DescribeClusterVersions, and only known answers are shared.
#[tokio::test]
async fn clusters_of_one_vpc_share_their_route_table_reads() {
    let region = "eu-south-1";
    let s = Seeded::new(region).await;
    let (clients, net) = (s.clients.clone(), s.net.clone());
    let names: Vec<String> = (0..8).map(|i| format!("shared-{i}")).collect();
    for n in &names {
        plain_cluster(&clients, &net, n, vec![]).await;
    }
    let (counted, counter) = common::clients(region).await;
    let report = eks_warden::scan::scan(&counted, &[], &Settings::default())
        .await
        .unwrap();
    assert_eq!(report.clusters.len(), 8);
    let ops = counter.operations();
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("DescribeRouteTables"), 1, "{ops:?}");
    // Every cluster still judged its subnets with the shared tables.
    for c in &report.clusters {
        assert!(c
            .results
            .iter()
            .any(|r| r.rule_id == "vpc-no-private-subnet"
                && r.status == eks_warden::rules::Status::Pass));
    }
}
