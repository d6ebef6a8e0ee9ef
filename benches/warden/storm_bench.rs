//! The storm: a batch of CloudTrail records about a few clusters, through the Lambda path.

#[allow(unused_imports)]
use super::*;

pub(crate) async fn storm_bench(
    report: &mut Report,
    records: usize,
    runs: usize,
) -> Result<Value, Error> {
    println!("storm: one SQS batch of {records} records over 3 clusters");
    let region = "eu-west-2";
    let (clients, _) = common::clients(region).await;
    let clusters = fleet::storm_clusters(&clients, region).await?;
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
