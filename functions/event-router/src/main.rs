//! The `event-router` Lambda: configuration and clients are built once; each invocation is
//! either a batch of the table's stream records (turned into delivery jobs on the queue) or
//! the every-minute no-show sweep (EventBridge Scheduler), both handled by the shared router.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::notify::EventsApp::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A stream batch answers {"batchItemFailures":[…]}: only the failed records are retried.
        telemeet::notify::route::handle(app, &event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
