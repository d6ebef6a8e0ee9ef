//! `make bench`: every figure of BENCHMARKS.md in one run, from release builds, against the emulator.
//!
//! * cold start — the Lambda binary (`bootstrap`) spawned against a minimal Runtime API on loopback:
//!   spawn → first `GET …/invocation/next` (init), and the first and second invocations;
//! * latency against the dependency limit — 50 ms added to every AWS call by a loopback proxy: latency,
//!   calls and dependent rounds of one cluster with three nodegroups;
//! * storm — one SQS batch of 1,000 CloudTrail records over three clusters through the Lambda's `handle`;
//! * sweep — the scheduled sweep of 50 and 200 clusters by the Lambda binary: wall time, calls, peak RSS;
//! * organization sweep — 1,000 clusters over member accounts × regions, fanned out through the queue and
//!   consumed in SQS batches by the Lambda binary (`org_sweep.rs`);
//! * micro — parsing and routing a record, evaluating a snapshot (no I/O);
//! * state — DynamoDB calls per evaluation with the finding-state table, and a race on one change.
//!
//! `make bench-peers` (`-- --peers`) adds Cloud Custodian and Prowler against the same kind of account.
//! Nothing here is asserted: the figures are printed and written to BENCHMARKS.md.

#[path = "../../tests/common/mod.rs"]
mod common;
mod fleet;
mod org_sweep;
mod peers;
mod runtime_api;
mod state;
mod storm;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use common::proxy::{Fault, FaultProxy, Plan};
use eks_warden::collect::{collect_with, Clients};
use eks_warden::handler::{handle, Context};
use eks_warden::settings::Settings;
use runtime_api::{ApiEvent, RuntimeApi};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
/// The function's memory setting in template.yaml.
const LAMBDA_MEMORY_MB: &str = "256";
const ADDED_LATENCY: Duration = Duration::from_millis(50);

pub type Error = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------------------
// Figures

/// One line of the summary table.
pub struct Row {
    pub bench: String,
    pub figure: String,
    pub value: String,
    pub goal: String,
    pub met: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Markdown sections with the detail behind the rows.
    pub details: String,
}

impl Report {
    pub fn row(
        &mut self,
        bench: &str,
        figure: &str,
        value: impl Into<String>,
        goal: &str,
        met: Option<bool>,
    ) {
        let r = Row {
            bench: bench.into(),
            figure: figure.into(),
            value: value.into(),
            goal: goal.into(),
            met,
        };
        println!(
            "  {:<12} {:<58} {:>22}  {}",
            r.bench,
            r.figure,
            r.value,
            verdict(&r)
        );
        self.rows.push(r);
    }

    pub fn table(&self) -> String {
        let mut t =
            String::from("| benchmark | figure | value | goal | met |\n|---|---|---:|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                r.bench,
                r.figure,
                r.value,
                r.goal,
                verdict(r)
            );
        }
        t
    }
}

fn verdict(r: &Row) -> &'static str {
    match r.met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "",
    }
}

pub fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1000.0;
    if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 10_000.0 {
        format!("{m:.0} ms")
    } else {
        format!("{:.1} s", m / 1000.0)
    }
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// Sorted-sample statistics.
pub struct Spread {
    pub n: usize,
    pub min: Duration,
    pub p25: Duration,
    pub median: Duration,
    pub p75: Duration,
    pub max: Duration,
}

impl Spread {
    pub fn of(samples: &[Duration]) -> Spread {
        let mut s = samples.to_vec();
        s.sort();
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        Spread {
            n: s.len(),
            min: s[0],
            p25: at(0.25),
            median: at(0.5),
            p75: at(0.75),
            max: s[s.len() - 1],
        }
    }

    pub fn line(&self) -> String {
        format!(
            "median {} (IQR {} – {}, min {}, max {}, n = {})",
            ms(self.median),
            ms(self.p25),
            ms(self.p75),
            ms(self.min),
            ms(self.max),
            self.n
        )
    }
}

// ---------------------------------------------------------------------------------------------------
// Measuring AWS calls

/// Records when each request left the SDK (after signing, just before transmission) and its operation.
#[derive(Debug, Clone, Default)]
struct Sent(Arc<Mutex<Vec<(Instant, String)>>>);

impl Sent {
    fn take(&self) -> Vec<(Instant, String)> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl Intercept for Sent {
    fn name(&self) -> &'static str {
        "Sent"
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_default();
        if let Ok(mut v) = self.0.lock() {
            v.push((Instant::now(), op));
        }
        Ok(())
    }
}

/// Gives DescribeCluster's answer the `resourcesVpcConfig.vpcId` that AWS returns and the emulator
/// leaves out, so the collector can be timed on AWS's shape too (it then reads the VPC's route tables
/// alongside the subnets instead of after them).
#[derive(Debug, Clone)]
struct AwsShape {
    vpc: String,
}

