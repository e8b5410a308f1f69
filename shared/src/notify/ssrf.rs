//! SSRF guard for subscription URLs: at subscription (`check_subscription_url`: the URL's
//! syntax, then every address its name resolves to) and at every delivery
//! (`PublicResolver`, the delivery client's resolver: a name that resolves to a private,
//! loopback, link-local or metadata address is refused at connect time, so a DNS change
//! after subscribing cannot turn a delivery inward).
//!
//! A resolver only sees names: a URL whose host is a literal IP never reaches it, so the
//! delivery side checks the URL with [`check_url`] too (no I/O, cheap).

use crate::domain::Invalid;
use async_trait::async_trait;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Host;

/// Whether deliveries may go to loopback `http` (the local stack only: set in code by the
/// local gateway, never from the environment, so a template cannot set it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalMode(pub bool);

/// Longest URL accepted (what browsers and most receivers handle).
pub const MAX_URL_LEN: usize = 2048;
/// A subscription's DNS check must not hold the request for long.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

const FIELD: &str = "url";
const INWARD: &str = "must not point to a private, loopback, link-local or metadata address";

/// Names to addresses: a port, so tests can inject DNS answers.
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// `127.0.0.0/8`, `::1`, and either written as an IPv4-mapped IPv6 address.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Where a delivery may go: public addresses, and loopback in the local stack only.
pub fn allowed(ip: IpAddr, local: LocalMode) -> bool {
    is_public(ip) || (local.0 && is_loopback(ip))
}

/// `localhost` and `*.localhost` (RFC 6761: always loopback, never looked up elsewhere).
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == "localhost" || host.ends_with(".localhost")
}

/// The URL's syntax: absolute, `https` (loopback `http` only in local mode), no
/// credentials, a host, at most [`MAX_URL_LEN`] characters; a literal IP host must be
/// public (loopback in local mode), and `localhost` names are loopback. No I/O.
pub fn check_url(raw: &str, local: LocalMode) -> Result<Url, Invalid> {
    if raw.len() > MAX_URL_LEN {
        return Err(Invalid::new(FIELD, "must be at most 2048 characters"));
    }
    let url =
        Url::parse(raw.trim()).map_err(|_| Invalid::new(FIELD, "must be an absolute https URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(
            FIELD,
            "must not carry a user name or password",
        ));
    }
    let loopback = match url.host() {
        None => return Err(Invalid::new(FIELD, "must have a host")),
        Some(Host::Domain(d)) if is_localhost_name(d) => true,
        Some(Host::Domain(_)) => false,
        Some(Host::Ipv4(ip)) => literal(IpAddr::V4(ip), local)?,
        Some(Host::Ipv6(ip)) => literal(IpAddr::V6(ip), local)?,
    };
    if loopback && !local.0 {
        return Err(Invalid::new(FIELD, INWARD));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if local.0 && loopback => Ok(url),
        _ => Err(Invalid::new(FIELD, "must be an https URL")),
    }
}

/// Whether a literal IP host is loopback; an error when it may not be delivered to.
fn literal(ip: IpAddr, local: LocalMode) -> Result<bool, Invalid> {
    if is_loopback(ip) {
        return Ok(true);
    }
    if allowed(ip, local) {
        Ok(false)
    } else {
        Err(Invalid::new(FIELD, INWARD))
    }
}

