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

/// The delivery client's resolver: the system's answer, public addresses only (loopback
/// too in local mode); a name left with none fails to connect.
pub struct PublicResolver {
    local: LocalMode,
}

impl PublicResolver {
    pub fn new(local: LocalMode) -> Self {
        Self { local }
    }
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let local = self.local;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<std::net::SocketAddr> = found
                .filter(|a| is_public(a.ip()) || (local.0 && a.ip().is_loopback()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(std::io::Error::other(
                    "the receiver's name resolves to no public address",
                ))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A URL whose host is an address literal (which no resolver sees) must name a public one
/// (or loopback, locally); a URL with a host name is judged by [`PublicResolver`].
pub fn literal_allowed(url: &str, local: LocalMode) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return true;
    };
    is_public(ip) || (local.0 && ip.is_loopback())
}
