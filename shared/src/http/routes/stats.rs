//! `GET /stats`.

use crate::http::error::ApiError;
use crate::http::{Ctx, json, resource};
use lambda_http::{Body, Response};

pub async fn get(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let stats = ctx.app.service.stats(&ctx.caller).await?;
    Ok(json(200, &resource::stats(&stats)))
}
