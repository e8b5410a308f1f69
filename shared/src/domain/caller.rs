//! Who calls: the authenticated caller and their role.

use crate::ids::{OrgId, UserId};
use std::str::FromStr;

/// The caller's role claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Patient,
    Practitioner,
    Staff,
    Admin,
    /// The clinic platform's backend, acting for its org.
    Service,
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "patient" => Self::Patient,
            "practitioner" => Self::Practitioner,
            "staff" => Self::Staff,
            "admin" => Self::Admin,
            "service" => Self::Service,
            _ => return Err(()),
        })
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Practitioner => "practitioner",
            Self::Staff => "staff",
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }

    /// Service, admin and staff act for their org, not as one of its people.
    pub fn is_org_wide(self) -> bool {
        matches!(self, Self::Service | Self::Admin | Self::Staff)
    }
}

/// An authenticated caller. Names from the token are deliberately not kept (no PHI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
    pub org: OrgId,
}
