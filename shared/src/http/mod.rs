//! HTTP in and out: one entry point for every function and the local gateway.

pub mod router;

use crate::App;
use crate::domain::MeetingStatus;
use crate::domain::request::{AppointmentMeetingRequest, RescheduleRequest, parse_time};
use crate::domain::{LinkRole, Subject, SubjectKind};
use crate::error::ApiError;
use crate::ids::UserId;
use crate::ids::{MeetingId, SubjectId};
use crate::service::PageRequest;
use crate::service::manage::stats_json;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use router::{Function, Route};
use serde_json::Value;
use std::time::{Duration, Instant};
use tracing::Instrument;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

/// Bodies over this size answer 413 (DESIGN.md).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time kept back from the Lambda deadline for answering.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
/// A request's time budget when no Lambda deadline is known.
const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

/// Handles one API request for `function`. Never fails: every error becomes the contract's
/// error body, and internal causes are logged, not sent.
pub async fn handle(
    app: &App,
    function: Function,
    req: Request,
) -> Result<Response<Body>, std::convert::Infallible> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        requestId = %request_id,
        function = function.name(),
        route = tracing::field::Empty,
    );
    async move {
        let result = dispatch(app, function, req).await;
        let response = match result {
            Ok(ok) => ok,
            Err(err) => {
                if err.code.status() >= 500 {
                    tracing::error!(
                        code = err.code.as_str(),
                        cause = err.cause.as_deref().unwrap_or(""),
                        "request failed"
                    );
                } else if let Some(cause) = &err.cause {
                    tracing::warn!(
                        code = err.code.as_str(),
                        cause = cause.as_str(),
                        "request refused"
                    );
                }
                error_response(&err, &app.service.clock.now(), &request_id)
            }
        };
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            outcome = if response.status().is_success() {
                "ok"
            } else {
                "error"
            },
            "request done"
        );
        Ok(response)
    }
    .instrument(span)
    .await
}