impl Intercept for AwsShape {
    fn name(&self) -> &'static str {
        "AwsShape"
    }
    fn modify_before_attempt_completion(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Ok(out)) = ctx.output_or_error_mut() {
            if let Some(o) = out
                .downcast_mut::<aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput>()
            {
                if let Some(v) = o
                    .cluster
                    .as_mut()
                    .and_then(|c| c.resources_vpc_config.as_mut())
                {
                    v.vpc_id.get_or_insert_with(|| self.vpc.clone());
                }
            }
        }
        Ok(())
    }
}

fn recorded_clients(conf: &aws_config::SdkConfig, sent: &Sent) -> Clients {
    Clients {
        eks: aws_sdk_eks::Client::from_conf(
            aws_sdk_eks::config::Builder::from(conf)
                .interceptor(sent.clone())
                .build(),
        ),
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(conf)
                .interceptor(sent.clone())
                .build(),
        ),
    }
}

/// Groups requests into waves: a request sent more than `gap` after the first of the current wave
/// starts a new one. With a fixed added latency per call, a wave is one dependent round as observed
/// on the wire.
fn waves(sent: &[(Instant, String)], gap: Duration) -> Vec<Vec<String>> {
    let mut s = sent.to_vec();
    s.sort_by_key(|(t, _)| *t);
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut start: Option<Instant> = None;
    for (t, op) in s {
        match start {
            Some(st) if t.duration_since(st) <= gap => out.last_mut().expect("a wave").push(op),
            _ => {
                start = Some(t);
                out.push(vec![op]);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Child processes

/// The high-water mark of a live process's resident set (KB), from /proc. Not `ru_maxrss`: Rust spawns
/// with posix_spawn (vfork), and at exec the kernel folds the pre-exec memory's high-water mark — the
/// spawning process's own — into the child's `ru_maxrss`, so a child would look as big as the harness.
fn vm_hwm(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Reaps a child (its exit status).
fn reap(pid: u32) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a plain int the kernel fills.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    if r < 0 {
        -1
    } else if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    }
}

/// Runs a command to its end: wall time, peak RSS (KB: the last VmHWM seen, polled every 2 ms), exit code.
pub fn run_measured(cmd: &mut Command) -> Result<(Duration, u64, i32), Error> {
    let t = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(kb) = vm_hwm(pid) {
            peak = peak.max(kb);
        }
        let mut status = 0;
        // SAFETY: as in `reap`, without blocking.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r == pid as libc::pid_t {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
            return Ok((t.elapsed(), peak, code));
        }
        if r < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join("eks-warden-bench");
    let _ = std::fs::create_dir_all(&d);
    d
}

fn bootstrap_path() -> &'static str {
    env!("CARGO_BIN_EXE_bootstrap")
}

/// The environment Lambda gives a `provided.al2023` function, pointed at the emulator.
fn lambda_env(
    api: &RuntimeApi,
    region: &str,
    endpoint: &str,
    topic: &str,
) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.addr.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "eks-warden"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", LAMBDA_MEMORY_MB),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/06/01/[$LATEST]0123456789abcdef",
        ),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/eks-warden"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("EKS_WARDEN_TOPIC_ARN", topic),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "C.UTF-8"),
        ("TZ", ":UTC"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

struct LambdaRun {
    /// Spawn → first `GET …/invocation/next`.
    init: Duration,
    /// Per invocation: payload handed out → response posted, and the response.
    invocations: Vec<(Duration, Value)>,
    peak_rss_kb: u64,
}

/// Spawns the Lambda binary, feeds it `payloads` one per invocation, then kills it when it asks for more.
async fn run_lambda(
    api: &mut RuntimeApi,
    env: &[(String, String)],
    payloads: Vec<String>,
    region: &str,
    log: &Path,
    timeout: Duration,
) -> Result<LambdaRun, Error> {
    let n = payloads.len();
    api.arm(payloads, region);
    let logf = std::fs::File::create(log)?;
    let t0 = Instant::now();
    let mut child = Command::new(bootstrap_path())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .spawn()?;
    let pid = child.id();
    let outcome: Result<(Duration, Vec<(Duration, Value)>), Error> = async {
        let mut init = None;
        let mut asked: Option<Instant> = None;
        let mut invocations = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = match api.next_event(left.min(Duration::from_secs(1))).await {
                Ok(e) => e,
                Err(_) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "the function exited ({status}) — see {}",
                            log.display()
                        )
                        .into());
                    }
                    continue;
                }
                Err(e) => return Err(format!("{e} — see {}", log.display()).into()),
            };
            match event {
                ApiEvent::Next { at } => {
                    init.get_or_insert(at.duration_since(t0));
                    if invocations.len() == n {
                        break;
                    }
                    asked = Some(at);
                }
                ApiEvent::Response { at, body } => {
                    let since = asked.map(|a| at.duration_since(a)).unwrap_or_default();
                    invocations.push((since, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                }
                ApiEvent::Error { path, body } => {
                    return Err(format!(
                        "{path}: {} — see {}",
                        String::from_utf8_lossy(&body),
                        log.display()
                    )
                    .into())
                }
            }
        }
        Ok((init.unwrap_or_default(), invocations))
    }
    .await;
    let peak = vm_hwm(pid).unwrap_or(0);
    let _ = child.kill();
    reap(pid);
    let (init, invocations) = outcome?;
    Ok(LambdaRun {
        init,
        invocations,
        peak_rss_kb: peak,
    })
}