/// [`check_url`], then every address the host's name resolves to must be allowed: one
/// private answer among public ones refuses the URL, and so does a name that does not
/// resolve.
pub async fn check_subscription_url(
    raw: &str,
    local: LocalMode,
    resolver: &dyn Resolver,
) -> Result<Url, Invalid> {
    let url = check_url(raw, local)?;
    let Some(Host::Domain(name)) = url.host() else {
        // A literal IP: judged by check_url.
        return Ok(url);
    };
    if is_localhost_name(name) {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let answered = tokio::time::timeout(RESOLVE_TIMEOUT, resolver.resolve(name, port)).await;
    let addrs = match answered {
        Ok(Ok(addrs)) if !addrs.is_empty() => addrs,
        _ => return Err(Invalid::new(FIELD, "has a host name that does not resolve")),
    };
    if addrs.iter().all(|a| allowed(a.ip(), local)) {
        Ok(url)
    } else {
        tracing::info!(host = %name, "a subscription URL resolving inward was refused");
        Err(Invalid::new(FIELD, INWARD))
    }
}

/// The delivery client's DNS resolver (`reqwest::ClientBuilder::dns_resolver`): resolves
/// through the [`Resolver`] port and hands reqwest only the allowed addresses, so a name
/// re-pointed inward after subscription is never connected to.
#[derive(Clone)]
pub struct PublicResolver {
    local: LocalMode,
    resolver: Arc<dyn Resolver>,
}

impl PublicResolver {
    pub fn new(local: LocalMode, resolver: Arc<dyn Resolver>) -> Self {
        Self { local, resolver }
    }
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (local, resolver) = (self.local, self.resolver.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let found = resolver.resolve(&host, 0).await?;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allowed(a.ip(), local))
                .collect();
            if kept.is_empty() {
                tracing::warn!(host = %host, "a delivery's host resolves to no public address");
                let refused = io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the host resolves to no public address",
                );
                return Err(refused.into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is a public unicast address: none of the private, shared, loopback,
/// link-local (cloud metadata), documentation, benchmarking, multicast or reserved ranges,
/// and IPv6 forms that embed an IPv4 address are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IANA's IPv4 special-purpose registry, the ranges not globally reachable (plus 6to4's
/// relay anycast and multicast).
const V4_REFUSED: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // CGNAT shared space
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata (169.254.169.254)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // TEST-NET-1
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // TEST-NET-2
    ([203, 0, 113, 0], 24),  // TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4_REFUSED.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, bits: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Ranges inside global unicast (2000::/3) that are not public.
const V6_REFUSED: &[(Ipv6Addr, u32)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
];

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || (bits >> 32 == 0 && bits > 1) {
        return Some(low);
    }
    if in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return Some(low);
    }
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    // Outside 2000::/3 is every other kind: ::, ::1, ULA fc00::/7 (AWS's metadata
    // fd00:ec2::254), link-local fe80::/10, multicast ff00::/8, NAT64 local-use, discard.
    let global_unicast = in_v6(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
    global_unicast && !V6_REFUSED.iter().any(|(net, bits)| in_v6(ip, *net, *bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn is_public_refuses_every_special_ipv4_range() {
        for refused in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.254",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
        ] {
            assert!(!is_public(ip(refused)), "{refused} must be refused");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "169.253.255.255",
            "223.255.255.254",
            "11.0.0.1",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn is_public_refuses_every_special_ipv6_range_and_judges_embedded_ipv4_by_it() {
        for refused in [
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "ff0e::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "2002:0a00:0001::1",
            "2002:7f00:0001::",
            "2001::1",
            "3fff::1",
            "100::1",
            "64:ff9b:1::1",
        ] {
            assert!(!is_public(ip(refused)), "{refused} must be refused");
        }
        for public in [
            "2606:2800:220:1:248:1893:25c8:1946",
            "2a00:1450:4001:81c::200e",
            "::ffff:93.184.216.34",
            "64:ff9b::93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    fn refused(url: &str, local: bool) -> bool {
        check_url(url, LocalMode(local)).is_err_and(|e| e.field == "url")
    }

    #[test]
    fn check_url_takes_public_https_only_outside_local_mode() {
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "https://169.254.169.254/",
            "https://10.0.0.1/",
            "https://localhost/",
            "https://api.localhost/",
            "https://localhost./",
            "https://[::1]/",
            "https://[::ffff:7f00:1]/",
            "https://[fd00:ec2::254]/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "http://example.com/",
            "http://127.0.0.1:8080/hook",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "/relative/path",
            "example.com/hook",
            "",
            "mailto:a@example.com",
            "file:///etc/passwd",
        ] {
            assert!(refused(bad, false), "{bad} must be refused");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(refused(&long, false));
        for good in [
            "https://example.com/hook",
            "https://example.com:8443/hook?x=1",
            "https://93.184.216.34/hook",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
        ] {
            assert!(check_url(good, LocalMode(false)).is_ok(), "{good}");
        }
    }

    #[test]
    fn check_url_takes_loopback_http_in_local_mode_only_and_never_private() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]:9/",
            "http://localhost:3000/",
            "https://127.0.0.1/",
        ] {
            assert!(check_url(good, LocalMode(true)).is_ok(), "{good}");
        }
        for bad in [
            "http://10.0.0.1/",
            "https://10.0.0.1/",
            "http://169.254.169.254/",
            "http://example.com/",
        ] {
            assert!(refused(bad, true), "{bad} must be refused in local mode");
        }
    }

    /// DNS answers from a table; names not in it do not resolve.
    struct Table(Vec<(&'static str, Vec<&'static str>)>);

    #[async_trait]
    impl Resolver for Table {
        async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            let (_, ips) = self
                .0
                .iter()
                .find(|(h, _)| *h == host)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))?;
            Ok(ips.iter().map(|i| SocketAddr::new(ip(i), port)).collect())
        }
    }

    fn table() -> Table {
        Table(vec![
            ("public.example", vec!["93.184.216.34"]),
            ("inward.example", vec!["10.1.2.3"]),
            ("mixed.example", vec!["93.184.216.34", "127.0.0.1"]),
            ("metadata.example", vec!["169.254.169.254", "fd00:ec2::254"]),
            ("loop.example", vec!["127.0.0.1"]),
        ])
    }

    #[tokio::test]
    async fn a_name_is_refused_when_any_address_it_resolves_to_is_inward() {
        let t = table();
        let check = |u: &'static str, local: bool| {
            let t = &t;
            async move { check_subscription_url(u, LocalMode(local), t).await }
        };
        assert!(check("https://public.example/h", false).await.is_ok());
        for bad in [
            "https://inward.example/h",
            "https://mixed.example/h",
            "https://metadata.example/h",
            "https://loop.example/h",
            "https://nowhere.example/h",
        ] {
            let e = check(bad, false).await.unwrap_err();
            assert_eq!(e.field, "url", "{bad}");
        }
        assert!(check("https://loop.example/h", true).await.is_ok());
        assert!(check("https://inward.example/h", true).await.is_err());
    }

    async fn delivered_to(r: &PublicResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = host.parse().map_err(|_| "name".to_owned())?;
        match Resolve::resolve(r, name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn the_delivery_resolver_hands_over_public_addresses_only() {
        let t: Arc<dyn Resolver> = Arc::new(table());
        let public = PublicResolver::new(LocalMode(false), t.clone());
        let ips = |v: Vec<SocketAddr>| v.iter().map(SocketAddr::ip).collect::<Vec<_>>();
        let got = delivered_to(&public, "public.example").await.unwrap();
        assert_eq!(ips(got), [ip("93.184.216.34")]);
        // A name re-pointed to a mix keeps its public address only.
        let got = delivered_to(&public, "mixed.example").await.unwrap();
        assert_eq!(ips(got), [ip("93.184.216.34")]);
        for inward in ["inward.example", "metadata.example", "loop.example"] {
            assert!(delivered_to(&public, inward).await.is_err(), "{inward}");
        }
        assert!(delivered_to(&public, "nowhere.example").await.is_err());
        let local = PublicResolver::new(LocalMode(true), t);
        let got = delivered_to(&local, "loop.example").await.unwrap();
        assert_eq!(ips(got), [ip("127.0.0.1")]);
        assert!(delivered_to(&local, "inward.example").await.is_err());
    }

    #[tokio::test]
    async fn a_reqwest_client_with_the_resolver_never_connects_inward() {
        // A listener on loopback: the client would reach it, were loopback not refused.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicResolver::new(
                LocalMode(false),
                Arc::new(table()),
            )))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, past the guard.
            .no_proxy()
            .build()
            .unwrap();
        let sent = client
            .post(format!("http://loop.example:{port}/hook"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        assert!(sent.is_err());
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected to loopback");
    }
}
