//! The Lambda entry point (`provided.al2023`): settings and clients built once, then one handler call per event.

use eks_warden::handler::{lambda_response, Context};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Honours AWS_LAMBDA_LOG_LEVEL and AWS_LAMBDA_LOG_FORMAT=JSON.
    lambda_runtime::tracing::init_default_subscriber();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
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
        lambda_response(ctx, &event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
