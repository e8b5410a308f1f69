//! One file per group of routes, one handler per route: parse what the route needs, call
//! the service, shape the answer.

pub mod links;
pub mod meetings;
pub mod org;
pub mod stats;
pub mod subjects;
pub mod users;

use super::error::ApiError;
use crate::ids::MeetingId;

/// The path's meeting id.
fn meeting_id(raw: &str) -> Result<MeetingId, ApiError> {
    Ok(MeetingId::parse(raw, "meetingId")?)
}
