//! `eks-warden scan | rules` — the same engine as the Lambda, from a terminal or CI.

use eks_warden::cli;

#[tokio::main]
async fn main() {
    let cli = match cli::parse() {
        Ok(c) => c,
        Err((code, msg)) => {
            if code == cli::EXIT_OK {
                print!("{msg}");
            } else {
                eprintln!("eks-warden: {msg}");
            }
            std::process::exit(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EKS_WARDEN_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match cli::run(cli).await {
        Ok(code) => code,
        Err(cli::CliError(msg)) => {
            eprintln!("eks-warden: {}", msg.lines().next().unwrap_or_default());
            cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
