//! One meeting per subject (guarantee 1): the claim a caller must hold to create a
//! subject's meeting, and the one rule of what a caller does about a claim it finds.
//!
//! The rule exists once, here: the service follows [`next_step`], the stores write a claim
//! only where [`ClaimState::takeover`] allows it (the DynamoDB adapter builds its condition
//! expression from the same table), and the cleanup drops only claims that are takeable.

use crate::ids::MeetingId;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimState {
    /// Someone is creating the provider meeting until `lease_until`.
    Pending,
    /// The meeting exists.
    Ready,
    /// A provider call failed; anyone may claim again.
    Released,
}

/// A claim's time that decides a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimTime {
    /// `lease_until`: the holder's time to create the meeting.
    LeaseEnd,
    /// `window_ends_at`: a conversation meeting's reuse window.
    WindowEnd,
}

/// When a claim in some state may be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    Always,
    /// Once `time` has passed; `if_unset` when the claim has no such time.
    After {
        time: ClaimTime,
        if_unset: bool,
    },
}

impl ClaimState {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Ready, Self::Released];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The takeover table: a released claim is free; a pending one once its lease ends (a
    /// holder that died); a ready one once its conversation's reuse window is over (an
    /// appointment's never is).
    pub const fn takeover(self) -> Takeover {
        match self {
            Self::Released => Takeover::Always,
            Self::Pending => Takeover::After {
                time: ClaimTime::LeaseEnd,
                if_unset: true,
            },
            Self::Ready => Takeover::After {
                time: ClaimTime::WindowEnd,
                if_unset: false,
            },
        }
    }
}

/// The per-subject claim that makes provisioning happen exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub state: ClaimState,
    /// Kept across takeovers, so every attempt for a subject marks its provider meeting
    /// with the same id and a taker-over can find what a crashed holder created.
    pub meeting_id: MeetingId,
    pub token: String,
    pub lease_until: Option<DateTime<Utc>>,
    /// A previous attempt may have created a provider meeting: look it up before creating.
    pub reconcile: bool,
    /// Conversations: the end of the reuse window of the ready meeting. After it, the claim
    /// may be taken for a new meeting (expiry is the code's, not TTL's).
    pub window_ends_at: Option<DateTime<Utc>>,
    /// The provider user this attempt creates under: where a taker-over looks for what it
    /// may have made, even if the host directory changed meanwhile.
    pub provider_user: Option<String>,
}

impl Claim {
    pub fn time(&self, which: ClaimTime) -> Option<DateTime<Utc>> {
        match which {
            ClaimTime::LeaseEnd => self.lease_until,
            ClaimTime::WindowEnd => self.window_ends_at,
        }
    }

    /// Whether a new caller may take this claim over at `now` (the takeover table).
    pub fn is_takeable(&self, now: DateTime<Utc>) -> bool {
        match self.state.takeover() {
            Takeover::Always => true,
            Takeover::After { time, if_unset } => self.time(time).map_or(if_unset, |t| t <= now),
        }
    }

    /// When the weekly cleanup looks at the claim: a pending claim when its lease ends (its
    /// holder may have died). Ready and released claims are not due.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        (self.state == ClaimState::Pending)
            .then_some(self.lease_until)
            .flatten()
    }
}

/// What a caller does about the claim it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStep {
    /// The meeting exists and is current: answer it.
    Reuse(MeetingId),
    /// Someone else is creating it: wait for their meeting.
    Wait,
    /// Claim the subject. `continues`: the meeting id of an attempt being taken over (its
    /// provider meeting carries that id's marker), `None` for a fresh meeting; `reconcile`:
    /// that attempt may have left a provider meeting, so look for it before creating one.
    Claim {
        continues: Option<MeetingId>,
        reconcile: bool,
    },
}

/// The rule: reuse a current meeting, wait for a live holder, else claim — continuing the
/// attempt of a holder that died or failed ambiguously, or fresh when there was none or a
/// conversation's window is over.
pub fn next_step(claim: Option<&Claim>, now: DateTime<Utc>) -> ClaimStep {
    let Some(c) = claim else {
        return ClaimStep::Claim {
            continues: None,
            reconcile: false,
        };
    };
    match (c.state, c.is_takeable(now)) {
        (ClaimState::Ready, false) => ClaimStep::Reuse(c.meeting_id.clone()),
        (_, false) => ClaimStep::Wait,
        // A conversation whose window is over gets a new meeting.
        (ClaimState::Ready, true) => ClaimStep::Claim {
            continues: None,
            reconcile: false,
        },
        (state, true) => ClaimStep::Claim {
            continues: Some(c.meeting_id.clone()),
            reconcile: c.reconcile || state == ClaimState::Pending,
        },
    }
}