// ---------------------------------------------------------------------------------------------------
// The benchmarks

async fn cold_start(report: &mut Report, api: &mut RuntimeApi, runs: usize) -> Result<(), Error> {
    println!("cold start: {runs} spawns of {}", bootstrap_path());
    let region = "eu-west-1";
    let (clients, _) = common::clients(region).await;
    fleet::three_nodegroups(&clients, region, "cold").await?;
    let conf = common::sdk_config(region).await;
    let topic = fleet::topic(&conf, "eks-warden-findings").await?;
    let env = lambda_env(api, region, &common::emulator().endpoint, &topic);
    let payload = json!({"clusters": ["cold"]}).to_string();
    let (mut inits, mut firsts, mut seconds, mut rss) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let log = scratch().join(format!("cold-{i}.log"));
        let run = run_lambda(
            api,
            &env,
            vec![payload.clone(), payload.clone()],
            region,
            &log,
            Duration::from_secs(60),
        )
        .await?;
        if i == 0 {
            let evaluated = run.invocations[0]
                .1
                .get("evaluated")
                .cloned()
                .unwrap_or(Value::Null);
            println!("  first response: evaluated {evaluated}");
        }
        inits.push(run.init);
        firsts.push(run.invocations[0].0);
        seconds.push(run.invocations[1].0);
        rss.push(run.peak_rss_kb);
    }
    let init = Spread::of(&inits);
    let first = Spread::of(&firsts);
    let second = Spread::of(&seconds);
    rss.sort();
    let size = std::fs::metadata(bootstrap_path())
        .map(|m| m.len())
        .unwrap_or(0);
    report.row(
        "cold start",
        "init: spawn → first GET /invocation/next (median)",
        ms(init.median),
        "≤ 30 ms",
        Some(init.median <= Duration::from_millis(30)),
    );
    report.row(
        "cold start",
        "init spread (IQR)",
        format!("{} – {}", ms(init.p25), ms(init.p75)),
        "",
        None,
    );
    report.row(
        "cold start",
        "first invocation, 1 cluster, 3 nodegroups (median)",
        ms(first.median),
        "",
        None,
    );
    report.row(
        "cold start",
        "second (warm) invocation (median)",
        ms(second.median),
        "",
        None,
    );
    report.row(
        "cold start",
        "peak RSS after two invocations (median)",
        mb(rss[rss.len() / 2]),
        "",
        None,
    );
    let _ = write!(
        report.details,
        "### Cold start\n\n`bootstrap` (release, {:.1} MB on disk) spawned {runs} times with the environment Lambda gives a \
         `provided.al2023` function ({LAMBDA_MEMORY_MB} MB), against the harness's Runtime API on loopback and the emulator \
         (no added latency). Each process gets the direct invoke `{payload}` twice, then is killed while it waits for a third.\n\n\
         | | distribution |\n|---|---|\n| init (spawn → first `GET /invocation/next`) | {} |\n\
         | first invocation (event handed out → response posted) | {} |\n| second invocation | {} |\n\
         | peak RSS | median {}, max {} |\n\n",
        size as f64 / 1e6,
        init.line(),
        first.line(),
        second.line(),
        mb(rss[rss.len() / 2]),
        mb(*rss.last().unwrap_or(&0)),
    );
    Ok(())
}

