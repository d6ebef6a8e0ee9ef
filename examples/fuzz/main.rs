//! `make fuzz`: the payload parser and router under mutated real-shaped events (see `engine.rs`).
//!
//! `FUZZ_SECONDS` (default 60), `FUZZ_THREADS` (default: every core), `FUZZ_SEED` (default: from the
//! clock; printed, so a run replays), `FUZZ_MAX_EXECS` (per thread; default unbounded), `FUZZ_OUT` (where a
//! failing input is written; default `target/fuzz-crashes/`). `FUZZ_REPLAY=FILE` runs one input and exits.
//! Exit 0: no panic; 1: a panic, its input written to a file.

mod engine;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(k: &str) -> Option<T> {
    std::env::var(k).ok().and_then(|v| v.trim().parse().ok())
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Ok(file) = std::env::var("FUZZ_REPLAY") {
        let bytes = std::fs::read(&file).expect("read FUZZ_REPLAY");
        let parsed = engine::target(&bytes);
        println!("{file}: no panic (JSON: {parsed})");
        return;
    }
    let seconds: u64 = env("FUZZ_SECONDS").unwrap_or(60);
    let threads: usize = env("FUZZ_THREADS").unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let seed: u64 = env("FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let max_execs: u64 = env("FUZZ_MAX_EXECS").unwrap_or(u64::MAX);
    let out = std::env::var("FUZZ_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| root.join("target"));
            target.join("fuzz-crashes")
        });
    let seeds = Arc::new(engine::corpus(&root.join("events")));
    assert!(!seeds.is_empty(), "no fixtures in events/");
    // Panics are caught and reported with their input; keep the default message short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    println!(
        "fuzzing parse_payload + route::lookup/resource_ids/cluster_from_arn + Settings::from_lookup: {} fixtures, \
         {threads} thread(s), {seconds} s, seed {seed} (replay: FUZZ_SEED={seed} FUZZ_THREADS={threads})",
        seeds.len()
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let live: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (seeds, live) = (seeds.clone(), live.clone());
            let wseed = seed.wrapping_add(t as u64);
            std::thread::spawn(move || {
                engine::worker(&seeds, wseed, until, max_execs, |s| {
                    live[t].store(s.execs, Ordering::Relaxed);
                    if t == 0 {
                        let total: u64 = live.iter().map(|x| x.load(Ordering::Relaxed)).sum();
                        let secs = start.elapsed().as_secs_f64();
                        eprint!("\r  {total} execs, {:.0}/s   ", total as f64 / secs);
                    }
                })
            })
        })
        .collect();
    let mut total = engine::Stats::default();
    let mut crashes = Vec::new();
    for h in handles {
        let (s, crash) = h.join().expect("worker thread");
        total.execs += s.execs;
        total.structural += s.structural;
        total.raw += s.raw;
        total.parsed += s.parsed;
        crashes.extend(crash);
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "{} executions in {secs:.1} s ({:.0}/s): {} structural, {} raw-byte; {} were JSON and reached parse_payload",
        total.execs,
        total.execs as f64 / secs,
        total.structural,
        total.raw,
        total.parsed
    );
    if crashes.is_empty() {
        println!("no panic");
        return;
    }
    std::fs::create_dir_all(&out).expect("create FUZZ_OUT");
    for c in &crashes {
        let file = out.join(format!("crash-{}-{}.json", c.seed, c.exec));
        std::fs::write(&file, &c.input).expect("write the failing input");
        println!(
            "PANIC: {} (worker seed {}, exec {}) — input written to {}",
            c.message,
            c.seed,
            c.exec,
            file.display()
        );
        println!("  replay: FUZZ_REPLAY={} make fuzz", file.display());
    }
    std::process::exit(1);
}
