//! Seeds the demo account into the emulator named by AWS_ENDPOINT_URL (used by `make demo`).

#[path = "../tests/common/seed.rs"]
mod seed;

#[tokio::main]
async fn main() -> Result<(), seed::Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or("set AWS_REGION")?;
    let eks = aws_sdk_eks::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let demo = seed::demo_account(&eks, &ec2, &region).await?;
    eprintln!(
        "seeded clusters `insecure` and `compliant` in {region} (vpc {}, public subnets {:?}, private subnets {:?})",
        demo.network.vpc, demo.network.public, demo.network.private
    );
    Ok(())
}
