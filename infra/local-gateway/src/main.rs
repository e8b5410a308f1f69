//! `local-gateway`: the HTTP API on 127.0.0.1:$PORT (default 3000) with the production
//! paths, routed to the Lambda handler code. Reads the same configuration as the functions.

use local_gateway::template::{TEMPLATE, ensure_table, is_loopback_endpoint, table_definition};
use std::process::ExitCode;
use std::sync::Arc;
use telemeet::app::{App, Clients};
use telemeet::clock::SystemClock;
use telemeet::config::Config;
use telemeet::ids::RandomIds;
use telemeet::service::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    telemeet::telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(cause = %e, "local-gateway stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| "PORT must be a port number".to_owned())?,
        Err(_) => 3000,
    };
    let config = Config::from_env()?;
    let clients = Clients::from_env().await?;
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
        && is_loopback_endpoint(&endpoint)
    {
        let def = table_definition(TEMPLATE)?;
        if ensure_table(&clients.dynamodb, &config.table_name, &def).await? {
            tracing::info!(table = %config.table_name, "created the table from template.yaml");
        }
    }
    let mut settings = Settings {
        // The local stack's receivers listen on loopback http. Set here, in code, never from
        // the environment: a Lambda cannot be configured into this.
        events_local_mode: telemeet::notify::ssrf::LocalMode(true),
        ..Settings::default()
    };
    // Local only: a loaded test machine may need longer than a Lambda would wait.
    if let Ok(v) = std::env::var("LOCAL_CLAIM_WAIT_SECONDS") {
        let secs = v
            .parse()
            .map_err(|_| "LOCAL_CLAIM_WAIT_SECONDS must be whole seconds".to_owned())?;
        settings.claim_wait = std::time::Duration::from_secs(secs);
    }
    let app = Arc::new(App::build(
        &config,
        clients,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        settings,
    ));
    let events = local_events(&config, &app).await?;
    let cleanup = Arc::new(local_gateway::LocalCleanup {
        settings: telemeet::cleanup::CleanupSettings::from_env()?,
        queue: cleanup_queue(&config).await?,
    });
    let listener = local_gateway::bind(port)
        .await
        .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(url = %format!("http://{addr}"), "listening");
    let demo = local_gateway::demo::Demo::from_env(&format!("http://{addr}"));
    if let Some(events) = &events
        && std::env::var("LOCAL_DEMO_TOKENS").is_ok()
    {
        demo.subscribe(events, app.service.orgs.parts().writer.as_ref())
            .await?;
    }
    let demo = Arc::new(demo);
    if let Some(events) = &events {
        tokio::spawn(events.clone().run());
    }
    tokio::select! {
        served = local_gateway::serve(listener, app, cleanup, demo, events) => served.map_err(|e| e.to_string()),
        _ = shutdown() => Ok(()),
    }
}

/// The platform's events, run in-process against moto (`LOCAL_EVENTS=off` leaves them
/// out). `LOCAL_EVENT_RETRY_SECONDS` (e.g. `1,1,1`) shortens the retry schedule locally.
/// They share the app's stores, secret source and clock.
async fn local_events(
    config: &Config,
    app: &App,
) -> Result<Option<Arc<local_gateway::events::LocalEvents>>, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !is_loopback_endpoint(&endpoint) || std::env::var("LOCAL_EVENTS").is_ok_and(|v| v == "off") {
        return Ok(None);
    }
    let mut settings = telemeet::notify::EventSettings {
        secrets_prefix: config.org_secrets_prefix.clone(),
        ..Default::default()
    };
    if let Ok(v) = std::env::var("LOCAL_EVENT_RETRY_SECONDS") {
        settings.retry_schedule = v
            .split(',')
            .map(|s| s.trim().parse().map(std::time::Duration::from_secs))
            .collect::<Result<_, _>>()
            .map_err(|_| {
                "LOCAL_EVENT_RETRY_SECONDS must be whole seconds, comma-separated".to_owned()
            })?;
    }
    let aws = telemeet::tls::aws::loader()?.load().await;
    let service = &app.service;
    let parts = (service.stores.clone(), service.orgs.parts().secrets.clone());
    let events = local_gateway::events::LocalEvents::new(
        &aws,
        &endpoint,
        &config.table_name,
        settings,
        parts,
        service.clock.clone(),
    )
    .await?;
    Ok(Some(Arc::new(events)))
}

/// The cleanup's FIFO work queue on moto, when the stack is local.
async fn cleanup_queue(
    config: &Config,
) -> Result<Option<local_gateway::cleanup::LocalCleanupQueue>, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !is_loopback_endpoint(&endpoint) {
        return Ok(None);
    }
    let aws = telemeet::tls::aws::loader()?.load().await;
    local_gateway::cleanup::LocalCleanupQueue::create(&aws, &config.table_name)
        .await
        .map(Some)
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
