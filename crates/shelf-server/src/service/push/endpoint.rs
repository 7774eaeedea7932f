//! Which push endpoints the server will send to, so a subscription cannot turn it into a
//! request proxy (spec PU2): `https://` on an allowed host, `http://` only for a loopback host
//! the operator listed by name.

use std::net::IpAddr;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::Url;
use shelf_core::ValidationError;

/// Longest endpoint accepted; browsers' endpoints are a few hundred characters.
pub const MAX_ENDPOINT_CHARS: usize = 2048;

/// The browsers' push services: Chrome (FCM), Firefox (Mozilla autopush), Edge (WNS), Safari.
pub const DEFAULT_ALLOWED_HOSTS: &str =
    "fcm.googleapis.com,*.push.services.mozilla.com,*.notify.windows.com,*.push.apple.com,web.push.apple.com";

/// One `--push-allowed-hosts` entry: an exact host, or `*.suffix` for any host below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Below(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Below(suffix) => host.strip_suffix(suffix.as_str()).is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        }
    }
}

/// The parsed `--push-allowed-hosts` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(pub Vec<HostPattern>);

impl Default for AllowedHosts {
    fn default() -> Self {
        Self::parse(DEFAULT_ALLOWED_HOSTS).unwrap_or(Self(Vec::new()))
    }
}

impl AllowedHosts {
    /// Comma-separated hosts, `*.` wildcards allowed (`127.0.0.1,*.push.example.com`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let patterns = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let lower = entry.to_ascii_lowercase();
                let (pattern, host) = match lower.strip_prefix("*.") {
                    Some(suffix) => (HostPattern::Below(suffix.to_owned()), suffix.to_owned()),
                    None => (HostPattern::Exact(lower.clone()), lower.clone()),
                };
                // A bare host: no scheme, port, path or second wildcard; as the URL parser writes it.
                let valid = !host.is_empty()
                    && !host.contains(['*', '/', '@', '?', '#'])
                    && Url::parse(&format!("https://{host}/")).ok().is_some_and(|url| url.host_str() == Some(host.as_str()));
                if valid {
                    Ok(pattern)
                } else {
                    Err(format!("invalid host {entry:?}: use a host name, an IP address or *.domain"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err("no hosts given".into());
        }
        Ok(Self(patterns))
    }

    /// Checks an endpoint and returns it parsed.
    pub fn check(&self, endpoint: &str) -> Result<Url, ValidationError> {
        let invalid = |message: &str| ValidationError::new("endpoint", message);
        if endpoint.chars().count() > MAX_ENDPOINT_CHARS {
            return Err(invalid("at most 2048 characters"));
        }
        let url = Url::parse(endpoint).map_err(|_| invalid("not a URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        let host = url.host_str().ok_or_else(|| invalid("has no host"))?.to_ascii_lowercase();
        let listed_exactly = self.0.iter().any(|p| matches!(p, HostPattern::Exact(h) if *h == host));
        let allowed = listed_exactly || self.0.iter().any(|p| p.matches(&host));
        match url.scheme() {
            "https" if allowed => Ok(url),
            "http" if listed_exactly && is_loopback(host.trim_matches(['[', ']'])) => Ok(url),
            "http" => Err(invalid("must be https (http only for a loopback host listed in --push-allowed-hosts)")),
            "https" => Err(invalid("this server does not send pushes to that host (--push-allowed-hosts)")),
            _ => Err(invalid("must be an https URL")),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Base64url (browsers send it unpadded; padded is accepted too) of exactly `len` bytes.
pub fn decode_key(field: &'static str, raw: &str, len: usize) -> Result<Vec<u8>, ValidationError> {
    let invalid = || ValidationError::new(field, format!("must be base64url of {len} bytes"));
    if raw.len() > len * 2 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).or_else(|_| URL_SAFE.decode(raw)).map_err(|_| invalid())?;
    if bytes.len() != len {
        return Err(invalid());
    }
    Ok(bytes)
}

/// The browser's key must be a point on P-256, or nothing could ever be encrypted for it.
pub fn decode_p256dh(raw: &str) -> Result<Vec<u8>, ValidationError> {
    let bytes = decode_key("keys.p256dh", raw, 65)?;
    if bytes[0] != 4 || web_push_native::p256::PublicKey::from_sec1_bytes(&bytes).is_err() {
        return Err(ValidationError::new("keys.p256dh", "must be an uncompressed P-256 point"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pu2_hosts_match_exactly_or_below_a_wildcard() {
        let hosts = AllowedHosts::default();
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://wns2-par02p.notify.windows.com/w/?token=1",
            "https://web.push.apple.com/QGx",
            "https://FCM.googleapis.com:443/x",
        ] {
            assert!(hosts.check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://evil.example/x",
            "https://push.services.mozilla.com.evil.example/x",
            "https://evilpush.services.mozilla.com/x",
            "https://user:pw@fcm.googleapis.com/x",
            "https://127.0.0.1/x",
            "ftp://fcm.googleapis.com/x",
            "not a url",
        ] {
            assert!(hosts.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pu2_http_only_for_a_loopback_host_listed_by_name() {
        let local = AllowedHosts::parse("127.0.0.1, [::1], localhost").unwrap();
        assert!(local.check("http://127.0.0.1:9000/push/1").is_ok());
        assert!(local.check("http://[::1]:9000/push/1").is_ok());
        assert!(local.check("http://localhost/push").is_ok());
        assert!(local.check("http://127.0.0.2/push").is_err());
        let wildcard = AllowedHosts::parse("*.example.com,10.0.0.1").unwrap();
        assert!(wildcard.check("http://a.example.com/x").is_err());
        assert!(wildcard.check("http://10.0.0.1/x").is_err(), "not loopback");
        assert!(wildcard.check("https://10.0.0.1/x").is_ok());
        assert!(AllowedHosts::parse("").is_err());
        assert!(AllowedHosts::parse("*.").is_err());
        assert!(AllowedHosts::parse("a*b.com").is_err());
        assert!(AllowedHosts::parse("http://x.com").is_err());
    }

    #[test]
    fn pu2_keys_are_a_point_and_sixteen_bytes() {
        let point = web_push_native::p256::SecretKey::random(&mut rand::rngs::OsRng).public_key();
        use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
        let encoded = URL_SAFE_NO_PAD.encode(point.to_encoded_point(false).as_bytes());
        assert_eq!(decode_p256dh(&encoded).unwrap().len(), 65);
        assert!(decode_p256dh(&URL_SAFE_NO_PAD.encode([4u8; 65])).is_err(), "not on the curve");
        assert!(decode_p256dh(&URL_SAFE_NO_PAD.encode([4u8; 33])).is_err());
        assert_eq!(decode_key("keys.auth", &URL_SAFE_NO_PAD.encode([1u8; 16]), 16).unwrap().len(), 16);
        assert_eq!(decode_key("keys.auth", &URL_SAFE.encode([1u8; 16]), 16).unwrap().len(), 16);
        assert!(decode_key("keys.auth", &URL_SAFE_NO_PAD.encode([1u8; 15]), 16).is_err());
        assert!(decode_key("keys.auth", "!!!!", 16).is_err());
    }
}
