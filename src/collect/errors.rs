//! How an AWS error ends a read: unreadable data (recorded as `Unknown`, the evaluation goes on) or a
//! failure that stops the evaluation (throttling after the SDK's retries, 5xx, network).

use super::CollectError;
use crate::model::{Fact, Unreadable};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes that mean "this caller may not read this", or "this API is not offered here":
/// the data becomes unknown, the evaluation goes on.
fn is_unreadable_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException"
            | "UnsupportedOperation"
            | "InvalidAction"
            | "OptInRequired"
            | "NotAuthorized"
    )
}

pub(super) enum Failure {
    /// Record as unknown and go on.
    Unreadable(Unreadable),
    /// Stop this evaluation.
    Fatal(CollectError),
}

pub(super) fn classify<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string);
    // An endpoint without the API (an emulator, a partition where it is not launched yet, a proxy)
    // answers a client error whose body is no AWS error at all, typically a 404 page. Retrying cannot
    // change that: the data is unknown, the evaluation goes on. (Server errors stay fatal: transient.)
    let status = err.raw_response().map(|r| r.status().as_u16());
    if let (None, Some(status @ 400..=499)) = (&code, status) {
        return Failure::Unreadable(if status == 404 {
            Unreadable::new(
                "NotImplemented",
                format!("{op} is not offered by this endpoint (HTTP 404 without an AWS error)"),
            )
        } else {
            Unreadable::new(
                "UnrecognizedResponse",
                format!("{op} answered HTTP {status} without an AWS error code"),
            )
        });
    }
    let message = err
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| one_line(&DisplayErrorContext(&err).to_string()));
    match code {
        Some(code) if is_unreadable_code(&code) => {
            Failure::Unreadable(Unreadable::new(code, message))
        }
        code => Failure::Fatal(CollectError::Aws {
            op,
            code: code.unwrap_or_else(|| transport_code(&err).to_string()),
            message,
        }),
    }
}

/// Unreadable becomes an `Unknown` fact; anything else stops the evaluation.
pub(super) fn unreadable_or_fatal<T, E>(
    op: &'static str,
    e: SdkError<E, HttpResponse>,
) -> Result<Fact<T>, CollectError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(op, e) {
        Failure::Unreadable(u) => Ok(Fact::Unknown(u)),
        Failure::Fatal(f) => Err(f),
    }
}

/// Where even unreadable is fatal (the cluster itself, the region's cluster list).
pub(super) fn fatal<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> CollectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(op, e) {
        Failure::Fatal(f) => f,
        Failure::Unreadable(u) => CollectError::Aws {
            op,
            code: u.code,
            message: u.message,
        },
    }
}

pub(super) fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

fn transport_code<E, R>(err: &SdkError<E, R>) -> &'static str {
    match err {
        SdkError::TimeoutError(_) => "Timeout",
        SdkError::DispatchFailure(_) => "ConnectionFailure",
        SdkError::ResponseError(_) => "UnreadableResponse",
        SdkError::ConstructionFailure(_) => "RequestConstruction",
        _ => "Unknown",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One readable line for an SDK error: `OP: Code: message` when AWS said what went wrong, else the
/// transport's kind and the error chain on one line (never the raw response dump).
pub fn error_line<E, R>(op: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{op}: {code}: {message}"),
        (Some(code), None) => format!("{op}: {code}"),
        _ => format!(
            "{op}: {}: {}",
            transport_code(err),
            one_line(&DisplayErrorContext(err).to_string())
        ),
    }
}
