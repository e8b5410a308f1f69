//! The `manage-meeting` Lambda: configuration and clients are built once, then every request goes
//! to the shared handler.

use lambda_http::{Error, Request, run, service_fn};
use telemeet::http::{handle, router::Function};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| {
        handle(app, Function::ManageMeeting, req)
    }))
    .await
}
