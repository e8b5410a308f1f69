//! `PUT|GET /appointments/{appointmentId}/meeting`, `PUT|GET /conversations/{conversationId}/meeting`.

use crate::domain::request::AppointmentMeetingRequest;
use crate::domain::{Subject, SubjectKind};
use crate::http::error::ApiError;
use crate::http::{Ctx, json, resource};
use crate::ids::SubjectId;
use lambda_http::{Body, Response};

fn subject(kind: SubjectKind, raw: &str) -> Result<Subject, ApiError> {
    let field = match kind {
        SubjectKind::Appointment => "appointmentId",
        SubjectKind::Conversation => "conversationId",
    };
    Ok(Subject {
        kind,
        id: SubjectId::parse(raw, field)?,
    })
}

/// Creates the subject's meeting (201 + `Location`) or answers the one it has (200).
pub async fn put(ctx: &Ctx<'_>, kind: SubjectKind) -> Result<Response<Body>, ApiError> {
    let service = &ctx.app.service;
    let subject = subject(kind, ctx.id)?;
    let body = match kind {
        SubjectKind::Appointment => AppointmentMeetingRequest::parse(ctx.body())?,
        SubjectKind::Conversation => AppointmentMeetingRequest::parse_conversation(
            ctx.body(),
            service.clock.now(),
            service.settings.conversation_reuse,
        )?,
    };
    let out = service
        .provision(&ctx.caller, &subject, &body, ctx.deadline)
        .await?;
    let mut response = json(
        if out.created { 201 } else { 200 },
        &resource::meeting(&out.meeting),
    );
    if out.created
        && let Ok(v) = http::HeaderValue::from_str(&format!("/meetings/{}", out.meeting.id))
    {
        response.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(response)
}

/// The subject's meeting, if it has one the caller may see.
pub async fn get(ctx: &Ctx<'_>, kind: SubjectKind) -> Result<Response<Body>, ApiError> {
    let subject = subject(kind, ctx.id)?;
    let meeting = ctx
        .app
        .service
        .meeting_for_subject(&ctx.caller, &subject)
        .await?;
    Ok(json(200, &resource::meeting(&meeting)))
}
