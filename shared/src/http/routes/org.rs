//! `/org/providers`, `/org/settings`, `/org/hosts`: the caller's own org (service, admin).
//! Answers never carry a secret: connections answer their public ids only.

use crate::domain::org_request;
use crate::domain::request::parse_object;
use crate::domain::{Connection, HostEntry, Invalid, ProviderKind, rfc3339_millis};
use crate::http::error::ApiError;
use crate::http::{Ctx, json};
use crate::ids::UserId;
use crate::service::org::EffectiveSettings;
use crate::store::keys::HOST_SK_PREFIX;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

fn provider(raw: &str) -> Result<ProviderKind, ApiError> {
    raw.parse()
        .map_err(|_| Invalid::new("provider", "must be one of zoom, jitsi, zoho").into())
}

fn connection(c: &Connection) -> Value {
    let mut v = json!({
        "provider": c.provider.as_str(),
        "configured": true,
        "verifiedAt": rfc3339_millis(c.verified_at),
    });
    for (k, id) in &c.ids {
        v[k] = id.clone();
    }
    v
}

fn settings(s: &EffectiveSettings, org: &str) -> Value {
    json!({
        "orgId": org,
        "provider": s.provider.as_str(),
        "fallbackProvider": s.fallback.map(ProviderKind::as_str),
        "conversationReuseSeconds": s.conversation_reuse_seconds,
        "noShowGraceMinutes": s.no_show_grace_minutes,
        "updatedAt": s.updated_at.map(rfc3339_millis),
    })
}

fn host(h: &HostEntry) -> Value {
    json!({
        "userId": h.user.as_str(),
        "zoomUser": h.zoom_user,
        "zohoPresenter": h.zoho_presenter,
        "updatedAt": rfc3339_millis(h.updated_at),
    })
}

/// `PUT /org/providers/{provider}`: checked with the provider, then stored.
pub async fn put_provider(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let kind = provider(ctx.id)?;
    let request = org_request::connection(kind, &parse_object(ctx.body())?)?;
    let stored = ctx
        .app
        .service
        .put_connection(&ctx.caller, request, ctx.deadline)
        .await?;
    Ok(json(200, &connection(&stored)))
}

pub async fn list_providers(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let all = ctx.app.service.connections(&ctx.caller).await?;
    let list: Vec<Value> = all.iter().map(connection).collect();
    Ok(json(200, &json!({ "providers": list })))
}

pub async fn delete_provider(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let kind = provider(ctx.id)?;
    ctx.app.service.delete_connection(&ctx.caller, kind).await?;
    Ok(json(
        200,
        &json!({ "provider": kind.as_str(), "configured": false }),
    ))
}

pub async fn get_settings(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let s = ctx.app.service.org_settings(&ctx.caller).await?;
    Ok(json(200, &settings(&s, ctx.caller.org.as_str())))
}

pub async fn put_settings(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let wanted = org_request::settings(&parse_object(ctx.body())?)?;
    let s = ctx
        .app
        .service
        .put_org_settings(&ctx.caller, wanted)
        .await?;
    Ok(json(200, &settings(&s, ctx.caller.org.as_str())))
}

fn user(raw: &str) -> Result<UserId, ApiError> {
    Ok(UserId::parse(raw, "userId")?)
}

pub async fn put_host(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let user = user(ctx.id)?;
    let users = org_request::host(&parse_object(ctx.body())?)?;
    let entry = ctx.app.service.put_host(&ctx.caller, user, users).await?;
    Ok(json(200, &host(&entry)))
}

pub async fn get_host(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let entry = ctx.app.service.host(&ctx.caller, &user(ctx.id)?).await?;
    Ok(json(200, &host(&entry)))
}

pub async fn delete_host(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let entry = ctx
        .app
        .service
        .delete_host(&ctx.caller, &user(ctx.id)?)
        .await?;
    Ok(json(200, &host(&entry)))
}

/// `GET /org/hosts?limit=&cursor=`: by user id; the cursor is the last user id answered.
pub async fn list_hosts(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let limit = super::limit(ctx, DEFAULT_PAGE, MAX_PAGE)?;
    let cursor = ctx
        .query("cursor")
        .map(|c| UserId::parse(c, "cursor").map(|u| format!("{HOST_SK_PREFIX}{u}")))
        .transpose()?;
    let (hosts, next) = ctx.app.service.hosts(&ctx.caller, limit, cursor).await?;
    let next = next.and_then(|sk| sk.strip_prefix(HOST_SK_PREFIX).map(str::to_owned));
    let list: Vec<Value> = hosts.iter().map(host).collect();
    Ok(json(200, &json!({ "hosts": list, "nextCursor": next })))
}
