//! SSRF guard for subscription URLs: at subscription (`check_url`) and at every delivery
//! (`PublicResolver`, the delivery client's resolver: a name that resolves to a private,
//! loopback, link-local or metadata address is refused at connect time, so a DNS change
//! after subscribing cannot turn a delivery inward).

use std::net::IpAddr;

/// Whether deliveries may go to loopback `http` (the local stack only: set in code by the
/// local gateway, never from the environment, so a template cannot set it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalMode(pub bool);

/// Whether `ip` is a public unicast address (placeholder: the full rule is being written).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_private() || v4.is_loopback() || v4.is_link_local()),
        IpAddr::V6(v6) => !v6.is_loopback(),
    }
}