/// When a released claim is due for the cleanup: at once when its failure was ambiguous
/// (a provider meeting may have been left behind, for the orphan pass), else never.
pub fn released_due_at(reconcile: bool, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    reconcile.then_some(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
            + Duration::minutes(minutes)
    }

    fn claim(state: ClaimState, lease: Option<i64>, window: Option<i64>, reconcile: bool) -> Claim {
        Claim {
            state,
            meeting_id: MeetingId::parse("mtg_a", "t").expect("id"),
            token: "tok".into(),
            lease_until: lease.map(at),
            reconcile,
            window_ends_at: window.map(at),
            provider_user: None,
        }
    }

    #[test]
    fn the_claim_rule_reuses_waits_or_takes_over_fresh_or_reconciling() {
        use ClaimState::*;
        let a = || Some(MeetingId::parse("mtg_a", "t").expect("id"));
        let fresh = ClaimStep::Claim {
            continues: None,
            reconcile: false,
        };
        let cases: [(Option<Claim>, ClaimStep); 9] = [
            (None, fresh.clone()),
            // An appointment's meeting is reused for ever.
            (
                Some(claim(Ready, None, None, false)),
                ClaimStep::Reuse(MeetingId::parse("mtg_a", "t").expect("id")),
            ),
            // A conversation's, inside its window; after it, a fresh meeting.
            (
                Some(claim(Ready, None, Some(1), false)),
                ClaimStep::Reuse(MeetingId::parse("mtg_a", "t").expect("id")),
            ),
            (Some(claim(Ready, None, Some(0), false)), fresh.clone()),
            // A live holder: wait. Its lease over: take over and look for what it made.
            (Some(claim(Pending, Some(1), None, false)), ClaimStep::Wait),
            (
                Some(claim(Pending, Some(0), None, false)),
                ClaimStep::Claim {
                    continues: a(),
                    reconcile: true,
                },
            ),
            (
                Some(claim(Pending, None, None, false)),
                ClaimStep::Claim {
                    continues: a(),
                    reconcile: true,
                },
            ),
            // Released cleanly: claim again, nothing to look for; after an ambiguous failure, look.
            (
                Some(claim(Released, None, None, false)),
                ClaimStep::Claim {
                    continues: a(),
                    reconcile: false,
                },
            ),
            (
                Some(claim(Released, None, None, true)),
                ClaimStep::Claim {
                    continues: a(),
                    reconcile: true,
                },
            ),
        ];
        for (found, step) in cases {
            assert_eq!(next_step(found.as_ref(), at(0)), step, "{found:?}");
        }
    }

    #[test]
    fn the_takeover_table_decides_takeability() {
        use ClaimState::*;
        let cases = [
            (claim(Released, None, None, false), true),
            (claim(Pending, Some(1), None, false), false),
            (claim(Pending, Some(0), None, false), true),
            (claim(Pending, None, None, false), true),
            (claim(Ready, None, None, false), false),
            (claim(Ready, None, Some(1), false), false),
            (claim(Ready, None, Some(-1), false), true),
        ];
        for (c, takeable) in cases {
            assert_eq!(c.is_takeable(at(0)), takeable, "{c:?}");
        }
    }

    #[test]
    fn only_pending_claims_are_due_at_their_lease_end_and_ambiguous_releases_at_once() {
        assert_eq!(
            claim(ClaimState::Pending, Some(5), None, false).due_at(),
            Some(at(5))
        );
        assert_eq!(
            claim(ClaimState::Ready, Some(5), None, false).due_at(),
            None
        );
        assert_eq!(released_due_at(true, at(3)), Some(at(3)));
        assert_eq!(released_due_at(false, at(3)), None);
        for s in ClaimState::ALL {
            assert_eq!(ClaimState::parse(s.as_str()), Some(s));
        }
    }
}
