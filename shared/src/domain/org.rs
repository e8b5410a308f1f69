//! An organisation's own part of the deployment (DESIGN.md, "Organisations"): its settings
//! over the deployment's defaults, the public half of its provider connections (the secret
//! half lives in Secrets Manager only), its host directory, and the budgets that keep one
//! org or caller from spending what others need (guarantee 9).

use super::{Invalid, ProviderKind, Role};
use crate::ids::{OrgId, UserId};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

/// Under whose provider account a meeting was made: the deployment's (`ZOOM_SECRET_ID`, …)
/// or its org's own connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Account {
    #[default]
    Deployment,
    Org,
}

/// Whose provider events a webhook delivery may change: the deployment's Zoom app
/// (`/webhooks/zoom`) speaks for meetings in the deployment's account, an org's own app
/// (`/webhooks/zoom/{orgId}`) for that org's meetings in its own account only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    Deployment,
    Org(OrgId),
}

impl EventScope {
    pub fn admits(&self, meeting: &super::Meeting) -> bool {
        match self {
            Self::Deployment => meeting.account == Account::Deployment,
            Self::Org(org) => meeting.account == Account::Org && &meeting.org == org,
        }
    }
}

/// An org's choices over the deployment's defaults; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgSettings {
    pub provider: Option<ProviderKind>,
    pub fallback: Option<ProviderKind>,
    pub conversation_reuse_seconds: Option<u32>,
    /// Minutes after an appointment's start without a participant that make it a no-show
    /// (`meeting.no_show`); 0 turns the check off.
    pub no_show_grace_minutes: Option<u32>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The public half of a provider connection: when it was verified and its non-secret ids
/// (account and client ids, default host, budget), as answered by `GET /org/providers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub provider: ProviderKind,
    pub verified_at: DateTime<Utc>,
    pub ids: Map<String, Value>,
}

impl Connection {
    /// The connection's own per-host daily budget (`hostDailyBudget`), when it sets one.
    pub fn host_daily_budget(&self) -> Option<u32> {
        self.ids
            .get("hostDailyBudget")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    }
}

/// What the table knows of an org: settings and connections, one item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgProfile {
    pub settings: OrgSettings,
    pub connections: BTreeMap<&'static str, Connection>,
}

impl OrgProfile {
    pub fn connection(&self, kind: ProviderKind) -> Option<&Connection> {
        self.connections.get(kind.as_str())
    }
}

/// A practitioner's own provider users (the host directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub user: UserId,
    /// A Zoom user id or email of the org's Zoom account.
    pub zoom_user: Option<String>,
    /// A Zoho user's zuid.
    pub zoho_presenter: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl HostEntry {
    /// The provider user this host is at `kind` (Jitsi has none).
    pub fn user_at(&self, kind: ProviderKind) -> Option<&str> {
        match kind {
            ProviderKind::Zoom => self.zoom_user.as_deref(),
            ProviderKind::Zoho => self.zoho_presenter.as_deref(),
            ProviderKind::Jitsi => None,
        }
    }
}

/// Whether meetings at `kind` run under a provider user (and so need a host mapping).
pub fn has_host_users(kind: ProviderKind) -> bool {
    kind != ProviderKind::Jitsi
}

/// A count allowed per fixed window of seconds (`10/3600`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub window_seconds: u32,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (limit, window) = s.split_once('/').ok_or("a rate is LIMIT/SECONDS")?;
        let limit = limit
            .trim()
            .parse()
            .map_err(|_| "a rate's limit is a count")?;
        let window_seconds = window
            .trim()
            .parse()
            .ok()
            .filter(|w| *w > 0)
            .ok_or("a rate's window is a positive number of seconds")?;
        Ok(Self {
            limit,
            window_seconds,
        })
    }
}

/// `CREATE_BUDGETS`: new meetings per calling patient, per other calling user and per org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateBudgets {
    pub patient: Rate,
    pub user: Rate,
    pub org: Rate,
}

impl Default for CreateBudgets {
    fn default() -> Self {
        let rate = |limit| Rate {
            limit,
            window_seconds: 3600,
        };
        Self {
            patient: rate(10),
            user: rate(1000),
            org: rate(5000),
        }
    }
}

impl FromStr for CreateBudgets {
    type Err = String;

    /// `patient=10/3600,user=1000/3600,org=5000/3600`; a part left out keeps its default.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut budgets = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rate) = part
                .split_once('=')
                .ok_or("CREATE_BUDGETS is NAME=LIMIT/SECONDS,…")?;
            let rate: Rate = rate
                .parse()
                .map_err(|e| format!("CREATE_BUDGETS {name}: {e}"))?;
            match name.trim() {
                "patient" => budgets.patient = rate,
                "user" => budgets.user = rate,
                "org" => budgets.org = rate,
                other => return Err(format!("CREATE_BUDGETS: unknown budget {other:?}")),
            }
        }
        Ok(budgets)
    }
}

/// One counter a create or update spends from: its key, its limit, the end of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub key: String,
    pub limit: u32,
    pub window_ends: DateTime<Utc>,
}

impl Spend {
    /// Whole seconds until the window ends, rounded up (a caller waiting that long finds
    /// it over), at least 1: the answer's `Retry-After`.
    pub fn retry_after(&self, now: DateTime<Utc>) -> u64 {
        seconds_until(self.window_ends, now)
    }
}

