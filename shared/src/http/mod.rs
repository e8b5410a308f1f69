//! HTTP in and out: the entry point of the API functions ([`handle`]) and of the Zoom
//! webhook ([`webhook::handle`]), both inside one envelope ([`envelope`]). A request is
//! routed by the table in [`router`], authenticated, and handed to its route's handler in
//! [`routes`] (a file per group), which parses what it needs, calls the service and shapes
//! the answer ([`resource`]). Errors of every layer become the contract's body in [`error`].

pub mod envelope;
pub mod error;
pub mod resource;
pub mod router;
pub mod routes;
pub mod webhook;

use crate::App;
use crate::auth::Credentials;
use crate::domain::Caller;
use envelope::{Reply, enveloped, record_route};
use error::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use router::{Function, Route};
use std::time::{Duration, Instant};

/// Bodies over this size answer 413 (DESIGN.md).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time kept back from the Lambda deadline for answering.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
/// A request's time budget when no Lambda deadline is known.
const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

/// What a route's handler gets: the app, the authenticated caller, the request, the id in
/// its path, and when it must be done.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub caller: Caller,
    pub req: &'a Request,
    /// The raw id of the path (`{appointmentId}`, `{meetingId}`, …), validated by the handler.
    pub id: &'a str,
    pub deadline: Instant,
}

impl Ctx<'_> {
    pub fn body(&self) -> &[u8] {
        body_bytes(self.req.body())
    }

    /// A query parameter, when given and not empty.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.req
            .query_string_parameters_ref()
            .and_then(|p| p.first(name))
            .filter(|v| !v.is_empty())
    }
}

/// Handles one API request for `function`. Never fails: every error becomes the contract's
/// error body, and internal causes are logged, not sent.
pub async fn handle(
    app: &App,
    function: Function,
    req: Request,
) -> Result<Response<Body>, std::convert::Infallible> {
    let request_id = request_id(&req);
    let clock = app.service.clock.as_ref();
    Ok(enveloped(
        clock,
        function.name(),
        &request_id,
        answer(app, function, &req),
    )
    .await)
}

/// Routes, authenticates and dispatches.
async fn answer(app: &App, function: Function, req: &Request) -> Result<Response<Body>, ApiError> {
    let matched = router::route(req.method(), req.raw_http_path())?;
    record_route(matched.route.template());
    // API Gateway never sends another function's route (and the webhook has its own entry
    // point, taking the raw event): refuse it like an unknown path.
    if matched.route.owner() != function || matched.route.owner() == Function::ZoomWebhook {
        return Err(ApiError::not_found("Route"));
    }
    if body_bytes(req.body()).len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let caller = app.auth.authenticate(credentials(req)).await?;
    let deadline = deadline(app, req);
    let ctx = Ctx {
        app,
        caller,
        req,
        id: &matched.id,
        deadline,
    };
    dispatch(&ctx, matched.route).await
}

/// Each route's handler.
async fn dispatch(ctx: &Ctx<'_>, route: Route) -> Result<Response<Body>, ApiError> {
    use crate::domain::SubjectKind::{Appointment, Conversation};
    use routes::{links, meetings, org, stats, subjects, subscriptions, users};
    match route {
        Route::PutAppointmentMeeting => subjects::put(ctx, Appointment).await,
        Route::GetAppointmentMeeting => subjects::get(ctx, Appointment).await,
        Route::PutConversationMeeting => subjects::put(ctx, Conversation).await,
        Route::GetConversationMeeting => subjects::get(ctx, Conversation).await,
        Route::GetMeeting => meetings::get(ctx).await,
        Route::GetMeetingLink => links::get(ctx).await,
        Route::PatchMeeting => meetings::patch(ctx).await,
        Route::DeleteMeeting => meetings::cancel(ctx).await,
        Route::StartMeeting => meetings::start(ctx).await,
        Route::EndMeeting => meetings::end(ctx).await,
        Route::ListUserMeetings => users::meetings(ctx).await,
        Route::GetStats => stats::get(ctx).await,
        Route::ZoomWebhook | Route::OrgZoomWebhook => Err(ApiError::not_found("Route")),
        Route::PutOrgProvider => org::put_provider(ctx).await,
        Route::DeleteOrgProvider => org::delete_provider(ctx).await,
        Route::ListOrgProviders => org::list_providers(ctx).await,
        Route::PutOrgSettings => org::put_settings(ctx).await,
        Route::GetOrgSettings => org::get_settings(ctx).await,
        Route::PutOrgHost => org::put_host(ctx).await,
        Route::GetOrgHost => org::get_host(ctx).await,
        Route::DeleteOrgHost => org::delete_host(ctx).await,
        Route::ListOrgHosts => org::list_hosts(ctx).await,
        Route::CreateOrgWebhook => subscriptions::create(ctx).await,
        Route::ListOrgWebhooks => subscriptions::list(ctx).await,
        Route::DeleteOrgWebhook => subscriptions::delete(ctx).await,
        Route::RotateOrgWebhook => subscriptions::rotate(ctx).await,
    }
}

/// The bearer token, and the claims API Gateway's JWT authorizer put in the context.
fn credentials(req: &Request) -> Credentials<'_> {
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authorizer_claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    Credentials {
        authorization,
        authorizer_claims,
    }
}

fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// When this request must be done: the Lambda's deadline less a margin for answering, or
/// [`DEFAULT_BUDGET`] from now without a Lambda context.
fn deadline(app: &App, req: &Request) -> Instant {
    let clock = app.service.clock.as_ref();
    let Some(ctx) = req.lambda_context_ref().filter(|c| c.deadline > 0) else {
        return clock.instant() + DEFAULT_BUDGET;
    };
    let now_ms = clock.now().timestamp_millis().max(0).unsigned_abs();
    let remaining = Duration::from_millis(ctx.deadline.saturating_sub(now_ms));
    clock.instant() + remaining.saturating_sub(DEADLINE_MARGIN)
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

/// A JSON answer.
pub fn json(status: u16, body: &serde_json::Value) -> Response<Body> {
    Response::<Body>::json(status, body)
}
