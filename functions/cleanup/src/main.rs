//! The `cleanup` Lambda, run weekly by EventBridge and fed work messages by its SQS FIFO
//! mapping: configuration and clients are built once; each event goes to the shared
//! cleanup, which stops before the deadline.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use telemeet::cleanup::fanout::{SqsWorkQueue, WorkQueue};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::App::from_env().await?;
    let settings = telemeet::cleanup::CleanupSettings::from_env()?;
    let queue = SqsWorkQueue::from_env().await?;
    let (app, settings) = (&app, &settings);
    let queue = queue.as_ref().map(|q| q as &dyn WorkQueue);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = telemeet::cleanup::deadline_of(&event.context, app.service.clock.as_ref());
        telemeet::cleanup::fanout::handle(app, settings, queue, &event.payload, deadline)
            .await
            .map_err(|e| Error::from(e.to_string()))
    }))
    .await
}
