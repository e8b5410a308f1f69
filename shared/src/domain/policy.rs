//! Who may do what (DESIGN.md, Identity). Anything not allowed answers 404 when the caller
//! may not see the meeting, 403 when they may see it but not do this.

use super::DomainError;
use super::{Caller, LinkRole, Meeting, Role};
use crate::ids::UserId;

/// Read a meeting: service, admin and staff of its org; its host and participants.
pub fn can_see(caller: &Caller, meeting: &Meeting) -> bool {
    caller.org == meeting.org
        && (caller.role.is_org_wide()
            || caller.user_id == meeting.host
            || meeting.is_participant(&caller.user_id))
}

/// The meeting if the caller may see it, otherwise 404 (never revealing that it exists).
pub fn visible(caller: &Caller, meeting: Meeting) -> Result<Meeting, DomainError> {
    if can_see(caller, &meeting) {
        Ok(meeting)
    } else {
        Err(DomainError::NotFound("Meeting"))
    }
}

/// Create or reuse an appointment meeting: service, admin, staff; a practitioner only as
/// the meeting's own host. Checked before anything is read, so the answer reveals nothing.
pub fn may_provision_appointment(caller: &Caller, host: &UserId) -> Result<(), DomainError> {
    match caller.role {
        Role::Service | Role::Admin | Role::Staff => Ok(()),
        Role::Practitioner if &caller.user_id == host => Ok(()),
        _ => Err(DomainError::Forbidden),
    }
}

