//! What the domain rules refuse. The HTTP edge maps each case to the contract's code once
//! (`http::error`); nothing here knows about status codes.

use super::MeetingStatus;

/// A request field that is not acceptable: answered 400, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct Invalid {
    pub field: &'static str,
    pub problem: &'static str,
}

impl Invalid {
    pub fn new(field: &'static str, problem: &'static str) -> Self {
        Self { field, problem }
    }
}

/// A request the domain rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Absent, or the caller may not see it (never revealing which).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may see it but not do this.
    #[error("not allowed for this caller")]
    Forbidden,
    #[error("the meeting is {from} and cannot become {to}")]
    Transition {
        from: MeetingStatus,
        to: MeetingStatus,
    },
    #[error("only a scheduled meeting can be rescheduled (it is {0})")]
    NotReschedulable(MeetingStatus),
    /// Someone changed the meeting between our read and our write.
    #[error("the meeting changed concurrently")]
    ConcurrentChange,
    /// The subject already has a meeting, with another host or other participants.
    #[error("the subject's meeting has other people")]
    SubjectMismatch,
    /// Another request holds the subject's claim and is creating its meeting.
    #[error("the meeting is being created by another request")]
    Provisioning,
    /// The host has no user at the provider (host directory, connection default).
    #[error("the host has no {0} user")]
    HostNotMapped(super::ProviderKind),
    /// The caller's (or its org's) budget of new meetings is spent until the window ends.
    #[error("the caller's budget of new meetings is spent")]
    OverBudget { retry_after: u64 },
    /// The provider user's daily budget of creates and updates is spent (until 00:00 UTC).
    #[error("the host's daily provider budget is spent")]
    HostBudgetSpent { retry_after: u64 },
    /// No links for a meeting people can no longer join.
    #[error("the meeting is {status}")]
    NotJoinable {
        status: MeetingStatus,
        /// The meeting is joinable, but its links' time has passed (Jitsi's `exp`).
        links_expired: bool,
    },
}