/// Returns one snapshot of the measured cluster, for the micro-benchmark of the rules.
async fn latency(
    report: &mut Report,
    runs: usize,
) -> Result<eks_warden::model::ClusterSnapshot, Error> {
    println!(
        "latency: one cluster, three nodegroups, {} ms added to every call",
        ADDED_LATENCY.as_millis()
    );
    let region = "eu-central-1";
    let (seed_clients, _) = common::clients(region).await;
    let seeded = fleet::three_nodegroups(&seed_clients, region, "latency").await?;
    let settings = Settings::default();
    let proxy = FaultProxy::start(&common::emulator().endpoint).await;
    proxy.set(vec![Plan::new(Fault::Delay(ADDED_LATENCY))]);
    let slow_conf = common::sdk_config(region)
        .await
        .to_builder()
        .endpoint_url(&proxy.endpoint)
        .build();
    let sent = Sent::default();
    let slow = recorded_clients(&slow_conf, &sent);
    let direct_sent = Sent::default();
    let direct = recorded_clients(&common::sdk_config(region).await, &direct_sent);
    let shaped_sent = Sent::default();
    let mut shaped = recorded_clients(&slow_conf, &shaped_sent);
    shaped.eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&slow_conf)
            .interceptor(shaped_sent.clone())
            .interceptor(AwsShape {
                vpc: seeded.network.vpc.clone(),
            })
            .build(),
    );

    // One warm-up each (connection pools, the emulator's first answers), not counted.
    collect_with(&slow, &seeded.cluster, &settings).await?;
    collect_with(&direct, &seeded.cluster, &settings).await?;
    collect_with(&shaped, &seeded.cluster, &settings).await?;
    sent.take();
    shaped_sent.take();
    let (mut slow_times, mut direct_times, mut shaped_times) = (vec![], vec![], vec![]);
    let mut last = None;
    let mut shaped_last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let (snapshot, stats) = collect_with(&slow, &seeded.cluster, &settings).await?;
        let results = eks_warden::rules::evaluate(&snapshot, &settings);
        slow_times.push(t.elapsed());
        let observed = waves(&sent.take(), ADDED_LATENCY / 2);
        last = Some((snapshot, stats, observed, results.len()));
        let t = Instant::now();
        let (snapshot, _) = collect_with(&direct, &seeded.cluster, &settings).await?;
        eks_warden::rules::evaluate(&snapshot, &settings);
        direct_times.push(t.elapsed());
        let t = Instant::now();
        let (snapshot, stats) = collect_with(&shaped, &seeded.cluster, &settings).await?;
        eks_warden::rules::evaluate(&snapshot, &settings);
        shaped_times.push(t.elapsed());
        shaped_last = Some((stats, waves(&shaped_sent.take(), ADDED_LATENCY / 2)));
    }
    let (shaped_stats, shaped_waves) = shaped_last.ok_or("no run")?;
    let shaped_s = Spread::of(&shaped_times);
    let (snapshot, stats, observed, results) = last.ok_or("no run")?;
    let slow_s = Spread::of(&slow_times);
    let direct_s = Spread::of(&direct_times);
    let floor = ADDED_LATENCY * stats.rounds;
    let ratio = slow_s.median.as_secs_f64() / floor.as_secs_f64();
    // The emulator's own service time is in every round too; without it, what the collector adds.
    let net = slow_s.median.saturating_sub(direct_s.median).as_secs_f64() / floor.as_secs_f64();
    let shaped_floor = ADDED_LATENCY * shaped_stats.rounds;
    let shaped_ratio = shaped_s.median.as_secs_f64() / shaped_floor.as_secs_f64();
    report.row(
        "latency",
        "evaluate 1 cluster (3 nodegroups), +50 ms per call (median)",
        ms(slow_s.median),
        "",
        None,
    );
    report.row("latency", "AWS calls", stats.calls.to_string(), "", None);
    report.row(
        "latency",
        "dependent rounds (collector) / waves seen on the wire",
        format!("{} / {}", stats.rounds, observed.len()),
        "≤ 3",
        Some(stats.rounds <= 3),
    );
    report.row(
        "latency",
        "latency / (rounds × 50 ms)",
        format!("{ratio:.2}"),
        "≤ 1.3",
        Some(ratio <= 1.3),
    );
    report.row(
        "latency",
        "same evaluation, no added latency (median)",
        ms(direct_s.median),
        "",
        None,
    );
    report.row(
        "latency",
        "ratio net of the emulator's own time: (latency − no-latency) / floor",
        format!("{net:.2}"),
        "",
        None,
    );
    report.row(
        "latency",
        "AWS's DescribeCluster shape (with vpcId): rounds / waves",
        format!("{} / {}", shaped_stats.rounds, shaped_waves.len()),
        "≤ 3",
        Some(shaped_stats.rounds <= 3),
    );
    let shaped_net = shaped_s
        .median
        .saturating_sub(direct_s.median)
        .as_secs_f64()
        / shaped_floor.as_secs_f64();
    report.row(
        "latency",
        "AWS's DescribeCluster shape: latency, ratio to its floor",
        format!("{}, {shaped_ratio:.2}", ms(shaped_s.median)),
        "≤ 1.3",
        Some(shaped_ratio <= 1.3),
    );
    report.row(
        "latency",
        "AWS's DescribeCluster shape: ratio net of the emulator's own time",
        format!("{shaped_net:.2}"),
        "",
        None,
    );
    let mut waves_md = String::new();
    for (i, w) in observed.iter().enumerate() {
        let mut ops: Vec<String> = Vec::new();
        let mut counted: Vec<(String, usize)> = Vec::new();
        for op in w {
            match counted.iter_mut().find(|(o, _)| o == op) {
                Some((_, n)) => *n += 1,
                None => counted.push((op.clone(), 1)),
            }
        }
        for (op, n) in counted {
            ops.push(if n > 1 { format!("{op} ×{n}") } else { op });
        }
        let _ = writeln!(waves_md, "| {} | {} |", i + 1, ops.join(", "));
    }
    let _ = write!(
        report.details,
        "### Latency against the dependency limit\n\nA loopback proxy between the SDK and the emulator holds every request \
         {} ms before forwarding it (`tests/common/proxy.rs`, `Fault::Delay`). The cluster: private subnets in two AZs, \
         two nodegroups with SSH from a bastion, one from a launch template, one node each; {results} rule results. \
         {runs} runs after one warm-up.\n\n\
         * with +50 ms per call: {}\n* without added latency: {}\n* floor = rounds × 50 ms = {}; ratio of the median to the floor: {ratio:.2}; \
         net of the emulator's own time (the no-latency median subtracted): {net:.2}\n\
         * with +50 ms per call and DescribeCluster answering `vpcId` as AWS does (the emulator leaves it out; an \
         interceptor adds it): {}, {} rounds ({} waves), {} calls, ratio {shaped_ratio:.2}\n\n\
         The calls of the last run, grouped into waves as they left the SDK (a request more than 25 ms after the first \
         of its wave starts the next one):\n\n| wave | calls |\n|---|---|\n{waves_md}\n",
        ADDED_LATENCY.as_millis(),
        slow_s.line(),
        direct_s.line(),
        ms(floor),
        shaped_s.line(),
        shaped_stats.rounds,
        shaped_waves.len(),
        shaped_stats.calls,
    );
    Ok(snapshot)
}

