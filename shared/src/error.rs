//! The one error type of the API, mapped to the contract's error body.
//!
//! Bodies carry a code, a human message and optional `details`; never a cause, SDK message,
//! token or link. Internal causes are kept aside for the log line only.

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
            Self::ProviderRateLimited => 429,
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
    /// What went wrong inside, for the log only (never the body).
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

    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.0.cause = Some(cause.to_string());
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

    pub fn validation(field: &str, problem: &str) -> Self {
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
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, "Internal error").with_cause(cause)
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