/// Of the refused spends `refused` (indexes into `spends`), the one whose window ends last:
/// a `Retry-After` from it is long enough for all.
pub fn last_ending(spends: &[Spend], refused: impl Iterator<Item = usize>) -> Option<usize> {
    refused
        .filter(|&i| i < spends.len())
        .max_by_key(|&i| spends[i].window_ends)
}

/// Whole seconds from `now` until `end`, rounded up, at least 1 (a `Retry-After`).
pub fn seconds_until(end: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = u64::try_from((end - now).num_milliseconds()).unwrap_or(0);
    ms.div_ceil(1000).max(1)
}

/// The fixed window of `rate` that `now` is in, and its end.
fn window(rate: Rate, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
    let w = i64::from(rate.window_seconds);
    let start = now.timestamp().div_euclid(w) * w;
    let end = DateTime::from_timestamp(start + w, 0).unwrap_or(now);
    (start, end)
}

/// What one new meeting spends from the caller's budgets: the calling user's (a patient's
/// tighter one) and the org's. One org spending its budget never touches another's.
pub fn caller_spends(
    budgets: &CreateBudgets,
    org: &OrgId,
    user: &UserId,
    role: Role,
    now: DateTime<Utc>,
) -> [Spend; 2] {
    let user_rate = if role == Role::Patient {
        budgets.patient
    } else {
        budgets.user
    };
    let spend = |rate: Rate, what: String| {
        let (start, window_ends) = window(rate, now);
        Spend {
            key: format!("{what}#{}#{start}", rate.window_seconds),
            limit: rate.limit,
            window_ends,
        }
    };
    [
        spend(user_rate, format!("CALLER#{org}#{user}")),
        spend(budgets.org, format!("ORG#{org}")),
    ]
}

/// The next 00:00 UTC after `now`: when a provider's per-host daily count starts again.
pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    today + Duration::days(1)
}

/// What one create or update spends from a provider user's daily budget (Zoom: 100 per host
/// user per UTC day). The key names the account, so one user of two accounts counts twice.
pub fn host_spend(
    kind: ProviderKind,
    account: Account,
    org: &OrgId,
    provider_user: &str,
    limit: u32,
    now: DateTime<Utc>,
) -> Spend {
    let scope = match account {
        Account::Deployment => "deployment".to_owned(),
        Account::Org => format!("org:{org}"),
    };
    // An email is case-insensitive (one counter for every spelling); a Zoom user id is not.
    let user = if provider_user.contains('@') {
        provider_user.to_ascii_lowercase()
    } else {
        provider_user.to_owned()
    };
    Spend {
        key: format!("HOST#{kind}#{scope}#{user}#{}", now.date_naive()),
        limit,
        window_ends: next_utc_midnight(now),
    }
}

/// A provider user as the host directory accepts it: an email or a provider id, 1–128
/// printable characters without spaces or path characters.
pub fn provider_user(field: &'static str, value: &str) -> Result<String, Invalid> {
    // "." and ".." would vanish from the request path (`/users/../meetings`).
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().any(|c| c != '.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(
            field,
            "must be 1-128 characters of letters, digits and @._+-",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn create_budgets_parse_with_defaults_for_what_is_left_out() {
        type Limits = Result<(u32, u32, u32), &'static str>;
        let cases: [(&str, Limits); 5] = [
            ("", Ok((10, 1000, 5000))),
            ("patient=2/60", Ok((2, 1000, 5000))),
            ("patient=1/1,user=3/10,org=4/100", Ok((1, 3, 4))),
            ("nurse=1/1", Err("unknown budget")),
            ("patient=1/0", Err("positive")),
        ];
        for (text, want) in cases {
            let got = text.parse::<CreateBudgets>();
            match want {
                Ok((p, u, o)) => {
                    let b = got.expect(text);
                    assert_eq!(
                        (b.patient.limit, b.user.limit, b.org.limit),
                        (p, u, o),
                        "{text}"
                    );
                }
                Err(part) => assert!(got.expect_err(text).contains(part), "{text}"),
            }
        }
    }

    #[test]
    fn budget_windows_and_retry_after_follow_the_clock() {
        let now = t("2026-12-02T10:59:30Z");
        let org = OrgId::parse("clinic-1", "t").expect("id");
        let user = UserId::parse("pat-9", "t").expect("id");
        let [mine, org_wide] =
            caller_spends(&CreateBudgets::default(), &org, &user, Role::Patient, now);
        assert_eq!(mine.limit, 10);
        assert_eq!(org_wide.limit, 5000);
        assert_eq!(mine.window_ends, t("2026-12-02T11:00:00Z"));
        assert_eq!(mine.retry_after(now), 30);
        let just_before = t("2026-12-02T10:59:59.400Z");
        assert_eq!(mine.retry_after(just_before), 1, "rounded up, never 0");
        assert_ne!(mine.key, org_wide.key);
        let staff = caller_spends(&CreateBudgets::default(), &org, &user, Role::Staff, now);
        assert_eq!(staff[0].limit, 1000);
        let host = host_spend(ProviderKind::Zoom, Account::Org, &org, "Dr@X.org", 100, now);
        assert_eq!(host.window_ends, t("2026-12-03T00:00:00Z"));
        assert_eq!(host.retry_after(now), 13 * 3600 + 30);
        assert!(host.key.contains("dr@x.org") && host.key.contains("2026-12-02"));
        let deployment = host_spend(
            ProviderKind::Zoom,
            Account::Deployment,
            &org,
            "dr@x.org",
            100,
            now,
        );
        assert_ne!(host.key, deployment.key);
    }
}