/// Create or reuse a conversation meeting: service, admin, and anyone listed in it.
pub fn may_provision_conversation(
    caller: &Caller,
    host: &UserId,
    participants: &[UserId],
) -> Result<(), DomainError> {
    // A patient is never a host, whatever the body says.
    if caller.role == Role::Patient && &caller.user_id == host {
        return Err(DomainError::Forbidden);
    }
    let listed = &caller.user_id == host || participants.contains(&caller.user_id);
    if matches!(caller.role, Role::Service | Role::Admin) || listed {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// A PUT on a subject that has a live meeting is idempotent, never an overwrite: the same
/// host and set of participants answer that meeting; anything else is a conflict (changes
/// go through PATCH or DELETE), so nobody can squat a subject and hold its host link.
pub fn same_people(
    meeting: &Meeting,
    host: &UserId,
    participants: &[UserId],
) -> Result<(), DomainError> {
    let same = &meeting.host == host
        && meeting.participants.len() == participants.len()
        && participants.iter().all(|p| meeting.is_participant(p));
    if same {
        Ok(())
    } else {
        Err(DomainError::SubjectMismatch)
    }
}

/// A conversation's next meeting, after its reuse window: service, admin, or someone
/// listed in the previous meeting (`None` when that one is gone).
pub fn may_start_next(caller: &Caller, previous: Option<&Meeting>) -> Result<(), DomainError> {
    let listed = |m: &Meeting| caller.user_id == m.host || m.is_participant(&caller.user_id);
    if matches!(caller.role, Role::Service | Role::Admin) || previous.is_none_or(listed) {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// Staff manage meetings but host one only when the host directory maps them.
pub fn may_host(caller: &Caller, host: &UserId, mapped: bool) -> Result<(), DomainError> {
    if caller.role == Role::Staff && &caller.user_id == host && !mapped {
        return Err(DomainError::Forbidden);
    }
    Ok(())
}

/// Reusing an existing appointment meeting through PUT: a practitioner only as its host.
/// The caller can already see the meeting.
pub fn may_reuse_appointment(caller: &Caller, meeting: &Meeting) -> Result<(), DomainError> {
    if caller.role == Role::Practitioner && caller.user_id != meeting.host {
        return Err(DomainError::Forbidden);
    }
    Ok(())
}

/// Reschedule, cancel, start, end: service, admin, staff and the meeting's host. The caller
/// can already see the meeting.
pub fn may_manage(caller: &Caller, meeting: &Meeting) -> Result<(), DomainError> {
    if caller.role.is_org_wide() || caller.user_id == meeting.host {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// A user's meeting list: that user; service, admin and staff (of the caller's org, which
/// the list is scoped to).
pub fn may_list(caller: &Caller, user: &UserId) -> Result<(), DomainError> {
    if &caller.user_id == user || caller.role.is_org_wide() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// Stats: service and admin.
pub fn may_read_stats(caller: &Caller) -> Result<(), DomainError> {
    if matches!(caller.role, Role::Service | Role::Admin) {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// The link role a caller gets when they do not ask for one: their own.
pub fn default_link_role(caller: &Caller, meeting: &Meeting) -> LinkRole {
    if caller.user_id == meeting.host {
        LinkRole::Host
    } else {
        LinkRole::Participant
    }
}

/// Host link: the meeting's host and service. Participant link: its participants and host,
/// staff and service. The caller must already be able to see the meeting.
pub fn may_get_link(caller: &Caller, meeting: &Meeting, role: LinkRole) -> Result<(), DomainError> {
    let is_host = caller.user_id == meeting.host;
    let allowed = match role {
        LinkRole::Host => is_host || caller.role == Role::Service,
        LinkRole::Participant => {
            is_host
                || meeting.is_participant(&caller.user_id)
                || matches!(caller.role, Role::Staff | Role::Service)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;
    use chrono::Utc;

    fn uid(s: &str) -> UserId {
        UserId::parse(s, "t").unwrap()
    }

    fn caller(user: &str, role: Role, org: &str) -> Caller {
        Caller {
            user_id: uid(user),
            role,
            org: OrgId::parse(org, "t").unwrap(),
        }
    }

    fn meeting() -> Meeting {
        crate::domain::sample_meeting(Utc::now())
    }

    #[test]
    fn only_the_org_and_the_people_in_it_see_a_meeting() {
        let m = meeting();
        assert!(can_see(&caller("dr-7", Role::Practitioner, "clinic-1"), &m));
        assert!(can_see(&caller("pat-9", Role::Patient, "clinic-1"), &m));
        assert!(can_see(&caller("any", Role::Staff, "clinic-1"), &m));
        assert!(!can_see(&caller("pat-8", Role::Patient, "clinic-1"), &m));
        assert!(!can_see(
            &caller("dr-8", Role::Practitioner, "clinic-1"),
            &m
        ));
        // Same user id, other org: invisible.
        assert!(!can_see(
            &caller("dr-7", Role::Practitioner, "clinic-2"),
            &m
        ));
        assert!(!can_see(&caller("svc", Role::Service, "clinic-2"), &m));
    }

    #[test]
    fn the_host_link_is_for_the_host_and_service_only() {
        let m = meeting();
        let host = LinkRole::Host;
        assert!(may_get_link(&caller("dr-7", Role::Practitioner, "clinic-1"), &m, host).is_ok());
        assert!(may_get_link(&caller("svc", Role::Service, "clinic-1"), &m, host).is_ok());
        for c in [
            caller("pat-9", Role::Patient, "clinic-1"),
            caller("st", Role::Staff, "clinic-1"),
            caller("ad", Role::Admin, "clinic-1"),
        ] {
            assert!(may_get_link(&c, &m, host).is_err(), "{c:?}");
        }
        let part = LinkRole::Participant;
        assert!(may_get_link(&caller("pat-9", Role::Patient, "clinic-1"), &m, part).is_ok());
        assert!(may_get_link(&caller("st", Role::Staff, "clinic-1"), &m, part).is_ok());
        assert!(may_get_link(&caller("ad", Role::Admin, "clinic-1"), &m, part).is_err());
    }

    #[test]
    fn practitioners_provision_only_as_their_own_host() {
        let host = uid("dr-7");
        assert!(may_provision_appointment(&caller("dr-7", Role::Practitioner, "c"), &host).is_ok());
        assert!(
            may_provision_appointment(&caller("dr-8", Role::Practitioner, "c"), &host).is_err()
        );
        assert!(may_provision_appointment(&caller("p", Role::Patient, "c"), &host).is_err());
        for r in [Role::Service, Role::Admin, Role::Staff] {
            assert!(may_provision_appointment(&caller("x", r, "c"), &host).is_ok());
        }
    }
}
