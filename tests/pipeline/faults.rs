//! Fault injection between the SDK and the emulator: transient faults change no finding; persistent ones
//! fail exactly the affected work, with a clear message, and never turn into a verdict on unread data.

use crate::common;

use common::seeded::Seeded;

use common::proxy::{Fault, FaultProxy, Plan, Protocol};
use common::seed::{self, ClusterSpec};
use eks_warden::collect::{Clients, CollectError};
use eks_warden::handler::handle;
use eks_warden::rules::Status;
use eks_warden::scan::evaluate_cluster;
use eks_warden::settings::Settings;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn via(proxy: &FaultProxy, region: &str) -> (Clients, aws_config::SdkConfig) {
    common::via_proxy(proxy, &common::sdk_config(region).await)
}

fn verdicts(r: &eks_warden::scan::ClusterReport) -> BTreeSet<(String, String, Status)> {
    r.results
        .iter()
        .map(|x| (x.rule_id.clone(), x.resource_id.clone(), x.status))
        .collect()
}

async fn seed_two(region: &str) -> seed::Demo {
    common::seeded::demo(region).await.2
}

#[tokio::test]
async fn transient_faults_change_no_finding() {
    let region = "ap-southeast-1";
    seed_two(region).await;
    let (clean, _) = common::clients(region).await;
    let settings = Settings::default();
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    let (faulty, _) = via(&proxy, region).await;
    // One kind of fault at a time, on every third request, so no request meets more faults than the
    // SDK's three attempts absorb.
    let kinds = [
        Plan::new(Fault::Throttle)
            .on(Protocol::Ec2Query)
            .every(3)
            .times(3),
        Plan::new(Fault::Throttle)
            .on(Protocol::RestJson)
            .every(3)
            .times(3),
        Plan::new(Fault::ServerError).every(3).times(3),
        Plan::new(Fault::Reset).every(3).times(3),
        Plan::new(Fault::Delay(Duration::from_millis(300)))
            .every(2)
            .times(4),
    ];
    for cluster in ["insecure", "compliant"] {
        let want = verdicts(&evaluate_cluster(&clean, cluster, &settings).await.unwrap());
        for plan in &kinds {
            proxy.set(vec![plan.clone()]);
            let before = proxy.injected.load(std::sync::atomic::Ordering::SeqCst);
            let got = evaluate_cluster(&faulty, cluster, &settings)
                .await
                .unwrap_or_else(|e| panic!("{cluster} under {:?}: {e}", plan.fault));
            assert!(
                proxy.injected.load(std::sync::atomic::Ordering::SeqCst) > before,
                "{:?} was not injected",
                plan.fault
            );
            assert_eq!(
                verdicts(&got),
                want,
                "{cluster}: findings changed under {:?}",
                plan.fault
            );
        }
        proxy.clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_faults_fail_only_the_affected_records() {
    let region = "ap-northeast-3";
    let s = Seeded::new(region).await;
    for name in ["good", "bad"] {
        s.private_cluster(name, &[]).await;
    }
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    proxy.set(vec![Plan::new(Fault::ServerError).matching("/clusters/bad")]);
    let (faulty, conf) = via(&proxy, region).await;
    let ctx = common::context::context_over(&conf, faulty.clone());
    let record = |id: &str, cluster: &str| {
        let body = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.eks", "region": region,
            "detail": {"eventSource": "eks.amazonaws.com", "eventName": "UpdateClusterConfig", "requestParameters": {"name": cluster}}});
        json!({"messageId": id, "body": body.to_string()})
    };
    let batch = json!({"Records": [record("g1", "good"), record("b1", "bad"), record("g2", "good"), record("b2", "bad")]});
    let run = handle(&ctx, &batch).await.unwrap();
    assert_eq!(run.evaluated, vec!["good"]);
    let failed: Vec<&str> = run
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["b1", "b2"]);
    assert!(
        run.failures[0].error.contains("ServerException") || run.failures[0].error.contains("500"),
        "{:?}",
        run.failures
    );

    // The CLI: exit 2 and one line naming the cluster and the error.
    let o = common::run_cli_env(
        region,
        &["scan", "--cluster", "bad"],
        &[("AWS_ENDPOINT_URL", &proxy.endpoint)],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = common::one_line(&o);
    assert!(
        err.contains("bad") && err.contains("DescribeCluster"),
        "{err}"
    );
}

#[tokio::test]
async fn persistent_throttling_of_one_read_is_never_judged() {
    let region = "ap-southeast-2";
    let (clients, _) = common::clients(region).await;
    seed::open_ssh_cluster(&clients.eks, &clients.ec2, region, "t", Default::default())
        .await
        .unwrap();
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    proxy.set(vec![
        Plan::new(Fault::Throttle).matching("Action=DescribeSecurityGroups")
    ]);
    let (faulty, _) = via(&proxy, region).await;
    match evaluate_cluster(&faulty, "t", &Settings::default()).await {
        Err(CollectError::Aws { op, code, .. }) => {
            assert_eq!(op, "DescribeSecurityGroups");
            assert_eq!(code, "RequestLimitExceeded");
        }
        other => panic!("a throttled read must fail the evaluation, got {other:?}"),
    }
    // The SDK retried before giving up: more than one throttled attempt.
    assert!(proxy.injected.load(std::sync::atomic::Ordering::SeqCst) > 1);
}

/// The latency benchmark's replaying proxy: once recording is on, a request seen before is answered
/// from the recording (the same answer) without reaching the emulator; a new one is sent on.
#[tokio::test]
async fn a_replaying_proxy_answers_what_it_has_seen_without_the_emulator() {
    let region = "il-central-1";
    let s = Seeded::new(region).await;
    s.cluster(ClusterSpec::private("replayed", &s.net)).await;
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    proxy.record_and_replay();
    let (clients, _) = via(&proxy, region).await;
    let describe = || async {
        let out = clients.eks.describe_cluster().name("replayed").send().await;
        out.unwrap().cluster.unwrap()
    };
    let (first, again) = (describe().await, describe().await);
    assert_eq!(first, again);
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.replayed.load(Ordering::SeqCst), 1);
    clients.ec2.describe_vpcs().send().await.unwrap();
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        2,
        "a new request is sent on"
    );
}
