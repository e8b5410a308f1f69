//! `GET|PATCH|DELETE /meetings/{meetingId}`, `POST /meetings/{meetingId}/start|end`.

use super::meeting_id;
use crate::domain::request::RescheduleRequest;
use crate::http::error::ApiError;
use crate::http::{Ctx, json, resource};
use lambda_http::{Body, Response};

pub async fn get(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let meeting = ctx
        .app
        .service
        .meeting(&ctx.caller, &meeting_id(ctx.id)?)
        .await?;
    Ok(json(200, &resource::meeting(&meeting)))
}

/// Reschedules: the provider first, then the record.
pub async fn patch(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let id = meeting_id(ctx.id)?;
    let changes = RescheduleRequest::parse(ctx.body())?;
    let meeting = ctx
        .app
        .service
        .reschedule(&ctx.caller, &id, &changes, ctx.deadline)
        .await?;
    Ok(json(200, &resource::meeting(&meeting)))
}

pub async fn cancel(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let meeting = ctx
        .app
        .service
        .cancel(&ctx.caller, &meeting_id(ctx.id)?, ctx.deadline)
        .await?;
    Ok(json(200, &resource::meeting(&meeting)))
}

pub async fn start(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let meeting = ctx
        .app
        .service
        .start(&ctx.caller, &meeting_id(ctx.id)?, ctx.deadline)
        .await?;
    Ok(json(200, &resource::meeting(&meeting)))
}

pub async fn end(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let meeting = ctx
        .app
        .service
        .end(&ctx.caller, &meeting_id(ctx.id)?, ctx.deadline)
        .await?;
    Ok(json(200, &resource::meeting(&meeting)))
}
