//! Time limits on every AWS call, set once on the SDK configuration so every client built from it (the
//! home account's, each member account's, SNS, SQS, STS) inherits them. Sized to the function's 300 s
//! timeout: a call that never answers costs at most the operation timeout (default 30 s: three 10 s
//! attempts fit), well under a minute, in the CLI too.

use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

pub const ENV_CALL_TIMEOUT: &str = "EKS_WARDEN_CALL_TIMEOUT_SECONDS";
pub const ENV_ATTEMPT_TIMEOUT: &str = "EKS_WARDEN_ATTEMPT_TIMEOUT_SECONDS";
/// Whole operation, retries included.
pub const DEFAULT_CALL_TIMEOUT_SECS: f64 = 30.0;
/// One attempt (one HTTP request and its answer).
pub const DEFAULT_ATTEMPT_TIMEOUT_SECS: f64 = 10.0;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A timeout setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {value:?} is not a number of seconds between 0.1 and 900")]
pub struct TimeoutError {
    pub var: &'static str,
    pub value: String,
}

fn seconds(
    var: &'static str,
    value: Option<String>,
    default: f64,
) -> Result<Duration, TimeoutError> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(Duration::from_secs_f64(default));
    };
    match v.parse::<f64>() {
        Ok(n) if (0.1..=900.0).contains(&n) => Ok(Duration::from_secs_f64(n)),
        _ => Err(TimeoutError { var, value: v }),
    }
}

/// The operation and attempt timeouts: `call` (a CLI flag) wins over the environment; the attempt timeout
/// never exceeds the operation's.
pub fn from_lookup(
    call: Option<f64>,
    get: impl Fn(&str) -> Option<String>,
) -> Result<TimeoutConfig, TimeoutError> {
    let operation = match call {
        Some(c) => seconds(
            "--call-timeout",
            Some(c.to_string()),
            DEFAULT_CALL_TIMEOUT_SECS,
        )?,
        None => seconds(
            ENV_CALL_TIMEOUT,
            get(ENV_CALL_TIMEOUT),
            DEFAULT_CALL_TIMEOUT_SECS,
        )?,
    };
    let attempt = seconds(
        ENV_ATTEMPT_TIMEOUT,
        get(ENV_ATTEMPT_TIMEOUT),
        DEFAULT_ATTEMPT_TIMEOUT_SECS,
    )?
    .min(operation);
    Ok(TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(attempt))
        .operation_timeout(operation)
        .operation_attempt_timeout(attempt)
        .build())
}

pub fn from_env(call: Option<f64>) -> Result<TimeoutConfig, TimeoutError> {
    from_lookup(call, |k| std::env::var(k).ok())
}

/// The SDK configuration of the environment with these timeouts (and a region, when given).
pub async fn load_config(region: Option<String>, timeouts: TimeoutConfig) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_flag_and_environment() {
        let t = from_lookup(None, |_| None).unwrap();
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(10)));
        let t = from_lookup(Some(2.0), |k| (k == ENV_CALL_TIMEOUT).then(|| "60".into())).unwrap();
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(2)));
        // The attempt never outlasts the operation.
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(2)));
        let e =
            from_lookup(None, |k| (k == ENV_ATTEMPT_TIMEOUT).then(|| "soon".into())).unwrap_err();
        assert!(e.to_string().contains(ENV_ATTEMPT_TIMEOUT));
        assert!(from_lookup(Some(0.0), |_| None).is_err());
    }
}
