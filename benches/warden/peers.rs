//! `make bench-peers`: Cloud Custodian (c7n) and Prowler next to `eks-warden scan`, against the same
//! seeded account in the emulator: wall time and peak RSS side by side, the import cost c7n's Lambda pays,
//! and which findings agree. The peers live in `.venv-peers/` (scripts/peers-venv.sh); nothing here runs
//! in CI. Rewrites only the Peers section of BENCHMARKS.md.

use crate::{common, fleet, mb, ms, run_measured, scratch, Error, Spread, PEERS_BEGIN, PEERS_END};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const REGION: &str = "us-west-1";
const RUNS: usize = 3;

/// c7n pull-mode policies equivalent to our rules, as far as c7n's EKS filters reach
/// (`aws.eks-nodegroup` has no subnet filter, so nothing matches nodes-public-ip / nodes-in-public-subnet).
const C7N_POLICIES: &str = r#"policies:
  - name: endpoint-public-unrestricted
    resource: aws.eks
    filters:
      - "resourcesVpcConfig.endpointPublicAccess": true
      - type: value
        key: "resourcesVpcConfig.publicAccessCidrs"
        op: contains
        value: "0.0.0.0/0"
  - name: endpoint-private-disabled
    resource: aws.eks
    filters:
      - "resourcesVpcConfig.endpointPrivateAccess": false
  - name: control-plane-logging-incomplete
    resource: aws.eks
    filters:
      - or:
          - not: [{type: value, key: "logging.clusterLogging[?enabled].types[]", op: contains, value: api}]
          - not: [{type: value, key: "logging.clusterLogging[?enabled].types[]", op: contains, value: audit}]
          - not: [{type: value, key: "logging.clusterLogging[?enabled].types[]", op: contains, value: authenticator}]
  - name: secrets-not-encrypted
    resource: aws.eks
    filters:
      - type: value
        key: "encryptionConfig[?contains(resources, 'secrets')]"
        value: empty
  - name: sg-open-ingress
    resource: aws.eks
    filters:
      - type: security-group
        key: "IpPermissions[].IpRanges[].CidrIp"
        op: contains
        value: "0.0.0.0/0"
  - name: nodegroup-ssh-open
    resource: aws.eks-nodegroup
    filters:
      - "remoteAccess.ec2SshKey": present
      - "remoteAccess.sourceSecurityGroups": absent
"#;

/// Our rule ↔ Prowler's EKS check that judges the same thing (or the nearest one).
const PROWLER_MAP: &[(&str, &str)] = &[
    (
        "endpoint-public-unrestricted",
        "eks_cluster_not_publicly_accessible",
    ),
    (
        "endpoint-private-disabled",
        "eks_cluster_private_nodes_enabled",
    ),
    (
        "control-plane-logging-incomplete",
        "eks_control_plane_logging_all_types_enabled",
    ),
    (
        "secrets-not-encrypted",
        "eks_cluster_kms_cmk_encryption_in_secrets_enabled",
    ),
    (
        "network-policy-not-enforced",
        "eks_cluster_vpc_cni_network_policy_enforced",
    ),
    (
        "version-unsupported",
        "eks_cluster_uses_a_supported_version",
    ),
    (
        "deletion-protection-off",
        "eks_cluster_deletion_protection_enabled",
    ),
];

/// cluster → rule/check → FAIL/PASS/…
type Verdicts = BTreeMap<String, BTreeMap<String, String>>;

struct Measured {
    wall: Spread,
    rss_kb: u64,
    code: i32,
}

fn measure(runs: usize, mut make: impl FnMut() -> Command) -> Result<Measured, Error> {
    let (mut walls, mut rss, mut code) = (vec![], 0, 0);
    for _ in 0..runs {
        let (wall, kb, c) = run_measured(&mut make())?;
        walls.push(wall);
        rss = rss.max(kb);
        code = c;
    }
    Ok(Measured {
        wall: Spread::of(&walls),
        rss_kb: rss,
        code,
    })
}

fn env_for(cmd: &mut Command, home: &Path) {
    cmd.env_clear();
    for (k, v) in common::emulator().env(REGION) {
        cmd.env(k, v);
    }
    cmd.env("AWS_DEFAULT_REGION", REGION)
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null());
}