async fn storm_bench(report: &mut Report, records: usize, runs: usize) -> Result<Value, Error> {
    println!("storm: one SQS batch of {records} records over 3 clusters");
    let region = "eu-west-2";
    let (clients, _) = common::clients(region).await;
    let mut clusters = Vec::new();
    for name in ["storm-a", "storm-b", "storm-c"] {
        let s = fleet::three_nodegroups(&clients, region, name).await?;
        let template = fleet::tagged_template(&clients, &format!("{name}-lt"), name).await?;
        clusters.push(storm::StormCluster {
            name: name.into(),
            node_sg: s.node_sg.clone(),
            instance: s.instances[0].clone(),
            subnet: s.network.private[0].clone(),
            route_table: s.network.private_table.clone(),
            template,
        });
    }
    let conf = common::sdk_config(region).await;
    let topic = fleet::topic(&conf, "eks-warden-findings").await?;
    let batch = storm::batch(region, records, &clusters);
    let mut times = vec![];
    let mut last = None;
    for _ in 0..runs {
        // A fresh container each run: no cached region index.
        let (counted, counter) = common::clients(region).await;
        let mut ctx = Context::new(&conf, counted, Settings::default());
        ctx.topic_arn = Some(topic.clone());
        let _ = ctx.home_account.set(ACCOUNT.into());
        ctx.sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&conf)
                .interceptor(counter.clone())
                .build(),
        );
        let t = Instant::now();
        let run = handle(&ctx, &batch).await?;
        times.push(t.elapsed());
        last = Some((run, counter.operations()));
    }
    let (run, ops) = last.ok_or("no run")?;
    let spread = Spread::of(&times);
    let mut by_op: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &ops {
        *by_op.entry(o.clone()).or_default() += 1;
    }
    let calls = ops.len();
    let failure_line = match run.failures.first() {
        Some(f) => format!(
            " — the first of {} failure(s): {}: {}",
            run.failures.len(),
            f.what,
            f.error.chars().take(300).collect::<String>()
        ),
        None => String::new(),
    };
    report.row(
        "storm",
        &format!("{records} records → cluster evaluations"),
        run.evaluated.len().to_string(),
        "3 (once per cluster)",
        Some(run.evaluated.len() == 3),
    );
    report.row(
        "storm",
        "AWS calls (EKS + EC2 + SNS Publish)",
        calls.to_string(),
        "",
        None,
    );
    report.row("storm", "wall time (median)", ms(spread.median), "", None);
    report.row(
        "storm",
        "records failed (batchItemFailures)",
        run.batch_item_failures.len().to_string(),
        "0",
        Some(run.batch_item_failures.is_empty()),
    );
    // The same batch when every call takes 50 ms more, as against AWS: routing is what it costs.
    let mut slow_line = String::new();
    if env_usize("BENCH_STORM_LATENCY", 1) > 0 {
        let proxy = FaultProxy::start(&common::emulator().endpoint).await;
        proxy.set(vec![Plan::new(Fault::Delay(ADDED_LATENCY))]);
        let slow_conf = conf.to_builder().endpoint_url(&proxy.endpoint).build();
        let sent = Sent::default();
        let mut ctx = Context::new(
            &slow_conf,
            recorded_clients(&slow_conf, &sent),
            Settings::default(),
        );
        ctx.topic_arn = Some(topic.clone());
        let _ = ctx.home_account.set(ACCOUNT.into());
        ctx.sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&slow_conf)
                .interceptor(sent.clone())
                .build(),
        );
        let t = Instant::now();
        let slow_run = handle(&ctx, &batch).await?;
        let slow = t.elapsed();
        let calls = sent.take();
        let observed = waves(&calls, ADDED_LATENCY / 2);
        report.row(
            "storm",
            "wall time with +50 ms per call (1 run)",
            ms(slow),
            "",
            None,
        );
        slow_line = format!(
            "* with 50 ms added to every call (one run): {}, {} AWS calls in {} waves, {} evaluations, {} failed records\n",
            ms(slow),
            calls.len(),
            observed.len(),
            slow_run.evaluated.len(),
            slow_run.batch_item_failures.len()
        );
    }
    let ops_md: Vec<String> = by_op.iter().map(|(o, n)| format!("{o} {n}")).collect();
    let _ = write!(
        report.details,
        "### Storm\n\nOne SQS batch of {records} records (`benches/warden/storm.rs`): eight kinds of change a Terraform apply \
         emits — UpdateClusterConfig, TagResource (URL-encoded ARN), UpdateNodegroupConfig, AuthorizeSecurityGroupIngress, \
         ModifyInstanceMetadataOptions, ModifySubnetAttribute, CreateRoute, CreateLaunchTemplateVersion — in turn over three \
         clusters, each in its own VPC, through `handler::handle` as the Lambda runs it, with a fresh context (no cached \
         region index) per run; {runs} runs. The template's own event source mapping uses batches of 100.\n\n\
         * wall time: {}\n* evaluations: {} ({}); published: {}; ignored: {}; failed records: {}{}\n\
         * AWS calls of the last run: {} — {}\n{slow_line}\n",
        spread.line(),
        run.evaluated.len(),
        run.evaluated.join(", "),
        run.published.len(),
        run.ignored.len(),
        run.batch_item_failures.len(),
        failure_line,
        calls,
        ops_md.join(", "),
    );
    Ok(batch)
}

