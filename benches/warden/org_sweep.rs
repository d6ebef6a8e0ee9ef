//! The simulated organization sweep: member accounts × regions holding N clusters in all (1,000 by
//! default), each account reached only through `sts:AssumeRole` as the Lambda reaches it. The scheduled
//! sweep arrives on the queue as EventBridge puts it there; every message the function sends goes back to
//! that queue; the harness hands the queue's messages to the Lambda binary in SQS batches of the template's
//! `BatchSize`, one fresh process per invocation, so each invocation's peak RSS is its own.
//!
//! The function's calls go through a forwarding proxy that counts them, and its SendMessageBatch calls
//! separately; the harness's own calls (seeding, receiving, deleting) go to the emulator directly.

use crate::common::proxy::{Fault, FaultProxy, Plan};
use crate::common::seed::{self, ClusterSpec};
use crate::runtime_api::RuntimeApi;
use crate::{common, fleet, lambda_env, mb, ms, run_lambda, scratch, Error, Report, ACCOUNT};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The role the function assumes in every member account (the template's `MemberRoleName` default).
const MEMBER_ROLE: &str = "eks-warden-member";
/// The `BatchSize` of the function's SQS event source mapping in template.yaml.
const BATCH_SIZE: usize = 100;
const MEMBER_ACCOUNTS: [&str; 4] = [
    "210987654321",
    "321098765432",
    "432109876543",
    "543210987654",
];
const MEMBER_REGIONS: [&str; 2] = ["eu-west-3", "ap-south-1"];
/// The function's own region (no other benchmark seeds it).
const HOME: &str = "ca-central-1";

/// One account and region: one VPC and one security group shared by all its clusters, so seeding
/// stays cheap; each cluster is real (private subnets in two AZs; one in three with a world-open public
/// endpoint, so findings are published).
async fn seed_scope(
    account: &str,
    region: &str,
    first: usize,
    count: usize,
) -> Result<Vec<String>, Error> {
    // The emulator keeps accounts apart by the credentials it issued through AssumeRole.
    let clients = common::context::member_clients(&common::sdk_config(region).await, account).await;
    let net = seed::network(&clients.ec2, region).await?;
    let sg = seed::security_group(&clients.ec2, &net.vpc, "clusters", &[]).await?;
    let (clients, net, sg) = (&clients, &net, &sg);
    stream::iter(first..first + count)
        .map(|i| async move {
            let name = format!("org-{i:04}");
            let open = i % 3 == 0;
            let cidrs: &[&str] = if open { &["0.0.0.0/0"] } else { &[] };
            seed::cluster(
                &clients.eks,
                ClusterSpec {
                    name: &name,
                    subnets: net.private.to_vec(),
                    security_groups: vec![sg.clone()],
                    public: open,
                    private: true,
                    public_cidrs: cidrs,
                    tags: &[("team", "org")],
                },
            )
            .await?;
            Ok::<_, Error>(name)
        })
        .buffer_unordered(8)
        .try_collect()
        .await
}

/// An SQS record as the event source mapping hands it to the function.
fn record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    json!({
        "messageId": m.message_id().unwrap_or_default(),
        "receiptHandle": m.receipt_handle().unwrap_or_default(),
        "body": m.body().unwrap_or_default(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": m.md5_of_body().unwrap_or_default(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": HOME,
    })
}

/// Receives and deletes everything on the queue, as the event source mapping does for records the
/// function answers without failing them.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, arn: &str) -> Result<Vec<Value>, Error> {
    let mut records = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await?;
        if got.messages().is_empty() {
            return Ok(records);
        }
        let mut entries = Vec::new();
        for (i, m) in got.messages().iter().enumerate() {
            records.push(record(m, arn));
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
}

/// What one invocation did: from the Lambda's response and its embedded-metric log line.
struct Invocation {
    stage: &'static str,
    records: usize,
    wall: Duration,
    peak_rss_kb: u64,
    evaluations: u64,
    failed: usize,
    unreachable: u64,
}

/// The invocation's EMF document (one JSON line with `_aws`), if the log holds one.
fn emf(log: &std::path::Path) -> Value {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .filter(|l| l.contains("\"_aws\""))
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or(Value::Null)
}

async fn invoke(
    api: &mut RuntimeApi,
    env: &[(String, String)],
    stage: &'static str,
    records: Vec<Value>,
    n: usize,
) -> Result<Invocation, Error> {
    let log = scratch().join(format!("org-sweep-{stage}-{n}.log"));
    let count = records.len();
    let payload = json!({ "Records": records }).to_string();
    let run = run_lambda(
        api,
        env,
        vec![payload],
        HOME,
        &log,
        Duration::from_secs(900),
    )
    .await?;
    let (wall, response) = run.invocations.first().ok_or("no invocation")?;
    let metrics = emf(&log);
    let metric = |k: &str| metrics.get(k).and_then(Value::as_f64).unwrap_or(0.0) as u64;
    Ok(Invocation {
        stage,
        records: count,
        wall: *wall,
        peak_rss_kb: run.peak_rss_kb,
        evaluations: metric("Evaluations"),
        failed: response
            .get("batchItemFailures")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        unreachable: metric("ScopesUnreachable"),
    })
}

/// Seeds the organization, runs the sweep to its last cluster message, and adds the rows and the
/// detail section. `sample`: how many of the per-cluster batches are evaluated (all by default); the
/// rest are counted but not invoked, and the rows say so.
pub async fn org_sweep(
    report: &mut Report,
    api: &mut RuntimeApi,
    clusters: usize,
    sample: usize,
) -> Result<(), Error> {
    let scopes: Vec<(&str, &str)> = MEMBER_ACCOUNTS
        .iter()
        .flat_map(|a| MEMBER_REGIONS.iter().map(move |r| (*a, *r)))
        .collect();
    println!(
        "organization sweep: seeding {clusters} clusters over {} accounts × {} regions",
        MEMBER_ACCOUNTS.len(),
        MEMBER_REGIONS.len()
    );
    let t = Instant::now();
    let mut first = 0;
    for (i, (account, region)) in scopes.iter().enumerate() {
        let count = clusters / scopes.len() + usize::from(i < clusters % scopes.len());
        seed_scope(account, region, first, count).await?;
        first += count;
    }
    let seeding = t.elapsed();

    let conf = common::sdk_config(HOME).await;
    let topic = fleet::topic(&conf, "eks-warden-org-findings").await?;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = sqs
        .create_queue()
        .queue_name("eks-warden-org")
        .send()
        .await?
        .queue_url()
        .ok_or("no queue url")?
        .to_string();
    let arn = format!("arn:aws:sqs:{HOME}:{ACCOUNT}:eks-warden-org");
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    // A zero delay on the function's SendMessageBatch calls: the proxy's `injected` counts them.
    proxy.set(vec![
        Plan::new(Fault::Delay(Duration::ZERO)).matching("AmazonSQS.SendMessageBatch")
    ]);
    let mut env = lambda_env(api, HOME, &proxy.endpoint, &topic);
    env.extend(
        [
            ("EKS_WARDEN_RECHECK_QUEUE_URL", url.clone()),
            ("EKS_WARDEN_MEMBER_ROLE", MEMBER_ROLE.to_string()),
            ("EKS_WARDEN_MEMBER_ACCOUNTS", MEMBER_ACCOUNTS.join(",")),
            ("EKS_WARDEN_REGIONS", MEMBER_REGIONS.join(",")),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );

    // EventBridge puts the scheduled event on the queue; from there on the function feeds itself.
    let tick = json!({"version": "0", "id": "org-sweep-tick", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT, "time": "2025-06-01T10:00:00Z", "region": HOME,
        "resources": [format!("arn:aws:events:{HOME}:{ACCOUNT}:rule/eks-warden-sweep")], "detail": {}});
    sqs.send_message()
        .queue_url(&url)
        .message_body(tick.to_string())
        .send()
        .await?;
    let t = Instant::now();
    let mut invocations: Vec<Invocation> = Vec::new();
    let mut sent = [0usize; 2];
    let mut skipped = (0usize, 0usize);
    for stage in ["sweep", "scopes", "clusters"] {
        let records = drain(&sqs, &url, &arn).await?;
        // Counted on the queue: what the stage before this one sent.
        match stage {
            "scopes" => sent[0] = records.len(),
            "clusters" => sent[1] = records.len(),
            _ => {}
        }
        let batches: Vec<Vec<Value>> = records.chunks(BATCH_SIZE).map(<[Value]>::to_vec).collect();
        let total = batches.len();
        for (n, batch) in batches.into_iter().enumerate() {
            if stage == "clusters" && n >= sample {
                skipped.0 += 1;
                skipped.1 += batch.len();
                continue;
            }
            println!(
                "organization sweep: {stage} invocation {}/{total}, {} records",
                n + 1,
                batch.len()
            );
            invocations.push(invoke(api, &env, stage, batch, n).await?);
        }
    }
    let wall = t.elapsed();
    let left_over = drain(&sqs, &url, &arn).await?.len();
    let batch_calls = proxy.injected.load(Ordering::SeqCst);
    let calls = proxy.forwarded.load(Ordering::SeqCst);
    figures(
        report,
        Figures {
            clusters,
            scopes: scopes.len(),
            seeding,
            wall,
            sent,
            batch_calls,
            calls,
            skipped,
            left_over,
            invocations: &invocations,
        },
    );
    Ok(())
}

struct Figures<'a> {
    clusters: usize,
    scopes: usize,
    seeding: Duration,
    wall: Duration,
    /// Scope messages, cluster messages.
    sent: [usize; 2],
    batch_calls: u32,
    calls: u32,
    /// Per-cluster batches (and their records) counted but not invoked.
    skipped: (usize, usize),
    left_over: usize,
    invocations: &'a [Invocation],
}

fn figures(report: &mut Report, f: Figures<'_>) {
    let n = f.clusters;
    let invs = f.invocations;
    let mut rss: Vec<u64> = invs.iter().map(|i| i.peak_rss_kb).collect();
    rss.sort();
    let median = rss.get(rss.len() / 2).copied().unwrap_or(0);
    let max = rss.last().copied().unwrap_or(0);
    let evaluated: u64 = invs.iter().map(|i| i.evaluations).sum();
    let failed: usize = invs.iter().map(|i| i.failed).sum();
    let unreachable: u64 = invs.iter().map(|i| i.unreachable).sum();
    let run = invs.len();
    let all = run + f.skipped.0;
    let sampled = if f.skipped.0 == 0 {
        String::new()
    } else {
        format!(
            " ({} of them run: {} per-cluster batches of {} records counted, not evaluated)",
            run, f.skipped.0, f.skipped.1
        )
    };
    let bench = "org sweep";
    report.row(
        bench,
        &format!("{n} clusters: messages sent (per scope + per cluster)"),
        format!("{} + {}", f.sent[0], f.sent[1]),
        &format!("{} + {n}", f.scopes),
        Some(f.sent == [f.scopes, n]),
    );
    report.row(
        bench,
        &format!("{n} clusters: SendMessageBatch calls"),
        f.batch_calls.to_string(),
        "",
        None,
    );
    report.row(
        bench,
        &format!("{n} clusters: invocations (sweep + scopes + clusters){sampled}"),
        all.to_string(),
        "",
        None,
    );
    report.row(
        bench,
        &format!("{n} clusters: peak RSS per invocation (max / median)"),
        format!("{} / {}", mb(max), mb(median)),
        "≤ 40 MB",
        Some(max <= 40 * 1024),
    );
    report.row(
        bench,
        &format!("{n} clusters: wall time, tick → last cluster evaluated{sampled}"),
        ms(f.wall),
        "",
        None,
    );
    let mut md = format!(
        "### Organization sweep\n\n`benches/warden/org_sweep.rs`: {n} clusters over {} member accounts × {} regions \
         ({} scopes; one VPC and one security group shared by the clusters of a scope; seeded through AssumeRole in \
         {}). The function (`bootstrap`, release) runs in its own account with `EKS_WARDEN_MEMBER_ACCOUNTS`, \
         `EKS_WARDEN_REGIONS`, `EKS_WARDEN_MEMBER_ROLE` and `EKS_WARDEN_RECHECK_QUEUE_URL` set as the template sets \
         them, and reaches each member account through `sts:AssumeRole`. The scheduled event is put on the queue; \
         the harness hands the queue's messages to the function in SQS batches of {BATCH_SIZE} (the template's \
         `BatchSize`), one fresh process per invocation (peak RSS = that process's VmHWM), until the queue is empty.\n\n\
         * messages sent: {} per scope, {} per cluster, in {} SendMessageBatch calls; AWS calls by the function: {}; \
         left on the queue at the end: {}\n\
         * invocations: {all}{sampled}; clusters evaluated: {evaluated}; records failed: {failed}; scopes unreachable: {unreachable}\n\
         * wall time from the tick to the last invocation's answer: {} (seeding took {})\n\n\
         | stage | invocations | records | wall time (sum) | peak RSS max | peak RSS median | evaluations |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        MEMBER_ACCOUNTS.len(),
        MEMBER_REGIONS.len(),
        f.scopes,
        ms(f.seeding),
        f.sent[0],
        f.sent[1],
        f.batch_calls,
        f.calls,
        f.left_over,
        ms(f.wall),
        ms(f.seeding),
    );
    for stage in ["sweep", "scopes", "clusters"] {
        let of: Vec<&Invocation> = invs.iter().filter(|i| i.stage == stage).collect();
        let mut rss: Vec<u64> = of.iter().map(|i| i.peak_rss_kb).collect();
        rss.sort();
        let _ = writeln!(
            md,
            "| {stage} | {} | {} | {} | {} | {} | {} |",
            of.len(),
            of.iter().map(|i| i.records).sum::<usize>(),
            ms(of.iter().map(|i| i.wall).sum()),
            mb(rss.last().copied().unwrap_or(0)),
            mb(rss.get(rss.len() / 2).copied().unwrap_or(0)),
            of.iter().map(|i| i.evaluations).sum::<u64>(),
        );
    }
    report.details.push_str(&md);
    report.details.push('\n');
}
