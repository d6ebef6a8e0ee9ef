//! The scheduled sweep of one region's fleet, in-line in one invocation.

#[allow(unused_imports)]
use super::*;

pub(crate) async fn sweep(
    report: &mut Report,
    api: &mut RuntimeApi,
    sizes: &[usize],
) -> Result<(), Error> {
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
