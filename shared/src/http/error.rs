//! The HTTP edge's error: the contract's error body. Every layer's error becomes one here,
//! once, through the `From` impls at the bottom; nothing below the edge knows status codes.
//!
//! Bodies carry a code, a human message and optional `details`; never a cause, SDK message,
//! token or link. The cause chain is kept aside for the log line only.

use crate::auth::AuthError;
use crate::domain::{DomainError, Invalid, MeetingStatus};
use crate::providers::ProviderError;
use crate::secrets::SecretError;
use crate::service::ServiceError;
use crate::store::StoreError;
use serde_json::{Value, json};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    ValidationFailed,
    Conflict,
    MeetingNotJoinable,
    PayloadTooLarge,
    HostNotMapped,
    RateLimited,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            // Not in DESIGN.md's list; the contract asks for a 405 body of the same shape.
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::Conflict => "CONFLICT",
            Self::MeetingNotJoinable => "MEETING_NOT_JOINABLE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::HostNotMapped => "HOST_NOT_MAPPED",
            Self::RateLimited => "RATE_LIMITED",
            Self::ProviderRateLimited => "PROVIDER_RATE_LIMITED",
            Self::ProviderRejected => "PROVIDER_REJECTED",
            Self::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::ValidationFailed => 400,
            Self::Conflict | Self::MeetingNotJoinable => 409,
            Self::PayloadTooLarge => 413,
            Self::HostNotMapped => 422,
            Self::RateLimited | Self::ProviderRateLimited => 429,
            Self::ProviderRejected => 502,
            Self::ProviderUnavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// Boxed so `Result<_, ApiError>` stays one pointer wide on the happy path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorParts>);

