//! `/org/webhooks`: the caller's own org's event subscriptions (service, admin). The
//! signing secret is in the create's and the rotation's answers only, never in a list.

use crate::domain::request::parse_object;
use crate::domain::subscription::{self, Subscription};
use crate::domain::{rfc3339, rfc3339_millis};
use crate::http::error::ApiError;
use crate::http::{Ctx, json};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

fn subscription(s: &Subscription) -> Value {
    json!({
        "id": s.id,
        "url": s.url,
        "events": s.events,
        "createdAt": rfc3339_millis(s.created_at),
        "disabledAt": s.disabled_at.map(rfc3339_millis),
    })
}

/// `POST /org/webhooks`: 201, `Location`, and the secret (this once).
pub async fn create(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let request = subscription::request(&parse_object(ctx.body())?)?;
    let made = ctx
        .app
        .service
        .create_subscription(&ctx.caller, request)
        .await?;
    let mut body = subscription(&made.subscription);
    body["secret"] = json!(made.secret);
    let mut response = json(201, &body);
    let location = format!("/org/webhooks/{}", made.subscription.id);
    if let Ok(v) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(response)
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let all = ctx.app.service.subscriptions(&ctx.caller).await?;
    let list: Vec<Value> = all.iter().map(subscription).collect();
    Ok(json(200, &json!({ "webhooks": list })))
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.app
        .service
        .delete_subscription(&ctx.caller, ctx.id)
        .await?;
    Ok(json(200, &json!({ "id": ctx.id, "deleted": true })))
}

/// `POST /org/webhooks/{id}/rotate`: the new secret; the old one signs beside it a day.
pub async fn rotate(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let r = ctx
        .app
        .service
        .rotate_subscription(&ctx.caller, ctx.id)
        .await?;
    Ok(json(
        200,
        &json!({
            "id": r.id,
            "secret": r.secret,
            "previousSecretValidUntil": rfc3339(r.previous_valid_until),
        }),
    ))
}
