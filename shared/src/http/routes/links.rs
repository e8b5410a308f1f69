//! `GET /meetings/{meetingId}/link?role=host|participant`.

use super::meeting_id;
use crate::domain::{Invalid, LinkRole};
use crate::http::error::ApiError;
use crate::http::{Ctx, json, resource};
use lambda_http::{Body, RequestExt, Response};

/// The caller's link; `role` defaults to their own.
pub async fn get(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let id = meeting_id(ctx.id)?;
    let role = match ctx
        .req
        .query_string_parameters_ref()
        .and_then(|p| p.first("role"))
    {
        None => None,
        Some("host") => Some(LinkRole::Host),
        Some("participant") => Some(LinkRole::Participant),
        Some(_) => return Err(Invalid::new("role", "must be host or participant").into()),
    };
    let link = ctx
        .app
        .service
        .link(&ctx.caller, &id, role, ctx.deadline)
        .await?;
    Ok(json(200, &resource::link(&link)))
}
