//! The Lambda entry point (`provided.al2023`): settings and clients built once, then one handler call per event.

use eks_warden::handler::{lambda_response_until, Context};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Honours AWS_LAMBDA_LOG_LEVEL and AWS_LAMBDA_LOG_FORMAT=JSON.
    lambda_runtime::tracing::init_default_subscriber();
    // Every AWS call is bounded (EKS_WARDEN_CALL_TIMEOUT_SECONDS, EKS_WARDEN_ATTEMPT_TIMEOUT_SECONDS).
    let config =
        eks_warden::timeouts::load_config(None, eks_warden::timeouts::from_env(None)?).await;
    let ctx = Context::from_env(&config)?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // arn:aws:lambda:REGION:ACCOUNT:function:NAME names the function's own account for free.
        if let Some(account) = event
            .context
            .invoked_function_arn
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty())
        {
            let _ = ctx.home_account.set(account.to_string());
        }
        // The invocation's deadline (epoch milliseconds): work that cannot finish by then is handed back.
        let deadline =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(event.context.deadline);
        lambda_response_until(ctx, &event.payload, Some(deadline))
            .await
            .map_err(Error::from)
    }))
    .await
}
