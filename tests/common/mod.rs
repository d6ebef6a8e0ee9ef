//! The emulator harness: one moto server (with the EKS extension) per test binary on a free loopback
//! port, the real SDK clients talking HTTP to it; a second, plain moto on demand. Tests isolate
//! themselves by region (moto keeps regions apart).
#![allow(dead_code)]

pub mod context;
pub mod mocked;
pub mod proxy;
pub mod report;
pub mod seed;
pub mod seeded;
pub mod sns;
pub mod template;

use aws_sdk_eks::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use eks_warden::collect::Clients;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Emulator {
    pub endpoint: String,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();
static PLAIN_EMULATOR: OnceLock<Emulator> = OnceLock::new();

/// Starts the emulator (moto with the EKS extension, scripts/moto_eks_ext.py) on first use. It stops by
/// itself when this test process exits (its stdin closes).
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(|| start(false))
}

/// Plain moto 5.2.5 without the EKS extension: the add-on, access-entry and version APIs answer 404.
pub fn plain_emulator() -> &'static Emulator {
    PLAIN_EMULATOR.get_or_init(|| start(true))
}

fn start(plain: bool) -> Emulator {
    let root = env!("CARGO_MANIFEST_DIR");
    let venv = std::env::var("EKS_WARDEN_VENV").unwrap_or_else(|_| format!("{root}/.venv"));
    let python = format!("{venv}/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "the emulator is not installed: run `make emulator` (scripts/emulator-venv.sh)"
    );
    let mut cmd = Command::new(&python);
    cmd.arg(format!("{root}/scripts/moto_serve.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if plain {
        cmd.env("EKS_WARDEN_EMULATOR_PLAIN", "1");
    } else {
        cmd.env_remove("EKS_WARDEN_EMULATOR_PLAIN");
    }
    let mut child = cmd.spawn().expect("start the emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("emulator stdout"))
        .read_line(&mut line)
        .expect("read the emulator's port");
    let port: u16 = line.trim().parse().expect("emulator printed its port");
    // Keep the child's stdin open for the life of the process; its closing stops the emulator.
    Box::leak(Box::new(child));
    Emulator {
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

impl Emulator {
    /// Environment for running the `eks-warden` binary against the emulator.
    pub fn env(&self, region: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", region.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

pub async fn sdk_config(region: &str) -> aws_config::SdkConfig {
    sdk_config_for(emulator(), region).await
}

pub async fn sdk_config_for(emu: &Emulator, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&emu.endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "emulator"))
        .load()
        .await
}

/// Counts every request the SDK sends (each retry attempt too), and keeps the operation names.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(pub Arc<AtomicU32>, pub Arc<std::sync::Mutex<Vec<String>>>);

impl CallCounter {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }

    /// Operation names sent so far (`DescribeCluster`, `UpdateClusterConfig`, …).
    pub fn operations(&self) -> Vec<String> {
        self.1.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Calls that change something: anything but Describe/List/Get.
    pub fn writes(&self) -> Vec<String> {
        self.operations()
            .into_iter()
            .filter(|o| {
                !(o.starts_with("Describe") || o.starts_with("List") || o.starts_with("Get"))
            })
            .collect()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if let Some(m) = _cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            if let Ok(mut ops) = self.1.lock() {
                ops.push(m.name().to_string());
            }
        }
        Ok(())
    }
}

/// Clients against the emulator, with a counter of the requests they send.
pub async fn clients(region: &str) -> (Clients, CallCounter) {
    clients_for(emulator(), region).await
}

/// Clients against a given emulator (e.g. [`plain_emulator`]).
pub async fn clients_for(emu: &Emulator, region: &str) -> (Clients, CallCounter) {
    let conf = sdk_config_for(emu, region).await;
    let counter = CallCounter::default();
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&conf)
            .interceptor(counter.clone())
            .build(),
    );
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&conf)
            .interceptor(counter.clone())
            .build(),
    );
    (Clients { eks, ec2 }, counter)
}

/// Runs the real `eks-warden` binary against the emulator.
pub fn run_cli(region: &str, args: &[&str]) -> std::process::Output {
    run_cli_env(region, args, &[])
}

/// Runs the real `eks-warden` binary against a given emulator.
pub fn run_cli_on(emu: &Emulator, region: &str, args: &[&str]) -> std::process::Output {
    output(cli_command(emu, region, args, &[]))
}

/// Runs the real `eks-warden` binary against the emulator with these settings in its environment.
pub fn run_cli_env(region: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    output(cli_command(emulator(), region, args, env))
}

fn output(mut cmd: Command) -> std::process::Output {
    cmd.output().expect("run eks-warden")
}

/// The `eks-warden` binary against `emu` in `region`, with only this test's settings (`env`, applied
/// last, so it may point AWS_ENDPOINT_URL elsewhere), for a test that spawns it itself.
pub fn cli_command(emu: &Emulator, region: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eks-warden"));
    cmd.args(args).env_remove("AWS_PROFILE");
    // Only this test's settings: none inherited from the developer's shell.
    for (k, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("EKS_WARDEN_") && k != "EKS_WARDEN_VENV")
    {
        cmd.env_remove(k);
    }
    for (k, v) in emu.env(region) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary with `input` on its stdin (`None`: stdin closed at once).
pub fn run_cli_stdin(region: &str, args: &[&str], input: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut cmd = cli_command(emulator(), region, args, &[]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start eks-warden");
    let mut stdin = child.stdin.take().expect("eks-warden's stdin");
    if let Some(input) = input {
        stdin
            .write_all(input.as_bytes())
            .expect("write eks-warden's stdin");
    }
    drop(stdin);
    child.wait_with_output().expect("run eks-warden")
}

/// Asserts the exit code, showing what the binary printed when it differs.
#[track_caller]
pub fn assert_exit(o: &std::process::Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Asserts that stderr holds exactly one line, and returns it.
#[track_caller]
pub fn one_line(o: &std::process::Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(s.trim_end().lines().count(), 1, "one line on stderr: {s:?}");
    s
}

/// Clients and configuration whose requests go through `proxy` instead of straight to the emulator.
pub fn via_proxy(
    proxy: &proxy::FaultProxy,
    conf: &aws_config::SdkConfig,
) -> (Clients, aws_config::SdkConfig) {
    let conf = conf.to_builder().endpoint_url(&proxy.endpoint).build();
    (Clients::new(&conf), conf)
}
