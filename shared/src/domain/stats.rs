//! An org's counters: by status, by provider, and attendance of ended meetings. Every change
//! of a meeting moves them in the same write (the stores apply [`deltas`]).

use super::{Meeting, MeetingStatus, ProviderKind};
use std::collections::BTreeMap;

/// One counter of an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    Status(MeetingStatus),
    Provider(ProviderKind),
    /// Ended meetings both sides joined.
    BothJoined,
    /// Ended meetings somebody never joined.
    NoShow,
}

impl Counter {
    /// Its attribute name in a stats item.
    pub fn name(self) -> String {
        match self {
            Self::Status(s) => format!("s_{s}"),
            Self::Provider(p) => format!("p_{p}"),
            Self::BothJoined => "a_bothJoined".to_owned(),
            Self::NoShow => "a_noShow".to_owned(),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        if let Some(s) = name.strip_prefix("s_") {
            return s.parse().ok().map(Self::Status);
        }
        if let Some(p) = name.strip_prefix("p_") {
            return p.parse().ok().map(Self::Provider);
        }
        match name {
            "a_bothJoined" => Some(Self::BothJoined),
            "a_noShow" => Some(Self::NoShow),
            _ => None,
        }
    }
}

/// An org's counters, summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub by_status: BTreeMap<String, i64>,
    pub by_provider: BTreeMap<String, i64>,
    pub both_joined: i64,
    pub no_show: i64,
}

impl Stats {
    pub fn add(&mut self, counter: Counter, value: i64) {
        match counter {
            Counter::Status(s) => *self.by_status.entry(s.to_string()).or_default() += value,
            Counter::Provider(p) => *self.by_provider.entry(p.to_string()).or_default() += value,
            Counter::BothJoined => self.both_joined += value,
            Counter::NoShow => self.no_show += value,
        }
    }
}

/// What a change from `before` (`None`: a new meeting) to `after` does to the counters.
pub fn deltas(before: Option<&Meeting>, after: &Meeting) -> Vec<(Counter, i64)> {
    let mut deltas = Vec::new();
    match before {
        None => {
            deltas.push((Counter::Status(after.status), 1));
            deltas.push((Counter::Provider(after.provider), 1));
        }
        Some(b) if b.status != after.status => {
            deltas.push((Counter::Status(b.status), -1));
            deltas.push((Counter::Status(after.status), 1));
        }
        Some(_) => {}
    }
    let ended_now = after.status == MeetingStatus::Ended
        && before.is_none_or(|b| b.status != MeetingStatus::Ended);
    if ended_now {
        let a = &after.attendance;
        let both = a.host_joined_at.is_some() && a.participant_joined_at.is_some();
        deltas.push((
            if both {
                Counter::BothJoined
            } else {
                Counter::NoShow
            },
            1,
        ));
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sample_meeting;
    use MeetingStatus::*;
    use chrono::Utc;

    #[test]
    fn each_change_moves_exactly_its_counters() {
        let m = sample_meeting(Utc::now());
        let with = |status, host: bool, patient: bool| {
            let mut x = m.clone();
            x.status = status;
            x.attendance.host_joined_at = host.then(Utc::now);
            x.attendance.participant_joined_at = patient.then(Utc::now);
            x
        };
        let s = Counter::Status;
        type Case = (Option<Meeting>, Meeting, Vec<(Counter, i64)>);
        let cases: [Case; 5] = [
            (
                None,
                with(Scheduled, false, false),
                vec![
                    (s(Scheduled), 1),
                    (Counter::Provider(ProviderKind::Zoom), 1),
                ],
            ),
            (
                Some(with(Scheduled, false, false)),
                with(Scheduled, true, false),
                vec![],
            ),
            (
                Some(with(Scheduled, false, false)),
                with(Started, false, false),
                vec![(s(Scheduled), -1), (s(Started), 1)],
            ),
            (
                Some(with(Started, true, true)),
                with(Ended, true, true),
                vec![(s(Started), -1), (s(Ended), 1), (Counter::BothJoined, 1)],
            ),
            (
                Some(with(Started, true, false)),
                with(Ended, true, false),
                vec![(s(Started), -1), (s(Ended), 1), (Counter::NoShow, 1)],
            ),
        ];
        for (before, after, expected) in cases {
            assert_eq!(deltas(before.as_ref(), &after), expected, "{before:?}");
        }
    }

    #[test]
    fn counter_names_round_trip() {
        let all = MeetingStatus::ALL
            .map(Counter::Status)
            .into_iter()
            .chain(ProviderKind::ALL.map(Counter::Provider))
            .chain([Counter::BothJoined, Counter::NoShow]);
        for c in all {
            assert_eq!(Counter::parse(&c.name()), Some(c));
        }
        assert_eq!(Counter::parse("s_unknown"), None);
        assert_eq!(Counter::parse("pk"), None);
    }
}
