//! BENCHMARKS.md: the machine, the goals, the notes and the peers' block kept across runs.

#[allow(unused_imports)]
use super::*;

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

pub(crate) fn write_benchmarks(report: &Report, machine: &str, goals: &str) -> Result<(), Error> {
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

pub(crate) fn goals(report: &Report) -> String {
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
            "answers replayed in parallel: latency",
            "Latency ≤ 1.3 × rounds × 50 ms, answers replayed in parallel (the emulator's service time left out)",
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
pub(crate) fn notes() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/warden/NOTES.md");
    std::fs::read_to_string(path)
        .map(|s| format!("\n{s}"))
        .unwrap_or_default()
}
