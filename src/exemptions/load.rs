//! Where the exemption list comes from: an SSM parameter (the Lambda, `EKS_WARDEN_EXEMPTIONS`) or a file
//! (the CLI, `--exemptions FILE`), and today's date, read here so that the rules never read the clock.

use super::{Day, Exemptions};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The SSM parameter (name or ARN) holding the list, for the Lambda, `handle` and `scan`.
pub const ENV_EXEMPTIONS: &str = "EKS_WARDEN_EXEMPTIONS";
/// A file holding the list, for the CLI (`--exemptions FILE`); it takes the place of the parameter.
pub const ENV_EXEMPTIONS_FILE: &str = "EKS_WARDEN_EXEMPTIONS_FILE";

/// How long a warm Lambda container reuses the list it read: edits apply within a minute, and a storm
/// of invocations makes one GetParameter a minute, not one each.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Today in UTC, from the system clock.
pub fn today() -> Day {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Day::from_unix_days((secs / 86_400) as i64)
}

/// Reads and validates a list from a file.
pub fn from_file(path: &str, today: Day) -> Result<Exemptions, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("exemption list {path}: {e}"))?;
    Exemptions::parse(&format!("exemption list {path}"), &text, today)
}

/// Reads and validates a list from an SSM parameter (a `String` or `SecureString` holding the JSON).
pub async fn from_ssm(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    today: Day,
) -> Result<Exemptions, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "exemption list {}",
                crate::collect::error_line(&format!("ssm:GetParameter {name}"), &e)
            )
        })?;
    let text = out
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| format!("exemption list ssm:{name}: the parameter has no value"))?;
    Exemptions::parse(&format!("exemption list ssm:{name}"), text, today)
}

/// The Lambda's list: read once per invocation at most, reused for [`CACHE_TTL`] by a warm container.
/// A read or validation failure is never cached, so the next invocation tries again.
pub struct SsmList {
    pub parameter: String,
    ssm: aws_sdk_ssm::Client,
    cached: Mutex<Option<(Instant, Exemptions)>>,
}

impl SsmList {
    pub fn new(ssm: aws_sdk_ssm::Client, parameter: String) -> Self {
        SsmList {
            parameter,
            ssm,
            cached: Mutex::new(None),
        }
    }

    /// The list judged on `today` (the date is applied afresh even to a cached list).
    pub async fn get(&self, today: Day) -> Result<Exemptions, String> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, list)) = cached.as_ref() {
                if at.elapsed() < CACHE_TTL {
                    return Ok(Exemptions {
                        today,
                        ..list.clone()
                    });
                }
            }
        }
        let list = from_ssm(&self.ssm, &self.parameter, today).await?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }
}

/// Where a long-running handler reads the list from.
pub enum Source {
    /// `EKS_WARDEN_EXEMPTIONS`: an SSM parameter, cached briefly.
    Ssm(SsmList),
    /// `EKS_WARDEN_EXEMPTIONS_FILE`: a file, read afresh each time (`eks-warden handle` on a laptop).
    File(String),
}

impl Source {
    /// The configured source; the file wins, as it does for `scan`. A parameter name that SSM could never
    /// accept is refused at start, naming the variable.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        ssm: impl FnOnce() -> aws_sdk_ssm::Client,
    ) -> Result<Option<Source>, String> {
        let set = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(path) = set(ENV_EXEMPTIONS_FILE) {
            return Ok(Some(Source::File(path)));
        }
        let Some(name) = set(ENV_EXEMPTIONS) else {
            return Ok(None);
        };
        if !is_parameter_name(&name) {
            return Err(format!(
                "{ENV_EXEMPTIONS}: {name:?} is not an SSM parameter name or ARN (letters, digits, `_.-/`)"
            ));
        }
        Ok(Some(Source::Ssm(SsmList::new(ssm(), name))))
    }

    pub async fn get(&self, today: Day) -> Result<Exemptions, String> {
        match self {
            Source::Ssm(list) => list.get(today).await,
            Source::File(path) => from_file(path, today),
        }
    }
}

/// An SSM parameter name (`/a/b`, `a.b`) or ARN (`arn:aws:ssm:REGION:ACCOUNT:parameter/a/b`).
pub fn is_parameter_name(v: &str) -> bool {
    let name = match v.strip_prefix("arn:") {
        Some(rest) => match rest.split_once(":parameter/") {
            Some((_, name)) => name,
            None => return false,
        },
        None => v,
    };
    !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names() {
        for ok in [
            "/eks-warden/exemptions",
            "exemptions",
            "arn:aws:ssm:eu-west-1:111122223333:parameter/eks-warden/x",
        ] {
            assert!(is_parameter_name(ok), "{ok}");
        }
        for bad in ["", "my list", "arn:aws:s3:::bucket", "/a/b?x"] {
            assert!(!is_parameter_name(bad), "{bad}");
        }
    }
}
