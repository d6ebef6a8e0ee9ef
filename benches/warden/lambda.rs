//! Running the Lambda binary as Lambda does (its runtime API, its environment), measured as a process:
//! wall time, peak RSS; and its cold start.

#[allow(unused_imports)]
use super::*;

/// The high-water mark of a live process's resident set (KB), from /proc. Not `ru_maxrss`: Rust spawns
/// with posix_spawn (vfork), and at exec the kernel folds the pre-exec memory's high-water mark — the
/// spawning process's own — into the child's `ru_maxrss`, so a child would look as big as the harness.
pub(crate) fn vm_hwm(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Reaps a child (its exit status).
pub(crate) fn reap(pid: u32) -> i32 {
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

pub(crate) fn bootstrap_path() -> &'static str {
    env!("CARGO_BIN_EXE_bootstrap")
}

/// The environment Lambda gives a `provided.al2023` function, pointed at the emulator.
pub(crate) fn lambda_env(
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

pub(crate) struct LambdaRun {
    /// Spawn → first `GET …/invocation/next`.
    pub(crate) init: Duration,
    /// Per invocation: payload handed out → response posted, and the response.
    pub(crate) invocations: Vec<(Duration, Value)>,
    pub(crate) peak_rss_kb: u64,
}

/// Spawns the Lambda binary, feeds it `payloads` one per invocation, then kills it when it asks for more.
pub(crate) async fn run_lambda(
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

pub(crate) async fn cold_start(
    report: &mut Report,
    api: &mut RuntimeApi,
    runs: usize,
) -> Result<(), Error> {
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