async fn dispatch(app: &App, function: Function, req: Request) -> Result<Response<Body>, ApiError> {
    let route = router::route(req.method(), req.raw_http_path())?;
    tracing::Span::current().record("route", route.template());
    // The webhook has its own entry point (crate::webhook), taking the raw event.
    if route.owner() != function || route == Route::ZoomWebhook {
        // API Gateway never sends another function's route; refuse it like an unknown path.
        return Err(ApiError::not_found("Route"));
    }
    let body = body_bytes(req.body());
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let context = req.request_context_ref();
    let authorizer_claims = match &context {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    let caller = app
        .auth
        .authenticate(crate::auth::Credentials {
            authorization,
            authorizer_claims,
        })
        .await?;
    let service = &app.service;
    match route {
        Route::PutAppointmentMeeting(_) | Route::PutConversationMeeting(_) => {
            let (subject, body) = match &route {
                Route::PutConversationMeeting(id) => (
                    subject(SubjectKind::Conversation, id)?,
                    AppointmentMeetingRequest::parse_conversation(
                        body,
                        service.clock.now(),
                        service.settings.conversation_reuse,
                    )?,
                ),
                Route::PutAppointmentMeeting(id) => (
                    subject(SubjectKind::Appointment, id)?,
                    AppointmentMeetingRequest::parse(body)?,
                ),
                _ => return Err(ApiError::not_found("Route")),
            };
            let out = service
                .provision(&caller, &subject, &body, deadline(&req))
                .await?;
            let status = if out.created { 201 } else { 200 };
            let mut response = json_response(status, &out.meeting.to_resource());
            if out.created {
                let location = format!("/meetings/{}", out.meeting.id);
                if let Ok(v) = http::HeaderValue::from_str(&location) {
                    response.headers_mut().insert(http::header::LOCATION, v);
                }
            }
            Ok(response)
        }
        Route::GetAppointmentMeeting(id) => {
            let meeting = service
                .meeting_for_subject(&caller, &subject(SubjectKind::Appointment, &id)?)
                .await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::GetConversationMeeting(id) => {
            let meeting = service
                .meeting_for_subject(&caller, &subject(SubjectKind::Conversation, &id)?)
                .await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::GetMeeting(id) => {
            let meeting = service
                .meeting(&caller, &MeetingId::parse(&id, "meetingId")?)
                .await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::GetMeetingLink(id) => {
            let id = MeetingId::parse(&id, "meetingId")?;
            let role = link_role(&req)?;
            let link = service.link(&caller, &id, role, deadline(&req)).await?;
            Ok(json_response(200, &link.to_json()))
        }
        Route::PatchMeeting(id) => {
            let id = MeetingId::parse(&id, "meetingId")?;
            let changes = RescheduleRequest::parse(body)?;
            let meeting = service
                .reschedule(&caller, &id, &changes, deadline(&req))
                .await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::DeleteMeeting(id) => {
            let id = MeetingId::parse(&id, "meetingId")?;
            let meeting = service.cancel(&caller, &id, deadline(&req)).await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::StartMeeting(id) => {
            let meeting = service
                .start(
                    &caller,
                    &MeetingId::parse(&id, "meetingId")?,
                    deadline(&req),
                )
                .await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::EndMeeting(id) => {
            let id = MeetingId::parse(&id, "meetingId")?;
            let meeting = service.end(&caller, &id, deadline(&req)).await?;
            Ok(json_response(200, &meeting.to_resource()))
        }
        Route::ListUserMeetings(user) => {
            let page = service
                .user_meetings(&caller, &page_request(&req, &user)?)
                .await?;
            Ok(json_response(200, &page.to_json()))
        }
        Route::GetStats => Ok(json_response(
            200,
            &stats_json(&service.stats(&caller).await?),
        )),
        Route::ZoomWebhook => Err(ApiError::not_found("Route")),
    }
}

/// The query of `GET /users/{userId}/meetings`: `status` (comma-separated), `from`, `to`
/// (RFC 3339 start times), `limit` (1–100, default 20), `cursor`.
fn page_request(req: &Request, user: &str) -> Result<PageRequest, ApiError> {
    let params = req.query_string_parameters_ref();
    let get = |k: &str| params.and_then(|p| p.first(k)).filter(|v| !v.is_empty());
    let statuses = match get("status") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                s.trim().parse::<MeetingStatus>().map_err(|_| {
                    ApiError::validation("status", "must be meeting statuses, comma-separated")
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let time = |k: &str| {
        get(k)
            .map(|v| parse_time(&serde_json::Value::String(v.to_owned()), k))
            .transpose()
    };
    let limit = match get("limit") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::validation("limit", "must be a whole number from 1 to 100"))?,
    };
    let (from, to) = (time("from")?, time("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::validation("from", "must not be after to"));
    }
    Ok(PageRequest {
        user: UserId::parse(user, "userId")?,
        statuses,
        from,
        to,
        limit,
        cursor: get("cursor").map(str::to_owned),
    })
}

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

fn link_role(req: &Request) -> Result<Option<LinkRole>, ApiError> {
    let params = req.query_string_parameters_ref();
    match params.and_then(|p| p.first("role")) {
        None => Ok(None),
        Some("host") => Ok(Some(LinkRole::Host)),
        Some("participant") => Ok(Some(LinkRole::Participant)),
        Some(_) => Err(ApiError::validation("role", "must be host or participant")),
    }
}

fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// When this request must be done: the Lambda's deadline less a margin for answering, or
/// [`DEFAULT_BUDGET`] from now without a Lambda context.
fn deadline(req: &Request) -> Instant {
    let now = Instant::now();
    let Some(ctx) = req.lambda_context_ref().filter(|c| c.deadline > 0) else {
        return now + DEFAULT_BUDGET;
    };
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let remaining = Duration::from_millis(ctx.deadline.saturating_sub(now_ms));
    now + remaining.saturating_sub(DEADLINE_MARGIN)
}

/// API Gateway's request id (what clients see as `apigw-requestid`), else Lambda's.
fn request_id(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref()
        && let Some(id) = ctx.request_id.as_deref().filter(|s| !s.is_empty())
    {
        return id.to_owned();
    }
    req.lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    // Meetings and links are personal: no shared caches.
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

fn error_response(
    err: &ApiError,
    now: &chrono::DateTime<chrono::Utc>,
    request_id: &str,
) -> Response<Body> {
    let timestamp = crate::domain::rfc3339_millis(*now);
    let mut response = json_response(err.code.status(), &err.body(&timestamp, request_id));
    let headers = response.headers_mut();
    if let Some(s) = err.retry_after
        && let Ok(v) = http::HeaderValue::from_str(&s.to_string())
    {
        headers.insert(http::header::RETRY_AFTER, v);
    }
    if let Some(allow) = err.allow.as_deref()
        && let Ok(v) = http::HeaderValue::from_str(allow)
    {
        headers.insert(http::header::ALLOW, v);
    }
    if err.code.status() == 401 {
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}