fn version(python: &Path, dist: &str) -> String {
    Command::new(python)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{dist}'))"),
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn ours(dir: &Path, home: &Path) -> Result<(Measured, Verdicts), Error> {
    let out = dir.join("eks-warden.json");
    let m = measure(RUNS, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eks-warden"));
        c.args(["scan", "--format", "json"]);
        env_for(&mut c, home);
        c.stdout(std::fs::File::create(&out).expect("output file"))
            .stderr(Stdio::null());
        c
    })?;
    let report: Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let mut v = Verdicts::new();
    for c in report
        .get("clusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c
            .get("cluster")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let per = v.entry(name).or_default();
        for r in c
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rule = r
                .get("rule_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let status = r
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let slot = per.entry(rule).or_insert_with(|| status.clone());
            // A rule fails the cluster when any of its resources fails.
            if status == "FAIL" || (slot != "FAIL" && status == "UNKNOWN") {
                *slot = status;
            }
        }
    }
    Ok((m, v))
}

fn c7n(
    venv: &Path,
    dir: &Path,
    home: &Path,
    clusters: &BTreeSet<String>,
) -> Result<(Measured, Verdicts, String), Error> {
    let policies = dir.join("c7n-policies.yml");
    std::fs::write(&policies, C7N_POLICIES)?;
    let out = dir.join("c7n-out");
    let log = dir.join("c7n.log");
    let m = measure(RUNS, || {
        let _ = std::fs::remove_dir_all(&out);
        let mut c = Command::new(venv.join("bin/custodian"));
        c.arg("run")
            .arg("-s")
            .arg(&out)
            .args(["--region", REGION])
            .arg(&policies);
        env_for(&mut c, home);
        c.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        c
    })?;
    let mut v = Verdicts::new();
    for c in clusters {
        v.entry(c.clone()).or_default();
    }
    let mut names = Vec::new();
    for p in std::fs::read_dir(&out)? {
        let p = p?.path();
        let policy = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = std::fs::read(p.join("resources.json")) else {
            continue;
        };
        names.push(policy.clone());
        let flagged: Vec<Value> = serde_json::from_slice(&text).unwrap_or_default();
        let flagged: BTreeSet<String> = flagged
            .iter()
            .filter_map(|r| {
                r.get("clusterName")
                    .or_else(|| r.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        for (cluster, per) in v.iter_mut() {
            per.insert(
                policy.clone(),
                if flagged.contains(cluster) {
                    "FAIL"
                } else {
                    "PASS"
                }
                .into(),
            );
        }
    }
    names.sort();
    Ok((m, v, names.join(", ")))
}

/// Fresh interpreters: bare, then what c7n's Lambda handler imports before it can run a policy.
fn c7n_import(venv: &Path, home: &Path) -> Result<(Measured, Measured), Error> {
    let python = venv.join("bin/python");
    let bare = measure(5, || {
        let mut c = Command::new(&python);
        c.args(["-c", "pass"]);
        env_for(&mut c, home);
        c
    })?;
    let import = measure(5, || {
        let mut c = Command::new(&python);
        c.args([
            "-c",
            "from c7n import handler; from c7n.resources import load_resources; load_resources(('aws.eks', 'aws.eks-nodegroup'))",
        ]);
        env_for(&mut c, home);
        c
    })?;
    Ok((bare, import))
}

fn prowler(venv: &Path, dir: &Path, home: &Path) -> Result<(Measured, Verdicts, String), Error> {
    let out = dir.join("prowler-out");
    let log = dir.join("prowler.log");
    let m = measure(1, || {
        let _ = std::fs::remove_dir_all(&out);
        let mut c = Command::new(venv.join("bin/prowler"));
        c.args([
            "aws",
            "--service",
            "eks",
            "--region",
            REGION,
            "--output-formats",
            "json-ocsf",
            "--no-banner",
            "--output-directory",
        ])
        .arg(&out);
        env_for(&mut c, home);
        let f = std::fs::File::create(&log).expect("log file");
        c.stdout(f.try_clone().expect("log file")).stderr(f);
        c
    })?;
    let mut v = Verdicts::new();
    let mut checks = BTreeSet::new();
    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let findings: Vec<Value> = serde_json::from_slice(&std::fs::read(f)?).unwrap_or_default();
        for x in findings {
            let check = x
                .pointer("/metadata/event_code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let status = x
                .get("status_code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_uppercase();
            let name = x
                .pointer("/resources/0/name")
                .and_then(Value::as_str)
                .or_else(|| {
                    x.pointer("/resources/0/uid")
                        .and_then(Value::as_str)
                        .and_then(|u| u.rsplit('/').next())
                })
                .unwrap_or_default()
                .to_string();
            checks.insert(check.clone());
            v.entry(name).or_default().insert(check, status);
        }
    }
    Ok((m, v, checks.into_iter().collect::<Vec<_>>().join(", ")))
}

/// Per pair (our rule, their check): clusters where both say the same, and the ones where they differ.
fn agreement(ours: &Verdicts, theirs: &Verdicts, pairs: &[(&str, &str)]) -> String {
    let mut md = String::new();
    for (rule, check) in pairs {
        let (mut agree, mut differ, mut missing) = (0, Vec::new(), 0);
        for (cluster, per) in ours {
            let mine = per.get(*rule).map(String::as_str).unwrap_or("—");
            match theirs.get(cluster).and_then(|p| p.get(*check)) {
                Some(t) if t == mine => agree += 1,
                Some(t) => differ.push(format!("{cluster}: ours {mine}, theirs {t}")),
                None => missing += 1,
            }
        }
        let _ = writeln!(
            md,
            "| `{rule}` | `{check}` | {agree} | {} | {} |",
            if differ.is_empty() {
                "—".to_string()
            } else {
                differ.join("; ")
            },
            missing
        );
    }
    md
}

pub async fn run() -> Result<(), Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venvs = std::env::var("EKS_WARDEN_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv-peers"));
    let dir = scratch().join("peers");
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;

    println!("peers: seeding the demo account and 10 fleet clusters in {REGION}");
    let (clients, _) = common::clients(REGION).await;
    common::seed::demo_account(&clients.eks, &clients.ec2, REGION).await?;
    fleet::fleet(&clients, REGION, 10).await?;

    println!("peers: eks-warden scan");
    let (mine, my_verdicts) = ours(&dir, &home)?;
    let clusters: BTreeSet<String> = my_verdicts.keys().cloned().collect();
    let fails: usize = my_verdicts
        .values()
        .flat_map(|p| p.values())
        .filter(|s| *s == "FAIL")
        .count();

    let mut md = format!(
        "{PEERS_BEGIN}\n## Peers\n\nWritten by `make bench-peers` on {} (load average {}). One account in the emulator, region \
         {REGION}: the demo's `insecure` and `compliant` clusters and 10 fleet clusters (`benches/warden/fleet.rs`), {} clusters \
         in all. Each tool reads the account through `AWS_ENDPOINT_URL`, in a fresh process; wall time is the median of \
         the runs, peak RSS the largest VmHWM of the process (/proc, polled every 2 ms).\n\n\
         | tool | what ran | runs | wall time | peak RSS | FAIL verdicts (cluster × rule) |\n|---|---|---:|---:|---:|---:|\n\
         | eks-warden {} | `eks-warden scan --format json` (release), 16 rules | {RUNS} | {} | {} | {fails} |\n",
        crate::shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        crate::loadavg(),
        clusters.len(),
        env!("CARGO_PKG_VERSION"),
        ms(mine.wall.median),
        mb(mine.rss_kb),
    );
    let mut notes = String::new();
    let mut agreements = String::new();

    let c7n_venv = venvs.join("c7n");
    if c7n_venv.join("bin/custodian").exists() {
        println!("peers: Cloud Custodian");
        let v = version(&c7n_venv.join("bin/python"), "c7n");
        let (m, verdicts, policies) = c7n(&c7n_venv, &dir, &home, &clusters)?;
        let n: usize = verdicts
            .values()
            .flat_map(|p| p.values())
            .filter(|s| *s == "FAIL")
            .count();
        let _ = writeln!(
            md,
            "| Cloud Custodian {v} | `custodian run` (pull mode), {} policies: {policies} | {RUNS} | {} | {} | {n} |",
            policies.split(", ").count(),
            ms(m.wall.median),
            mb(m.rss_kb)
        );
        let (bare, import) = c7n_import(&c7n_venv, &home)?;
        let _ = writeln!(
            md,
            "| Cloud Custodian {v}, Lambda import | fresh `python -c 'from c7n import handler; load_resources((aws.eks, aws.eks-nodegroup))'` | 5 | {} | {} | — |",
            ms(import.wall.median),
            mb(import.rss_kb)
        );
        let _ = writeln!(
            md,
            "| (reference) bare interpreter | `python -c pass` | 5 | {} | {} | — |",
            ms(bare.wall.median),
            mb(bare.rss_kb)
        );
        let pairs: Vec<(&str, &str)> = policies.split(", ").map(|p| (p, p)).collect();
        let _ = write!(
            agreements,
            "#### Cloud Custodian\n\nEach policy is named after the rule it mirrors; a cluster a policy matched is a FAIL, \
             any other a PASS (a nodegroup match counts for its cluster).\n\n| our rule | c7n policy | clusters agreeing | \
             disagreements | not judged |\n|---|---|---:|---|---:|\n{}\n",
            agreement(&my_verdicts, &verdicts, &pairs)
        );
        if m.code != 0 {
            let _ = writeln!(
                notes,
                "* `custodian run` exited {}; its log: {}",
                m.code,
                dir.join("c7n.log").display()
            );
        }
    } else {
        let _ = writeln!(
            notes,
            "* Cloud Custodian is not installed in {}: run `make bench-peers`.",
            c7n_venv.display()
        );
    }

    let prowler_venv = venvs.join("prowler");
    if prowler_venv.join("bin/prowler").exists() {
        println!("peers: Prowler");
        let v = version(&prowler_venv.join("bin/python"), "prowler");
        let (m, verdicts, checks) = prowler(&prowler_venv, &dir, &home)?;
        let n: usize = verdicts
            .values()
            .flat_map(|p| p.values())
            .filter(|s| *s == "FAIL")
            .count();
        let _ = writeln!(
            md,
            "| Prowler {v} | `prowler aws --service eks --region {REGION}` | 1 | {} | {} | {n} |",
            ms(m.wall.median),
            mb(m.rss_kb)
        );
        if verdicts.is_empty() {
            let log = std::fs::read_to_string(dir.join("prowler.log")).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let _ = writeln!(
                notes,
                "* Prowler exited {} and wrote no finding against the emulator. The end of its output:\n\n```\n{}\n```",
                m.code,
                tail.join("\n")
            );
        } else {
            let _ = write!(
                agreements,
                "#### Prowler\n\nChecks run: {checks}. Each pair is the Prowler check nearest to our rule.\n\n| our rule | \
                 Prowler check | clusters agreeing | disagreements | not judged |\n|---|---|---:|---|---:|\n{}\n",
                agreement(&my_verdicts, &verdicts, PROWLER_MAP)
            );
        }
    } else {
        let _ = writeln!(
            notes,
            "* Prowler is not installed in {}: run `make bench-peers`.",
            prowler_venv.display()
        );
    }
    md.push('\n');
    if !agreements.is_empty() {
        md.push_str("### Which findings agree\n\n");
        md.push_str(&agreements);
    }
    if !notes.is_empty() {
        md.push_str("### Notes\n\n");
        md.push_str(&notes);
        md.push('\n');
    }
    let peers_notes = root.join("benches/warden/PEERS.md");
    if let Ok(text) = std::fs::read_to_string(peers_notes) {
        md.push_str(&text);
        md.push('\n');
    }
    md.push_str(PEERS_END);
    println!("\n{md}");

    let path = crate::out_path();
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let text = match crate::peers_block(&existing) {
        Some(old) => existing.replace(&old, &md),
        None if existing.is_empty() => {
            format!("# Benchmarks\n\nRun `make bench` for the main figures.\n\n{md}\n")
        }
        None => format!("{}\n{md}\n", existing.trim_end()),
    };
    std::fs::write(&path, text)?;
    println!("wrote the Peers section of {}", path.display());
    Ok(())
}
