//! `GET /users/{userId}/meetings?status=&from=&to=&limit=&cursor=`.

use crate::domain::request::parse_time;
use crate::domain::{Invalid, MeetingStatus};
use crate::http::error::ApiError;
use crate::http::{Ctx, json, resource};
use crate::ids::UserId;
use crate::service::PageRequest;
use lambda_http::{Body, Response};

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

pub async fn meetings(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let page = ctx
        .app
        .service
        .user_meetings(&ctx.caller, &page_request(ctx)?)
        .await?;
    Ok(json(200, &resource::page(&page)))
}

/// `status` (comma-separated), `from`, `to` (RFC 3339 start times), `limit` (1–100,
/// default 20), `cursor`.
fn page_request(ctx: &Ctx<'_>) -> Result<PageRequest, Invalid> {
    let statuses = match ctx.query("status") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                s.trim().parse::<MeetingStatus>().map_err(|()| {
                    Invalid::new("status", "must be meeting statuses, comma-separated")
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let time = |k: &'static str| {
        ctx.query(k)
            .map(|v| parse_time(&serde_json::Value::String(v.to_owned()), k))
            .transpose()
    };
    let limit = super::limit(ctx, DEFAULT_PAGE, MAX_PAGE)?;
    let (from, to) = (time("from")?, time("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(Invalid::new("from", "must not be after to"));
    }
    Ok(PageRequest {
        user: UserId::parse(ctx.id, "userId")?,
        statuses,
        from,
        to,
        limit,
        cursor: ctx.query("cursor").map(str::to_owned),
    })
}