async fn sweep(report: &mut Report, api: &mut RuntimeApi, sizes: &[usize]) -> Result<(), Error> {
    let regions = ["us-west-2", "us-east-2", "ap-southeast-2", "sa-east-1"];
    let mut md = String::from(
        "### Sweep\n\nThe scheduled sweep (an EventBridge `Scheduled Event`) by the Lambda binary in a region seeded with N \
         clusters (`benches/warden/fleet.rs`: 25 clusters to a VPC, each with its own node security group, two nodegroups, \
         one node; a mix of public/private subnets, open/restricted endpoints, open SSH). The process's calls go through a \
         forwarding proxy that counts them; peak RSS is the process's VmHWM (/proc) after the sweep.\n\n\
         | clusters | seeding | wall time | AWS calls | calls/cluster | evaluated | published | peak RSS | concurrency |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, &n) in sizes.iter().enumerate() {
        let region = regions[i % regions.len()];
        println!("sweep: seeding {n} clusters in {region}");
        let (clients, _) = common::clients(region).await;
        let t = Instant::now();
        fleet::fleet(&clients, region, n).await?;
        let seeding = t.elapsed();
        let conf = common::sdk_config(region).await;
        let topic = fleet::topic(&conf, "eks-warden-findings").await?;
        let proxy = FaultProxy::start(&common::emulator().endpoint).await;
        let env = lambda_env(api, region, &proxy.endpoint, &topic);
        let tick = json!({"version": "0", "id": "sweep-tick", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "time": "2025-06-01T10:00:00Z", "region": region,
            "resources": [format!("arn:aws:events:{region}:{ACCOUNT}:rule/eks-warden-sweep")], "detail": {}});
        println!("sweep: {n} clusters");
        let log = scratch().join(format!("sweep-{n}.log"));
        let run = run_lambda(
            api,
            &env,
            vec![tick.to_string()],
            region,
            &log,
            Duration::from_secs(900),
        )
        .await?;
        let calls = proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst);
        let (wall, summary) = &run.invocations[0];
        let evaluated = summary
            .get("evaluated")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let published = summary
            .get("published")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let concurrency = eks_warden::scan::CLUSTER_CONCURRENCY;
        let ok = run.peak_rss_kb <= 40 * 1024;
        report.row(
            "sweep",
            &format!("{n} clusters: wall time"),
            ms(*wall),
            "",
            None,
        );
        report.row(
            "sweep",
            &format!("{n} clusters: AWS calls"),
            calls.to_string(),
            "",
            None,
        );
        report.row(
            "sweep",
            &format!("{n} clusters: peak RSS (concurrency {concurrency})"),
            mb(run.peak_rss_kb),
            "≤ 40 MB",
            Some(ok),
        );
        let _ = writeln!(
            md,
            "| {n} | {} | {} | {calls} | {:.1} | {evaluated} | {published} | {} | {concurrency} clusters |",
            ms(seeding),
            ms(*wall),
            calls as f64 / n as f64,
            mb(run.peak_rss_kb)
        );
    }
    report.details.push_str(&md);
    report.details.push('\n');
    Ok(())
}

