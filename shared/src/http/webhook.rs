//! The Zoom webhook (guarantee 3): the public, unauthenticated door of the service. It takes
//! the raw API Gateway event (not a `lambda_http::Request`), so it decodes base64 bodies
//! itself, verifies the signature on the exact bytes (`crate::providers::zoom::webhook`)
//! and never panics on bad input. Any failure to verify answers one uniform 401 and writes
//! nothing; a verified event goes to the service, parsed by the Zoom adapter.

use super::MAX_BODY_BYTES;
use super::envelope::{Reply, enveloped, record_route};
use super::error::{ApiError, ErrorCode};
use super::router::{Function, Route};
use crate::App;
use crate::domain::Invalid;
use crate::domain::org::EventScope;
use crate::ids::OrgId;
use crate::providers::zoom::events::{self, Delivery};
use crate::providers::zoom::webhook::WebhookSecrets;
use crate::providers::zoom::webhook::{Refusal, encrypted_token, verify};
use crate::service::EventOutcome;
use base64::Engine;
use lambda_http::Context;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use serde_json::{Value, json};
use std::sync::Arc;

/// The webhook's path (the deployment's Zoom app).
pub const PATH: &str = "/webhooks/zoom";
/// An org's own Zoom app posts to this prefix and its org id.
pub const ORG_PATH_PREFIX: &str = "/webhooks/zoom/";

/// The `zoom-webhook` function's handler (and the local gateway's for its path).
pub async fn handle(
    app: &App,
    event: ApiGatewayV2httpRequest,
    context: Context,
) -> ApiGatewayV2httpResponse {
    let request_id = event
        .request_context
        .request_id
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or(context.request_id);
    let clock = app.service.clock.as_ref();
    enveloped(
        clock,
        Function::ZoomWebhook.name(),
        &request_id,
        receive(app, &event),
    )
    .await
}

fn refused(reason: Refusal) -> ApiError {
    tracing::warn!(reason = ?reason, "webhook delivery refused");
    crate::metrics::count("WebhookRejected", &[]);
    ApiError::new(
        ErrorCode::Unauthenticated,
        "Webhook signature verification failed",
    )
}

/// The exact bytes received: a base64 body decoded (bad base64 is refused), either form
/// over the limit 413.
fn raw_body(event: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, ApiError> {
    let raw = event.body.as_deref().unwrap_or_default();
    // A base64 body is at most 4/3 of the decoded size.
    if raw.len() > MAX_BODY_BYTES * 4 / 3 + 4
        || (!event.is_base64_encoded && raw.len() > MAX_BODY_BYTES)
    {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let body = if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| refused(Refusal::BadEncoding))?
    } else {
        raw.as_bytes().to_vec()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refused(Refusal::EmptyBody));
    }
    Ok(body)
}

/// Whose Zoom app the path names: the deployment's, or one org's own.
fn scope(event: &ApiGatewayV2httpRequest) -> Result<EventScope, ApiError> {
    let path = event.raw_path.as_deref().unwrap_or_default();
    if path == PATH {
        record_route(Route::ZoomWebhook.template());
        return Ok(EventScope::Deployment);
    }
    record_route(Route::OrgZoomWebhook.template());
    path.strip_prefix(ORG_PATH_PREFIX)
        .and_then(|id| OrgId::parse(id, "orgId").ok())
        .map(EventScope::Org)
        .ok_or_else(|| ApiError::not_found("Route"))
}

/// The secret tokens that may sign deliveries for `scope`. An org without a Zoom
/// connection (or whose secret cannot be read) has none: a uniform 401. The table says
/// first whether the org has one, so a flood of made-up org ids costs one cheap read each,
/// never a Secrets Manager call, and a removed connection stops verifying at once.
async fn secrets(app: &App, scope: &EventScope) -> Result<Arc<WebhookSecrets>, ApiError> {
    if let EventScope::Org(org) = scope {
        let (profile, _) = app.service.stores.orgs.org_view(org, None).await?;
        if profile
            .connection(crate::domain::ProviderKind::Zoom)
            .is_none()
        {
            return Err(refused(Refusal::NoSecret));
        }
    }
    match scope {
        EventScope::Deployment => {
            let cache = app.webhook.as_ref().ok_or_else(|| {
                ApiError::misconfigured("ZOOM_WEBHOOK_SECRET_ID is not configured")
            })?;
            match cache.get().await {
                Ok(secrets) => Ok(secrets),
                // A placeholder or guessable token verifies nothing: every delivery is
                // refused until it is set (the secret cache has logged why).
                Err(crate::secrets::SecretError::Invalid { .. }) => {
                    Err(refused(Refusal::NoSecret))
                }
                Err(e) => Err(e.into()),
            }
        }
        EventScope::Org(org) => app
            .service
            .orgs
            .webhook_secrets(org)
            .get()
            .await
            .map_err(|e| {
                tracing::warn!(cause = %crate::telemetry::cause(&e), "no webhook secret for this org");
                refused(Refusal::NoSecret)
            }),
    }
}

async fn receive(
    app: &App,
    event: &ApiGatewayV2httpRequest,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let scope = scope(event)?;
    if event.request_context.http.method != http::Method::POST {
        return Err(ApiError::method_not_allowed(&["POST"]));
    }
    let body = raw_body(event)?;
    let secrets = secrets(app, &scope).await?;
    let signed_with =
        verify(&secrets, &event.headers, &body, app.service.clock.now()).map_err(refused)?;
    let delivery: Value =
        serde_json::from_slice(&body).map_err(|_| Invalid::new("body", "is not valid JSON"))?;
    if delivery["event"] == "endpoint.url_validation" {
        let plain = delivery["payload"]["plainToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or(Invalid::new("payload.plainToken", "is required"))?;
        // Hashed with the token that signed the request: during a rotation Zoom may still
        // sign with the previous one, and checks the answer with that same token.
        let answer =
            json!({ "plainToken": plain, "encryptedToken": encrypted_token(signed_with, plain) });
        return Ok(ApiGatewayV2httpResponse::json(200, &answer));
    }
    let outcome = match events::parse(&delivery) {
        Delivery::Event(e) => app.service.provider_event(&e, &scope).await?,
        Delivery::Ignored => EventOutcome::Ignored,
        Delivery::NoMeeting => EventOutcome::NotOurs,
    };
    Ok(ApiGatewayV2httpResponse::json(
        200,
        &json!({ "status": outcome.as_str() }),
    ))
}
