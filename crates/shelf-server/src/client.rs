//! Who is asking, and where: the client's address and this request's own origin.
//!
//! Rate limits, the session cookie's `Secure` flag and every origin check need the same two
//! answers, so they are computed here and nowhere else. Forwarding headers are believed only
//! when the socket peer is a configured trusted proxy (`--trusted-proxies`); from anyone else
//! they are ignored, since any client can send them.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use ipnet::IpNet;

use crate::state::AppState;

/// Which header a trusted proxy uses to say who its client was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyHeader {
    /// `X-Forwarded-For`, with `X-Forwarded-Proto` and `X-Forwarded-Host`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…;proto=…;host=…`.
    Forwarded,
}

impl ProxyHeader {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ProxyHeader::XForwardedFor),
            "forwarded" => Ok(ProxyHeader::Forwarded),
            other => Err(format!("unknown proxy header {other:?}: use x-forwarded-for or forwarded")),
        }
    }
}

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    pub networks: Vec<IpNet>,
    pub header: ProxyHeader,
}

impl TrustedProxies {
    /// `10.0.0.0/8, 127.0.0.1, ::1`: networks or single addresses, comma-separated.
    pub fn parse_networks(raw: &str) -> Result<Vec<IpNet>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("invalid trusted proxy {s:?}: use an address or a network like 10.0.0.0/8"))
            })
            .collect()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks.iter().any(|net| net.contains(&address))
    }
}

/// `scheme://host:port`, lower-cased, with the scheme's default port filled in, so that
/// `http://Example.com` and `http://example.com:80` compare equal and `https://…` does not
/// equal `http://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// An `Origin` header or a configured origin (`https://app.example.com`, no path).
    /// `null` (opaque origins) and anything unparseable give `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (scheme, authority) = raw.trim().split_once("://")?;
        Self::from_scheme_and_authority(scheme, authority.strip_suffix('/').unwrap_or(authority))
    }

    fn from_scheme_and_authority(scheme: &str, authority: &str) -> Option<Self> {
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty() || authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            // `[::1]` alone ends in `]`; `[::1]:8080` splits after it.
            Some((host, port)) if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) => {
                (host, Some(port.parse::<u16>().ok()?))
            }
            _ => (authority, None),
        };
        let port = match (port, scheme.as_str()) {
            (Some(port), _) => port,
            (None, "http" | "ws") => 80,
            (None, "https" | "wss") => 443,
            (None, _) => return None,
        };
        Some(Self { scheme, host: host.to_ascii_lowercase(), port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// What the server knows about the request's sender.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address: the socket peer, or what a trusted proxy reported.
    pub client: IpAddr,
    /// Whether the client reached us over HTTPS (as a trusted proxy said; Shelf itself serves HTTP).
    pub https: bool,
    /// This server's origin as the client addressed it, if the request named a host.
    pub origin: Option<Origin>,
}

impl RequestContext {
    pub fn of(parts: &Parts, proxies: &TrustedProxies) -> Self {
        // Without `ConnectInfo` (a router driven directly in a test) the peer is unknown and
        // trusted by no configuration that does not trust everything.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| canonical(address.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let own_host = || {
            parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
        };
        if !proxies.trusts(peer) {
            let origin = own_host().and_then(|host| Origin::from_scheme_and_authority("http", &host));
            return Self { client: peer, https: false, origin };
        }
        let hops = match proxies.header {
            ProxyHeader::XForwardedFor => x_forwarded_hops(&parts.headers),
            ProxyHeader::Forwarded => forwarded_hops(&parts.headers),
        };
        // Walk back from the nearest hop: the first address we do not trust is the client.
        let mut client = peer;
        let mut reported: Option<&Hop> = None;
        for hop in hops.iter().rev() {
            let Some(address) = hop.address else { break };
            client = address;
            reported = Some(hop);
            if !proxies.trusts(address) {
                break;
            }
        }
        let reported = reported.or(hops.last());
        let https = reported.and_then(|hop| hop.proto.as_deref()).is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let scheme = if https { "https" } else { "http" };
        let host = reported.and_then(|hop| hop.host.clone()).or_else(own_host);
        let origin = host.and_then(|host| Origin::from_scheme_and_authority(scheme, &host));
        Self { client, https, origin }
    }
}

/// Whether the socket peer of a request is one of the trusted proxies: only then are headers a
/// proxy sets (forwarding headers, `X-Request-Id`) believed.
pub fn peer_is_trusted_proxy(extensions: &axum::http::Extensions, proxies: &TrustedProxies) -> bool {
    extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(address)| proxies.trusts(address.ip()))
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, &state.settings.trusted_proxies))
    }
}

/// One proxy hop as reported by the forwarding headers.
#[derive(Debug, Default)]
struct Hop {
    address: Option<IpAddr>,
    proto: Option<String>,
    host: Option<String>,
}

