//! The `org-admin` Lambda: configuration and clients are built once, then every request goes to
//! the shared handler (provider connections, org settings and the host directory, `/org/...`).

use lambda_http::{Error, Request, run, service_fn};
use telemeet::http::{handle, router::Function};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemeet::telemetry::init();
    let app = telemeet::App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| {
        handle(app, Function::OrgAdmin, req)
    }))
    .await
}
