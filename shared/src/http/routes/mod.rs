//! One file per group of routes, one handler per route: parse what the route needs, call
//! the service, shape the answer.

pub mod links;
pub mod meetings;
pub mod org;
pub mod stats;
pub mod subjects;
pub mod subscriptions;
pub mod users;

use super::error::ApiError;
use crate::ids::MeetingId;

/// The path's meeting id.
fn meeting_id(raw: &str) -> Result<MeetingId, ApiError> {
    Ok(MeetingId::parse(raw, "meetingId")?)
}

/// The `limit` query parameter: 1 to `max`, `default` when absent.
fn limit(
    ctx: &crate::http::Ctx<'_>,
    default: usize,
    max: usize,
) -> Result<usize, crate::domain::Invalid> {
    match ctx.query("limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or(crate::domain::Invalid::new(
                "limit",
                "must be a whole number from 1 to the page's maximum",
            )),
    }
}
