//! The route table: each route's method, path template and owning function, written once.
//! Routing matches the raw path against the templates, so the same code serves API
//! Gateway's routes and the local gateway. Path ids are raw here and validated after
//! authentication. Adding a route is one line here and one handler arm (`super::dispatch`).

use super::error::ApiError;
use http::Method;

/// The Lambda functions, each owning some routes (template.yaml wires the same split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    CreateMeeting,
    GetMeetingLink,
    ManageMeeting,
    ZoomWebhook,
    /// The org's own configuration: provider connections, settings, host directory, event
    /// subscriptions.
    OrgAdmin,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateMeeting => "create-meeting",
            Self::GetMeetingLink => "get-meeting-link",
            Self::ManageMeeting => "manage-meeting",
            Self::ZoomWebhook => "zoom-webhook",
            Self::OrgAdmin => "org-admin",
        }
    }
}

macro_rules! routes {
    ($($route:ident: $method:literal $path:literal => $owner:ident,)+) => {
        /// Every route of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Route { $($route),+ }

        impl Route {
            pub const ALL: &'static [Route] = &[$(Route::$route),+];

            pub fn method(self) -> &'static str {
                match self { $(Route::$route => $method),+ }
            }

            /// The path template, `{name}` for the path's id.
            pub fn path(self) -> &'static str {
                match self { $(Route::$route => $path),+ }
            }

            pub fn owner(self) -> Function {
                match self { $(Route::$route => Function::$owner),+ }
            }

            /// `METHOD /template`, for logs and metrics (never the concrete path).
            pub fn template(self) -> &'static str {
                match self { $(Route::$route => concat!($method, " ", $path)),+ }
            }
        }

        /// Every route as `(method, path template)`.
        pub const ROUTES: &[(&str, &str)] = &[$(($method, $path)),+];
    };
}

routes! {
    PutAppointmentMeeting: "PUT" "/appointments/{appointmentId}/meeting" => CreateMeeting,
    GetAppointmentMeeting: "GET" "/appointments/{appointmentId}/meeting" => GetMeetingLink,
    PutConversationMeeting: "PUT" "/conversations/{conversationId}/meeting" => CreateMeeting,
    GetConversationMeeting: "GET" "/conversations/{conversationId}/meeting" => GetMeetingLink,
    GetMeeting: "GET" "/meetings/{meetingId}" => GetMeetingLink,
    GetMeetingLink: "GET" "/meetings/{meetingId}/link" => GetMeetingLink,
    PatchMeeting: "PATCH" "/meetings/{meetingId}" => ManageMeeting,
    DeleteMeeting: "DELETE" "/meetings/{meetingId}" => ManageMeeting,
    StartMeeting: "POST" "/meetings/{meetingId}/start" => ManageMeeting,
    EndMeeting: "POST" "/meetings/{meetingId}/end" => ManageMeeting,
    ListUserMeetings: "GET" "/users/{userId}/meetings" => ManageMeeting,
    GetStats: "GET" "/stats" => ManageMeeting,
    ZoomWebhook: "POST" "/webhooks/zoom" => ZoomWebhook,
    OrgZoomWebhook: "POST" "/webhooks/zoom/{orgId}" => ZoomWebhook,
    PutOrgProvider: "PUT" "/org/providers/{provider}" => OrgAdmin,
    DeleteOrgProvider: "DELETE" "/org/providers/{provider}" => OrgAdmin,
    ListOrgProviders: "GET" "/org/providers" => OrgAdmin,
    PutOrgSettings: "PUT" "/org/settings" => OrgAdmin,
    GetOrgSettings: "GET" "/org/settings" => OrgAdmin,
    PutOrgHost: "PUT" "/org/hosts/{userId}" => OrgAdmin,
    GetOrgHost: "GET" "/org/hosts/{userId}" => OrgAdmin,
    DeleteOrgHost: "DELETE" "/org/hosts/{userId}" => OrgAdmin,
    ListOrgHosts: "GET" "/org/hosts" => OrgAdmin,
    CreateOrgWebhook: "POST" "/org/webhooks" => OrgAdmin,
    ListOrgWebhooks: "GET" "/org/webhooks" => OrgAdmin,
    DeleteOrgWebhook: "DELETE" "/org/webhooks/{id}" => OrgAdmin,
    RotateOrgWebhook: "POST" "/org/webhooks/{id}/rotate" => OrgAdmin,
}

/// A request's route and the id its path carries (empty when the template has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    pub id: String,
}

/// The id `segments` carry if they fit `template` (a literal per segment, or `{name}`).
fn fits(template: &str, segments: &[&str]) -> Option<String> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut id = String::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            (*segment).clone_into(&mut id);
        } else if part != segment {
            return None;
        }
    }
    Some(id)
}

/// The route of `method path`: 404 for a path no route has, 405 (with the methods it has)
/// for a method it lacks.
pub fn route(method: &Method, path: &str) -> Result<Matched, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut allowed: Vec<&str> = Vec::new();
    for route in Route::ALL {
        let Some(id) = fits(route.path(), &segments) else {
            continue;
        };
        if route.method() == method.as_str() {
            return Ok(Matched { route: *route, id });
        }
        allowed.push(route.method());
    }
    if allowed.is_empty() {
        return Err(ApiError::not_found("Route"));
    }
    allowed.sort_unstable();
    Err(ApiError::method_not_allowed(&allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_is_routed_and_others_are_not() {
        for route in Route::ALL {
            let path = route
                .path()
                .replace("{appointmentId}", "a-1")
                .replace("{meetingId}", "m-1")
                .replace("{userId}", "u-1")
                .replace("{conversationId}", "c-1")
                .replace("{id}", "whsub_1");
            let m = Method::from_bytes(route.method().as_bytes()).unwrap();
            let r = super::route(&m, &path).unwrap();
            assert_eq!(r.route, *route);
            assert_eq!(
                r.route.template(),
                format!("{} {}", route.method(), route.path())
            );
            assert_eq!(r.id.is_empty(), !route.path().contains('{'));
        }
        assert_eq!(ROUTES.len(), Route::ALL.len());
        assert_eq!(route(&Method::GET, "/nope").unwrap_err().code.status(), 404);
        assert_eq!(
            route(&Method::GET, "/meetings/a/b/c")
                .unwrap_err()
                .code
                .status(),
            404
        );
        // An empty id still routes; validation answers 400 for it.
        let empty = route(&Method::GET, "/meetings//link").unwrap();
        assert_eq!(
            (empty.route, empty.id.as_str()),
            (Route::GetMeetingLink, "")
        );
        let e = route(&Method::DELETE, "/appointments/a/meeting").unwrap_err();
        assert_eq!(e.code.status(), 405);
        assert_eq!(e.allow.as_deref(), Some("GET, PUT"));
        let e = route(&Method::PUT, "/meetings/m-1").unwrap_err();
        assert_eq!(e.allow.as_deref(), Some("DELETE, GET, PATCH"));
    }

    #[test]
    fn each_function_owns_its_routes() {
        let owned = |f: Function| Route::ALL.iter().filter(|r| r.owner() == f).count();
        assert_eq!(
            [
                Function::CreateMeeting,
                Function::GetMeetingLink,
                Function::ManageMeeting,
                Function::ZoomWebhook,
                Function::OrgAdmin,
            ]
            .map(owned),
            [2, 4, 6, 2, 13]
        );
    }
}