fn micro(report: &mut Report, batch: &Value, snapshot: &eks_warden::model::ClusterSnapshot) {
    println!("micro: parse + route, rules");
    let records = batch
        .get("Records")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
        .max(1);
    let text = batch.to_string();
    let route_all = || {
        let v: Value = serde_json::from_str(&text).expect("batch JSON");
        let items = eks_warden::event::parse_payload(&v).expect("batch parses");
        let mut ids = 0;
        for item in &items {
            if let Ok(eks_warden::event::Trigger::CloudTrail(e)) = &item.trigger {
                if let Some(route) = eks_warden::route::lookup(&e.event_source, &e.event_name) {
                    ids += eks_warden::route::resource_ids(route, e).len();
                }
            }
        }
        ids
    };
    let mut parse_times = vec![];
    for _ in 0..15 {
        let t = Instant::now();
        std::hint::black_box(route_all());
        parse_times.push(t.elapsed() / records as u32);
    }
    let settings = Settings::default();
    let mut eval_times = vec![];
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..200 {
            std::hint::black_box(eks_warden::rules::evaluate(
                std::hint::black_box(snapshot),
                &settings,
            ));
        }
        eval_times.push(t.elapsed() / 200);
    }
    let p = Spread::of(&parse_times);
    let e = Spread::of(&eval_times);
    report.row(
        "micro",
        "parse + route one SQS record (JSON text → resource ids)",
        format!("{:.1} µs", p.median.as_secs_f64() * 1e6),
        "",
        None,
    );
    report.row(
        "micro",
        "evaluate every rule on one snapshot",
        format!("{:.1} µs", e.median.as_secs_f64() * 1e6),
        "",
        None,
    );
    let _ = write!(
        report.details,
        "### Micro\n\nNo I/O. Parse + route: the storm's batch of {records} records as JSON text → `serde_json` → `event::parse_payload` \
         → `route::lookup` + `route::resource_ids` per record, per record: {}. Rules: `rules::evaluate` on the latency \
         benchmark's snapshot, 200 evaluations per sample: {}.\n\n",
        per_record(&p),
        per_record(&e),
    );
}

fn per_record(s: &Spread) -> String {
    format!(
        "median {:.1} µs (IQR {:.1} – {:.1} µs, n = {})",
        s.median.as_secs_f64() * 1e6,
        s.p25.as_secs_f64() * 1e6,
        s.p75.as_secs_f64() * 1e6,
        s.n
    )
}

// ---------------------------------------------------------------------------------------------------
// BENCHMARKS.md

pub fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let root = env!("CARGO_MANIFEST_DIR");
    let venv = std::env::var("EKS_WARDEN_VENV").unwrap_or_else(|_| format!("{root}/.venv"));
    let moto = shell(
        &format!("{venv}/bin/python"),
        &[
            "-c",
            "import importlib.metadata as m; print(m.version('moto'))",
        ],
    );
    let python = shell(&format!("{venv}/bin/python"), &["--version"]);
    format!(
        "* machine: {cpu}, {cores} cores, {:.0} GiB memory, Linux {} (load average at start: {})\n\
         * toolchain: {}; release profile (`lto = \"thin\"`, `codegen-units = 4`, stripped)\n\
         * emulator: moto {moto} in server mode ({python}), on loopback\n\
         * date: {}; commit {}\n",
        mem as f64 / 1024.0 / 1024.0,
        kernel.trim(),
        loadavg(),
        shell("rustc", &["--version"]),
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        shell("git", &["-C", root, "describe", "--always", "--dirty"]),
    )
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub const PEERS_BEGIN: &str = "<!-- peers:begin (make bench-peers) -->";
pub const PEERS_END: &str = "<!-- peers:end -->";

pub fn out_path() -> PathBuf {
    std::env::var("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"))
}

/// The peers block of an existing BENCHMARKS.md, kept when `make bench` rewrites the rest.
pub fn peers_block(existing: &str) -> Option<String> {
    let start = existing.find(PEERS_BEGIN)?;
    let end = existing[start..].find(PEERS_END)? + start + PEERS_END.len();
    Some(existing[start..end].to_string())
}

