//! Keeping webhook requests off the operator's own network (SSRF).
//!
//! An endpoint URL is anything an admin typed, so the engine must not be
//! made to post into its own network: loopback, private, link-local,
//! shared (CGNAT), multicast and reserved addresses are refused unless a
//! network is allowed in `[webhooks] allow_networks`. A literal address is
//! checked when the endpoint is made; a name is checked on every request,
//! where it resolves (the HTTP client's resolver, [`GuardedResolver`]), so
//! a name that later resolves inward (DNS rebinding) is refused too.
//! Redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// What endpoints may reach.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<IpNet>,
}

impl Guard {
    /// A guard allowing `networks` (CIDR) besides the public internet.
    pub fn allowing(networks: &[String]) -> Result<Self, String> {
        let allowed = networks
            .iter()
            .map(|n| n.parse::<IpNet>().map_err(|e| format!("webhooks.allow_networks: {n:?} is not a network in CIDR form: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Checks an endpoint URL: `http` or `https`, a host, and a literal address only where allowed.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url:?}: only http and https URLs take webhooks"));
        }
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("{url:?} has no host"))?;
        // The URL parser writes every IPv4 form (`2130706433`, `0x7f.1`) as dotted quads.
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => self.permitted(ip),
            Err(_) => Ok(()),
        }
    }

    /// Whether a request may go to `ip`.
    pub fn permitted(&self, ip: IpAddr) -> Result<(), String> {
        let ip = unmapped(ip);
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match inward(ip) {
            Some(what) => Err(format!("{ip} is a {what} address: not allowed for webhooks (see webhooks.allow_networks)")),
            None => Ok(()),
        }
    }
}

/// An IPv4 address carried in IPv6 (mapped, or NAT64), as the IPv4 address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// What kind of inward address `ip` is, if it is one.
fn inward(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => inward_v4(v4),
        IpAddr::V6(v6) => inward_v6(v6),
    }
}

fn inward_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if a == 198 && (18..20).contains(&b) {
        Some("benchmarking")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn inward_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The HTTP client's resolver: a name resolving to any address the guard
/// refuses is refused whole (the request is not made).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    /// A resolver refusing what `guard` refuses.
    #[must_use]
    pub fn new(guard: Arc<Guard>) -> Self {
        Self { guard }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                guard.permitted(addr.ip()).map_err(|e| format!("{host} resolves to {}: {e}", addr.ip()))?;
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_refused_unless_allowed() {
        let guard = Guard::default();
        for inward in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = inward.parse().unwrap();
            assert!(guard.permitted(ip).is_err(), "{inward} should be refused");
        }
        for public in ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            guard.permitted(public.parse().unwrap()).unwrap();
        }
        let local = Guard::allowing(&["127.0.0.0/8".into()]).unwrap();
        local.permitted("127.0.0.1".parse().unwrap()).unwrap();
        local.permitted("::ffff:127.0.0.1".parse().unwrap()).unwrap();
        assert!(local.permitted("10.0.0.1".parse().unwrap()).is_err());
        assert!(Guard::allowing(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_address() {
        let guard = Guard::default();
        guard.check_url("https://hooks.example.com/dispatch").unwrap();
        for bad in [
            "http://127.0.0.1:8080/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(guard.check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_inward_is_refused_when_resolved() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver::new(Arc::new(Guard::default()));
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let error = resolver.resolve(name).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("loopback"), "{error}");
        let allowing = GuardedResolver::new(Arc::new(Guard::allowing(&["127.0.0.0/8".into(), "::1/128".into()]).unwrap()));
        let addrs: Vec<_> = allowing.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty());
    }
}