/// Values of every instance of a comma-separated header, in order.
fn list_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// `X-Forwarded-For: client, proxy1`; the scheme and host come from the last
/// `X-Forwarded-Proto` / `X-Forwarded-Host` value, the one our trusted proxy set.
fn x_forwarded_hops(headers: &HeaderMap) -> Vec<Hop> {
    let proto = list_values(headers, "x-forwarded-proto").last().map(|p| (*p).to_owned());
    let host = list_values(headers, "x-forwarded-host").last().map(|h| (*h).to_owned());
    let hops: Vec<Hop> = list_values(headers, "x-forwarded-for")
        .into_iter()
        .map(|raw| Hop { address: parse_address(raw), proto: proto.clone(), host: host.clone() })
        .collect();
    if hops.is_empty() {
        // A proxy that names no client may still say how it was reached.
        return vec![Hop { address: None, proto, host }];
    }
    hops
}

/// RFC 7239: `Forwarded: for=192.0.2.60;proto=https;host=a.example, for="[2001:db8::1]:4711"`.
/// Each element describes the request one proxy received, so the client's element also says
/// which scheme and host the client used.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Hop> {
    list_values(headers, "forwarded")
        .into_iter()
        .map(|element| {
            let mut hop = Hop::default();
            for pair in element.split(';') {
                let Some((key, value)) = pair.trim().split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.address = parse_address(value),
                    "proto" => hop.proto = Some(value.to_owned()),
                    "host" => hop.host = Some(value.to_owned()),
                    _ => {}
                }
            }
            hop
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`, `[2001:db8::1]:443`; `unknown` and obfuscated
/// identifiers give `None`.
fn parse_address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .or_else(|_| raw.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| raw.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>())
        .ok()
        .map(canonical)
}

/// IPv4 peers on a dual-stack socket arrive as `::ffff:a.b.c.d`; compare them as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::http::Request;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri("/api/auth/login");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    fn proxies(list: &str, header: ProxyHeader) -> TrustedProxies {
        TrustedProxies { networks: TrustedProxies::parse_networks(list).unwrap(), header }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(Origin::parse("http://Example.com"), Origin::parse("http://example.com:80"));
        assert_ne!(Origin::parse("https://example.com"), Origin::parse("http://example.com:443"));
        assert_ne!(Origin::parse("http://example.com:8080"), Origin::parse("http://example.com"));
        assert_eq!(Origin::parse("http://[::1]:8787").unwrap().to_string(), "http://[::1]:8787");
        assert_eq!(Origin::parse("https://[::1]").unwrap().to_string(), "https://[::1]:443");
        for bad in ["null", "example.com", "http://", "http://a:b", "http://user@a", "ftp://a"] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_are_ignored_from_untrusted_peers() {
        let headers = [("host", "shelf.test:8787"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")];
        let context = RequestContext::of(&parts("198.51.100.7:5000", &headers), &TrustedProxies::default());
        assert_eq!(context.client, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(!context.https);
        assert_eq!(context.origin, Origin::parse("http://shelf.test:8787"));
    }

    #[test]
    fn a_trusted_proxy_reports_client_scheme_and_host() {
        let trusted = proxies("10.0.0.0/8, 127.0.0.1", ProxyHeader::XForwardedFor);
        // The client forged a first entry; the proxy appended the real one.
        let headers = [
            ("host", "backend:8787"),
            ("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shelf.example.com"),
        ];
        let context = RequestContext::of(&parts("10.0.0.1:40000", &headers), &trusted);
        assert_eq!(context.client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(context.https);
        assert_eq!(context.origin, Origin::parse("https://shelf.example.com"));
        let proto_only = RequestContext::of(&parts("127.0.0.1:1", &[("host", "a.example"), ("x-forwarded-proto", "https")]), &trusted);
        assert_eq!((proto_only.client, proto_only.origin), ("127.0.0.1".parse().unwrap(), Origin::parse("https://a.example")));
        let mapped = RequestContext::of(&parts("[::ffff:127.0.0.1]:1", &[("x-forwarded-for", "2001:db8::5")]), &trusted);
        assert_eq!(mapped.client, "2001:db8::5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn rfc7239_forwarded_is_read_per_hop() {
        let trusted = proxies("10.1.2.3", ProxyHeader::Forwarded);
        let headers = [
            ("host", "backend"),
            ("forwarded", "for=\"[2001:db8::1]:4711\";proto=https;host=shelf.example.org, for=10.1.2.3;proto=http"),
            ("x-forwarded-for", "9.9.9.9"),
        ];
        let context = RequestContext::of(&parts("10.1.2.3:1", &headers), &trusted);
        assert_eq!(context.client, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert!(context.https);
        assert_eq!(context.origin, Origin::parse("https://shelf.example.org"));
        let unknown = RequestContext::of(&parts("10.1.2.3:1", &[("forwarded", "for=unknown")]), &trusted);
        assert_eq!(unknown.client, "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_lists_parse() {
        assert_eq!(TrustedProxies::parse_networks("10.0.0.0/8, 127.0.0.1,::1").unwrap().len(), 3);
        assert!(TrustedProxies::parse_networks("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse_networks("proxy.local").is_err());
        assert_eq!(ProxyHeader::parse("Forwarded").unwrap(), ProxyHeader::Forwarded);
        assert!(ProxyHeader::parse("x-real-ip").is_err());
    }
}
