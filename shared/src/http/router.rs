//! Routes by method and path, so the same code serves API Gateway routes and the local
//! gateway. Path ids are raw here and validated after authentication.

use crate::error::ApiError;
use http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    PutAppointmentMeeting(String),
    GetAppointmentMeeting(String),
    PutConversationMeeting(String),
    GetConversationMeeting(String),
    GetMeeting(String),
    GetMeetingLink(String),
    PatchMeeting(String),
    DeleteMeeting(String),
    StartMeeting(String),
    EndMeeting(String),
    ListUserMeetings(String),
    GetStats,
    ZoomWebhook,
}

/// The Lambda functions, each owning some routes (template.yaml wires the same split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    CreateMeeting,
    GetMeetingLink,
    ManageMeeting,
    ZoomWebhook,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateMeeting => "create-meeting",
            Self::GetMeetingLink => "get-meeting-link",
            Self::ManageMeeting => "manage-meeting",
            Self::ZoomWebhook => "zoom-webhook",
        }
    }
}

impl Route {
    pub fn owner(&self) -> Function {
        match self {
            Self::PutAppointmentMeeting(_) | Self::PutConversationMeeting(_) => {
                Function::CreateMeeting
            }
            Self::GetAppointmentMeeting(_)
            | Self::GetConversationMeeting(_)
            | Self::GetMeeting(_)
            | Self::GetMeetingLink(_) => Function::GetMeetingLink,
            Self::PatchMeeting(_)
            | Self::DeleteMeeting(_)
            | Self::StartMeeting(_)
            | Self::EndMeeting(_)
            | Self::ListUserMeetings(_)
            | Self::GetStats => Function::ManageMeeting,
            Self::ZoomWebhook => Function::ZoomWebhook,
        }
    }

    /// The route template, for logs and metrics (never the concrete path).
    pub fn template(&self) -> &'static str {
        match self {
            Self::PutAppointmentMeeting(_) => "PUT /appointments/{appointmentId}/meeting",
            Self::GetAppointmentMeeting(_) => "GET /appointments/{appointmentId}/meeting",
            Self::PutConversationMeeting(_) => "PUT /conversations/{conversationId}/meeting",
            Self::GetConversationMeeting(_) => "GET /conversations/{conversationId}/meeting",
            Self::GetMeeting(_) => "GET /meetings/{meetingId}",
            Self::GetMeetingLink(_) => "GET /meetings/{meetingId}/link",
            Self::PatchMeeting(_) => "PATCH /meetings/{meetingId}",
            Self::DeleteMeeting(_) => "DELETE /meetings/{meetingId}",
            Self::StartMeeting(_) => "POST /meetings/{meetingId}/start",
            Self::EndMeeting(_) => "POST /meetings/{meetingId}/end",
            Self::ListUserMeetings(_) => "GET /users/{userId}/meetings",
            Self::GetStats => "GET /stats",
            Self::ZoomWebhook => "POST /webhooks/zoom",
        }
    }
}

/// Every route of the API as `(method, path template)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("PUT", "/appointments/{appointmentId}/meeting"),
    ("GET", "/appointments/{appointmentId}/meeting"),
    ("PUT", "/conversations/{conversationId}/meeting"),
    ("GET", "/conversations/{conversationId}/meeting"),
    ("GET", "/meetings/{meetingId}"),
    ("GET", "/meetings/{meetingId}/link"),
    ("PATCH", "/meetings/{meetingId}"),
    ("DELETE", "/meetings/{meetingId}"),
    ("POST", "/meetings/{meetingId}/start"),
    ("POST", "/meetings/{meetingId}/end"),
    ("GET", "/users/{userId}/meetings"),
    ("GET", "/stats"),
    ("POST", "/webhooks/zoom"),
];

pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (allowed, route): (&[&str], Option<Route>) = match segments.as_slice() {
        ["appointments", id, "meeting"] => (
            &["GET", "PUT"],
            match *method {
                Method::PUT => Some(Route::PutAppointmentMeeting((*id).to_owned())),
                Method::GET => Some(Route::GetAppointmentMeeting((*id).to_owned())),
                _ => None,
            },
        ),
        ["conversations", id, "meeting"] => (
            &["GET", "PUT"],
            match *method {
                Method::PUT => Some(Route::PutConversationMeeting((*id).to_owned())),
                Method::GET => Some(Route::GetConversationMeeting((*id).to_owned())),
                _ => None,
            },
        ),
        ["meetings", id] => (
            &["DELETE", "GET", "PATCH"],
            match *method {
                Method::GET => Some(Route::GetMeeting((*id).to_owned())),
                Method::PATCH => Some(Route::PatchMeeting((*id).to_owned())),
                Method::DELETE => Some(Route::DeleteMeeting((*id).to_owned())),
                _ => None,
            },
        ),
        ["meetings", id, "start"] => (
            &["POST"],
            (*method == Method::POST).then(|| Route::StartMeeting((*id).to_owned())),
        ),
        ["meetings", id, "end"] => (
            &["POST"],
            (*method == Method::POST).then(|| Route::EndMeeting((*id).to_owned())),
        ),
        ["users", id, "meetings"] => (
            &["GET"],
            (*method == Method::GET).then(|| Route::ListUserMeetings((*id).to_owned())),
        ),
        ["webhooks", "zoom"] => (
            &["POST"],
            (*method == Method::POST).then_some(Route::ZoomWebhook),
        ),
        ["stats"] => (
            &["GET"],
            (*method == Method::GET).then_some(Route::GetStats),
        ),
        ["meetings", id, "link"] => (
            &["GET"],
            (*method == Method::GET).then(|| Route::GetMeetingLink((*id).to_owned())),
        ),
        _ => return Err(ApiError::not_found("Route")),
    };
    route.ok_or_else(|| ApiError::method_not_allowed(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_is_routed_and_others_are_not() {
        for (method, template) in ROUTES {
            let path = template
                .replace("{appointmentId}", "a-1")
                .replace("{meetingId}", "m-1")
                .replace("{userId}", "u-1")
                .replace("{conversationId}", "c-1");
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let r = route(&m, &path).unwrap();
            assert_eq!(r.template(), format!("{method} {template}"));
        }
        assert_eq!(route(&Method::GET, "/nope").unwrap_err().code.status(), 404);
        assert_eq!(
            route(&Method::GET, "/meetings/a/b/c")
                .unwrap_err()
                .code
                .status(),
            404
        );
        // An empty id still routes; validation answers 400 for it.
        assert!(
            matches!(route(&Method::GET, "/meetings//link"), Ok(Route::GetMeetingLink(id)) if id.is_empty())
        );
        let e = route(&Method::DELETE, "/appointments/a/meeting").unwrap_err();
        assert_eq!(e.code.status(), 405);
        assert_eq!(e.allow.as_deref(), Some("GET, PUT"));
    }
}