fn write_benchmarks(report: &Report, machine: &str, goals: &str) -> Result<(), Error> {
    let path = out_path();
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let peers = peers_block(&existing).unwrap_or_else(|| {
        format!("{PEERS_BEGIN}\n## Peers\n\nNot measured yet: run `make bench-peers`.\n{PEERS_END}")
    });
    let text = format!(
        "# Benchmarks\n\n\
         Written by `make bench` (`benches/warden/`, one run, release build, against the emulator); the peers section by \
         `make bench-peers`. Figures are from one machine at one time; nothing here is asserted by a test.\n\n\
         {machine}\n\
         ## Summary\n\n{}\n{goals}\n## How to reproduce\n\n\
         ```sh\nmake emulator        # moto in .venv (once)\nmake bench           # cargo bench --bench warden: seeds the emulator, runs everything, rewrites this file\n\
         make bench-peers     # installs c7n and Prowler into .venv-peers, measures them, rewrites the Peers section\n```\n\n\
         Knobs: `BENCH_COLD_RUNS` (default 21), `BENCH_LATENCY_RUNS` (7), `BENCH_STORM_RECORDS` (1000), `BENCH_STORM_RUNS` (3), \
         `BENCH_SWEEP` (`50,200`), `BENCH_ORG_CLUSTERS` (1000; 0 skips it), `BENCH_ORG_SAMPLE` (per-cluster batches evaluated; all), \
         `BENCH_OUT` (this file). The build takes 15–25 minutes cold on 2 cores; the run about \
         as long as seeding 1,250 clusters into the emulator and evaluating the organization sweep take.\n\n\
         ## Details\n\n{}{peers}\n",
        report.table(),
        report.details,
    );
    std::fs::write(&path, text)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn goals(report: &Report) -> String {
    let find = |bench: &str, figure_start: &str| {
        report
            .rows
            .iter()
            .find(|r| r.bench == bench && r.figure.contains(figure_start))
    };
    let mut out = String::from("### Goals\n\n");
    for (bench, fig, what) in [
        ("cold start", "init:", "Init ≤ 30 ms"),
        ("latency", "dependent rounds", "≤ 3 dependent rounds"),
        (
            "latency",
            "latency / (rounds",
            "Latency ≤ 1.3 × rounds × 50 ms",
        ),
        (
            "latency",
            "AWS's DescribeCluster shape (with",
            "≤ 3 dependent rounds, with AWS's DescribeCluster shape",
        ),
        (
            "latency",
            "AWS's DescribeCluster shape: latency",
            "Latency ≤ 1.3 × rounds × 50 ms, with AWS's DescribeCluster shape",
        ),
        (
            "storm",
            "cluster evaluations",
            "Each cluster evaluated once per batch",
        ),
        ("storm", "records failed", "No record of the storm fails"),
        (
            "org sweep",
            "messages sent",
            "One message per scope and one per cluster in the organization sweep",
        ),
        (
            "org sweep",
            "peak RSS per invocation",
            "Peak RSS ≤ 40 MB in every invocation of the organization sweep",
        ),
    ] {
        if let Some(r) = find(bench, fig).filter(|r| r.met.is_some()) {
            let _ = writeln!(
                out,
                "* {what}: {} ({}).",
                if r.met == Some(true) {
                    "met"
                } else {
                    "**not met**"
                },
                r.value
            );
        }
    }
    let sweeps: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.bench == "sweep" && r.met.is_some())
        .collect();
    if !sweeps.is_empty() {
        let all = sweeps.iter().all(|r| r.met == Some(true));
        let vals: Vec<String> = sweeps
            .iter()
            .map(|r| format!("{} {}", r.figure.split(':').next().unwrap_or(""), r.value))
            .collect();
        let _ = writeln!(
            out,
            "* Peak RSS ≤ 40 MB in the sweep: {} ({}).",
            if all { "met" } else { "**not met**" },
            vals.join(", ")
        );
    }
    out.push_str(&notes());
    out
}

/// What the figures mean; kept next to the code that measures them.
fn notes() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/warden/NOTES.md");
    std::fs::read_to_string(path)
        .map(|s| format!("\n{s}"))
        .unwrap_or_default()
}

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run_all() -> Result<(), Error> {
    let mut report = Report::default();
    let machine = machine();
    println!("{machine}");
    let mut api = RuntimeApi::start().await;
    cold_start(&mut report, &mut api, env_usize("BENCH_COLD_RUNS", 21)).await?;
    let snapshot = latency(&mut report, env_usize("BENCH_LATENCY_RUNS", 7)).await?;
    let batch = storm_bench(
        &mut report,
        env_usize("BENCH_STORM_RECORDS", 1000),
        env_usize("BENCH_STORM_RUNS", 3),
    )
    .await?;
    micro(&mut report, &batch, &snapshot);
    let sizes: Vec<usize> = std::env::var("BENCH_SWEEP")
        .unwrap_or_else(|_| "50,200".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    sweep(&mut report, &mut api, &sizes).await?;
    let org = env_usize("BENCH_ORG_CLUSTERS", 1000);
    if org > 0 {
        let sample = env_usize("BENCH_ORG_SAMPLE", usize::MAX);
        org_sweep::org_sweep(&mut report, &mut api, org, sample).await?;
    }
    state::state_bench(&mut report).await?;
    let machine = format!("{}* load average at the end: {}\n", machine, loadavg());
    println!("\n{}", report.table());
    write_benchmarks(&report, &machine, &goals(&report))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` (make test) runs this binary without it,
    // and the figures take minutes against the emulator: there it only proves the harness builds.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/warden: figures come from `make bench` (cargo bench --bench warden); nothing run");
        return;
    }
    let peers_only = std::env::args().any(|a| a == "--peers");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        if peers_only {
            peers::run().await
        } else {
            run_all().await
        }
    });
    if let Err(e) = result {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}
