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
mod lambda;
mod latency;
mod org_sweep;
mod output;
mod peers;
mod report;
mod runtime_api;
mod state;
mod storm;
mod storm_bench;
mod sweep;

pub(crate) use lambda::*;
pub(crate) use latency::*;
pub(crate) use output::*;
pub(crate) use report::*;
pub(crate) use storm_bench::*;
pub(crate) use sweep::*;

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
