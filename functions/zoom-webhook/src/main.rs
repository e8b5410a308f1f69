//! The `zoom-webhook` Lambda: configuration and clients are built once; every delivery is
//! handed, as the raw API Gateway event, to the shared webhook handler (it verifies the
//! signature on the exact bytes, so it reads the body itself).

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::App::from_env().await?;
    let app = &app;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, std::convert::Infallible>(
                telemeet::http::webhook::handle(app, event.payload, event.context).await,
            )
        },
    ))
    .await
}
