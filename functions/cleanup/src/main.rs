//! The `cleanup` Lambda, run weekly by EventBridge: configuration and clients are built
//! once; each scheduled event goes to the shared cleanup, which stops before the deadline.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::App::from_env().await?;
    let settings = telemeet::cleanup::CleanupSettings::from_env()?;
    let (app, settings) = (&app, &settings);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = telemeet::cleanup::deadline_of(&event.context, app.service.clock.as_ref());
        telemeet::cleanup::run(app, settings, &event.payload, deadline)
            .await
            .map_err(|e| Error::from(e.to_string()))
    }))
    .await
}