#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// Methods for the `Allow` header of a 405.
    pub allow: Option<String>,
    /// What went wrong inside, the whole source chain, for the log only (never the body).
    pub cause: Option<String>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorParts;
    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            allow: None,
            cause: None,
        }))
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self
    }

    /// Keeps `cause` and its sources for the log.
    pub fn with_cause(mut self, cause: &(dyn std::error::Error + 'static)) -> Self {
        self.0.cause = Some(crate::telemetry::cause(cause));
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::Unauthenticated,
            "A valid bearer token is required",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorCode::Forbidden, "Not allowed for this caller")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 409 MEETING_NOT_JOINABLE: the meeting's status, or that its links' time has passed.
    fn not_joinable(status: MeetingStatus, links_expired: bool) -> Self {
        if links_expired {
            Self::new(
                ErrorCode::MeetingNotJoinable,
                "The meeting's time for joining has passed",
            )
            .with_details(json!({ "status": status.as_str(), "reason": "LINKS_EXPIRED" }))
        } else {
            Self::new(
                ErrorCode::MeetingNotJoinable,
                format!("The meeting is {status}"),
            )
            .with_details(json!({ "status": status.as_str() }))
        }
    }

    pub fn validation(field: &str, problem: &str) -> Self {
        // The field names the problem; there is nothing more inside to log.
        Self::new(ErrorCode::ValidationFailed, format!("{field} {problem}"))
            .with_details(json!({ "field": field, "problem": problem }))
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("Request body exceeds {limit} bytes"),
        )
        .with_details(json!({ "limitBytes": limit }))
    }

    pub fn method_not_allowed(allow: &[&str]) -> Self {
        let mut e = Self::new(
            ErrorCode::MethodNotAllowed,
            "Method not allowed on this path",
        )
        .with_details(json!({ "allow": allow }));
        e.0.allow = Some(allow.join(", "));
        e
    }

    /// An opaque 500; `cause` goes to the log only.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(ErrorCode::Internal, "Internal error").with_cause(cause)
    }

    /// An opaque 500 for a fault told in words (a missing configuration, say).
    pub fn misconfigured(cause: &str) -> Self {
        let mut e = Self::new(ErrorCode::Internal, "Internal error");
        e.0.cause = Some(cause.to_owned());
        e
    }

    /// The contract's error body.
    pub fn body(&self, timestamp: &str, request_id: &str) -> Value {
        json!({ "error": {
            "code": self.code.as_str(),
            "message": self.message,
            // Always present (an empty object when there is nothing to add).
            "details": self.details.clone().unwrap_or_else(|| json!({})),
            "timestamp": timestamp,
            "requestId": request_id,
        }})
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// Seconds a caller is asked to wait after an unavailable provider without its own hint.
const DEFAULT_RETRY_AFTER: u64 = 5;

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        Self::validation(e.field, e.problem)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(invalid) => invalid.into(),
            DomainError::NotFound(what) => Self::not_found(what),
            DomainError::Forbidden => Self::forbidden(),
            DomainError::Transition { from, to } => Self::new(
                ErrorCode::Conflict,
                format!("The meeting is {from} and cannot become {to}"),
            )
            .with_details(json!({ "status": from.as_str() })),
            DomainError::NotReschedulable(status) => Self::new(
                ErrorCode::Conflict,
                "Only a scheduled meeting can be rescheduled",
            )
            .with_details(json!({ "status": status.as_str() })),
            DomainError::ConcurrentChange => Self::new(
                ErrorCode::Conflict,
                "The meeting changed concurrently; read it again and retry",
            )
            .with_details(json!({ "reason": "CONCURRENT_CHANGE" })),
            DomainError::SubjectMismatch => Self::new(
                ErrorCode::Conflict,
                "The subject already has a meeting with another host or participants; change it with PATCH or DELETE",
            )
            .with_details(json!({ "reason": "SUBJECT_MISMATCH" })),
            DomainError::Provisioning => Self::new(
                ErrorCode::Conflict,
                "The meeting is being created by another request; retry shortly",
            )
            .with_details(json!({ "reason": "MEETING_PROVISIONING" }))
            .with_retry_after(1),
            DomainError::HostNotMapped(provider) => Self::new(
                ErrorCode::HostNotMapped,
                format!("The host has no {provider} user: map it with PUT /org/hosts/{{userId}} or set the connection's default"),
            )
            .with_details(json!({ "provider": provider.as_str() })),
            DomainError::OverBudget { retry_after } => Self::new(
                ErrorCode::RateLimited,
                "Too many new meetings; retry later",
            )
            .with_retry_after(retry_after),
            DomainError::HostBudgetSpent { retry_after } => Self::new(
                ErrorCode::ProviderRateLimited,
                "The host's daily limit of provider meeting creates and updates is reached",
            )
            .with_details(json!({ "reason": "HOST_DAILY_LIMIT" }))
            .with_retry_after(retry_after),
            DomainError::NotJoinable {
                status,
                links_expired,
            } => Self::not_joinable(status, links_expired),
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        let unavailable = || {
            Self::new(
                ErrorCode::ProviderUnavailable,
                "The video provider is unavailable; retry later",
            )
        };
        let rejected = |message: &str| Self::new(ErrorCode::ProviderRejected, message);
        match &e {
            ProviderError::Unavailable { retry_after, .. } => unavailable()
                .with_retry_after(retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
                .with_cause(&e),
            ProviderError::TokenStore(_) => unavailable()
                .with_retry_after(DEFAULT_RETRY_AFTER)
                .with_cause(&e),
            ProviderError::RateLimited { retry_after, daily } => {
                let message = if *daily {
                    "The video provider's daily limit is reached"
                } else {
                    "The video provider is rate limiting; retry later"
                };
                let err = Self::new(ErrorCode::ProviderRateLimited, message);
                match retry_after {
                    Some(s) => err.with_retry_after(*s),
                    None => err,
                }
            }
            ProviderError::Rejected { .. } | ProviderError::Secret(_) => {
                rejected("The video provider rejected the request").with_cause(&e)
            }
            ProviderError::HostDailyLimit { retry_after } => Self::new(
                ErrorCode::ProviderRateLimited,
                "The host's daily limit of provider meeting creates and updates is reached",
            )
            .with_details(json!({ "reason": "HOST_DAILY_LIMIT" }))
            .with_retry_after(*retry_after),
            ProviderError::UnknownHost => Self::new(
                ErrorCode::HostNotMapped,
                "The video provider does not know the host's user: check the host directory",
            )
            .with_cause(&e),
            ProviderError::NotFound => {
                rejected("The meeting no longer exists at the video provider").with_cause(&e)
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Refused(_) => Self::unauthenticated(),
            AuthError::Keys(_) => Self::internal(&e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        Self::internal(&e)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => d.into(),
            ServiceError::Provider(p) => p.into(),
            ServiceError::Store(_) | ServiceError::Secret(_) | ServiceError::Inconsistent(_) => {
                Self::internal(&e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_joinable(status: MeetingStatus, links_expired: bool) -> ApiError {
        DomainError::NotJoinable {
            status,
            links_expired,
        }
        .into()
    }

    #[test]
    fn a_meeting_not_joinable_says_whether_its_status_or_its_links_time_is_why() {
        let ended = not_joinable(MeetingStatus::Ended, false);
        assert_eq!(ended.code.as_str(), "MEETING_NOT_JOINABLE");
        assert_eq!(ended.code.status(), 409);
        assert_eq!(ended.message, "The meeting is ended");
        assert_eq!(ended.details, Some(json!({ "status": "ended" })));
        let late = not_joinable(MeetingStatus::Scheduled, true);
        assert_eq!(late.code.status(), 409);
        assert_eq!(late.message, "The meeting's time for joining has passed");
        assert_eq!(
            late.details,
            Some(json!({ "status": "scheduled", "reason": "LINKS_EXPIRED" }))
        );
    }
}
