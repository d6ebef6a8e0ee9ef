//! One cluster's evaluation with 50 ms added to every call: the dependent rounds and the latency ratio.

#[allow(unused_imports)]
use super::*;

/// Records when each request left the SDK (after signing, just before transmission) and its operation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent(Arc<Mutex<Vec<(Instant, String)>>>);

impl Sent {
    pub(crate) fn take(&self) -> Vec<(Instant, String)> {
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

pub(crate) fn recorded_clients(conf: &aws_config::SdkConfig, sent: &Sent) -> Clients {
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
pub(crate) fn waves(sent: &[(Instant, String)], gap: Duration) -> Vec<Vec<String>> {
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

/// Returns one snapshot of the measured cluster, for the micro-benchmark of the rules.
pub(crate) async fn latency(
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
    // The same calls answered from a recording of the emulator's answers, in parallel and after the
    // same 50 ms: the shape of AWS's service (latency, no queue), without the emulator's own time.
    let replay = FaultProxy::start(&common::emulator().endpoint).await;
    replay.set(vec![Plan::new(Fault::Delay(ADDED_LATENCY))]);
    replay.record_and_replay();
    let replay_conf = slow_conf
        .to_builder()
        .endpoint_url(&replay.endpoint)
        .build();
    let replay_sent = Sent::default();
    let replayed = recorded_clients(&replay_conf, &replay_sent);

    // One warm-up each (connection pools, the emulator's first answers), not counted.
    collect_with(&slow, &seeded.cluster, &settings).await?;
    collect_with(&direct, &seeded.cluster, &settings).await?;
    collect_with(&replayed, &seeded.cluster, &settings).await?;
    sent.take();
    replay_sent.take();
    let forwarded_before = replay.forwarded.load(std::sync::atomic::Ordering::SeqCst);
    let (mut slow_times, mut direct_times, mut replay_times) = (vec![], vec![], vec![]);
    let mut last = None;
    let mut replay_last = None;
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
        let (snapshot, stats) = collect_with(&replayed, &seeded.cluster, &settings).await?;
        eks_warden::rules::evaluate(&snapshot, &settings);
        replay_times.push(t.elapsed());
        replay_last = Some((stats, waves(&replay_sent.take(), ADDED_LATENCY / 2)));
    }
    let missed = replay.forwarded.load(std::sync::atomic::Ordering::SeqCst) - forwarded_before;
    let (replay_stats, replay_waves) = replay_last.ok_or("no run")?;
    let replay_s = Spread::of(&replay_times);
    let (snapshot, stats, observed, results) = last.ok_or("no run")?;
    let slow_s = Spread::of(&slow_times);
    let direct_s = Spread::of(&direct_times);
    let floor = ADDED_LATENCY * stats.rounds;
    let ratio = slow_s.median.as_secs_f64() / floor.as_secs_f64();
    // The emulator's own service time is in every round too; without it, what the collector adds.
    let net = slow_s.median.saturating_sub(direct_s.median).as_secs_f64() / floor.as_secs_f64();
    let replay_floor = ADDED_LATENCY * replay_stats.rounds;
    let replay_ratio = replay_s.median.as_secs_f64() / replay_floor.as_secs_f64();
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
        "answers replayed in parallel, +50 ms per call: rounds / waves",
        format!("{} / {}", replay_stats.rounds, replay_waves.len()),
        "≤ 3",
        Some(replay_stats.rounds <= 3),
    );
    report.row(
        "latency",
        "answers replayed in parallel: latency, ratio to its floor",
        format!("{}, {replay_ratio:.2}", ms(replay_s.median)),
        "≤ 1.3",
        Some(replay_ratio <= 1.3),
    );
    report.row(
        "latency",
        "answers replayed in parallel: calls not in the recording (sent on to the emulator)",
        missed.to_string(),
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
         * with +50 ms per call, each answer replayed from a recording of the emulator's answers (the proxy's \
         `record_and_replay`: served in parallel after the 50 ms, as AWS serves, so the emulator's own service time \
         drops out): {}, {} rounds ({} waves), {} calls, ratio {replay_ratio:.2}; {missed} calls were not in the \
         recording\n\n\
         The calls of the last run, grouped into waves as they left the SDK (a request more than 25 ms after the first \
         of its wave starts the next one):\n\n| wave | calls |\n|---|---|\n{waves_md}\n",
        ADDED_LATENCY.as_millis(),
        slow_s.line(),
        direct_s.line(),
        ms(floor),
        replay_s.line(),
        replay_stats.rounds,
        replay_waves.len(),
        replay_stats.calls,
    );
    Ok(snapshot)
}
