//! The `event-delivery` Lambda: configuration and clients are built once; each SQS batch of
//! delivery jobs goes to the shared deliverer, which signs and POSTs each job and answers
//! `{"batchItemFailures":[…]}` so only the failed jobs come back (after their backoff).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::notify::EventsApp::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        telemeet::notify::deliver::handle(app, &event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
