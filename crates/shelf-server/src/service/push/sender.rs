//! One push: claim it, encrypt the payload for the subscription (RFC 8291 aes128gcm, by
//! web-push-native), sign with VAPID (RFC 8292), send, and act on the answer (spec PU5):
//! 2xx done; 404/410 the subscription is gone, so it is deleted; 429 and 5xx (and no answer)
//! are retried with backoff, honouring `Retry-After`; anything else is logged and dropped.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use shelf_api::PushPayload;
use shelf_core::{DeviceId, LibraryVersion};
use shelf_store::PushSubscription;
use web_push_native::{p256, Auth, WebPushBuilder};

use super::PushService;

/// Lets the push service replace an undelivered push with a newer one (RFC 8030 §5.4): every
/// push to a device says the same thing, "the library moved", with the latest version.
pub const TOPIC: &str = "shelf-library";
/// Library changes matter but are not urgent: `normal` is delivered on battery too, unlike `low`.
pub const URGENCY: &str = "normal";

/// What an answer (or its absence) means for this push.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// The subscription expired or was unsubscribed: delete it.
    Gone,
    /// Try again, after the push service's `Retry-After` if it gave one.
    Retry(Option<Duration>),
    /// The push service refused this request for good (e.g. 400, 403, 413).
    Refused(StatusCode),
}

pub fn verdict(status: StatusCode, retry_after: Option<&HeaderValue>) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Delivered,
        404 | 410 => Verdict::Gone,
        429 | 500..=599 => Verdict::Retry(retry_after.and_then(parse_retry_after)),
        _ => Verdict::Refused(status),
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The wait before attempt `attempt + 1` without a `Retry-After`: `base`, doubling each time.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
}

/// Claims and sends the push of `version` to `device`; every outcome is handled here.
pub async fn send(push: &PushService, device: DeviceId, version: LibraryVersion) {
    if push.presence.streaming_here(device) {
        return; // it opened a stream since the dispatcher looked (the hub is the whole truth)
    }
    let now = crate::service::auth::now();
    let subscription = match push.store.claim_push(device, version, now, push.streams_seen_since(now)).await {
        Ok(Some(subscription)) => subscription,
        // Another instance sent this version (or a later one), the device opened a stream, or
        // its session or subscription is gone: nothing to send.
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, device = %device.0, version = version.0, "could not claim a push; skipped (the app catches up when opened)");
            return;
        }
    };
    let payload = PushPayload { library_version: version.0, epoch: push.epoch.0.clone() };
    let payload = match serde_json::to_vec(&payload) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::error!(%error, "could not serialise a push payload");
            return;
        }
    };
    let settings = &push.settings;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = match request(push, &subscription, &payload) {
            Ok(request) => push.client.execute(request).await,
            Err(error) => {
                tracing::error!(%error, device = %device.0, "could not build a push request; subscription left as is");
                return;
            }
        };
        let verdict = match &answer {
            Ok(response) => verdict(response.status(), response.headers().get(RETRY_AFTER)),
            Err(error) => {
                tracing::info!(%error, device = %device.0, attempt, "push service did not answer");
                Verdict::Retry(None)
            }
        };
        match verdict {
            Verdict::Delivered => {
                crate::metrics::push_sent("delivered");
                tracing::debug!(device = %device.0, version = version.0, attempt, "push delivered");
                return;
            }
            Verdict::Gone => {
                crate::metrics::push_sent("gone");
                tracing::info!(device = %device.0, "push subscription expired or unsubscribed; deleted");
                if let Err(error) = push.store.discard_push_subscription(device, &subscription.endpoint).await {
                    tracing::warn!(%error, device = %device.0, "could not delete a gone push subscription; the next push will try again");
                }
                return;
            }
            Verdict::Refused(status) => {
                crate::metrics::push_sent("refused");
                tracing::warn!(%status, device = %device.0, "push service refused a push; dropped");
                return;
            }
            Verdict::Retry(_) if attempt >= settings.max_attempts => {
                crate::metrics::push_sent("failed");
                tracing::warn!(device = %device.0, version = version.0, attempt, "push failed after every attempt; dropped (the app catches up when opened)");
                return;
            }
            Verdict::Retry(hint) => {
                let wait = hint.unwrap_or_else(|| backoff(settings.retry_base, attempt)).min(settings.max_retry_delay);
                tracing::info!(device = %device.0, wait_ms = wait.as_millis() as u64, attempt, "push service asked to retry");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The HTTP request: encrypted body and VAPID `Authorization`, `TTL`, `Content-Encoding` from
/// web-push-native; `Urgency` and `Topic` added here.
fn request(push: &PushService, subscription: &PushSubscription, payload: &[u8]) -> anyhow::Result<reqwest::Request> {
    let endpoint: axum::http::Uri = subscription.endpoint.parse()?;
    let ua_public = p256::PublicKey::from_sec1_bytes(&subscription.p256dh)?;
    anyhow::ensure!(subscription.auth.len() == 16, "stored auth secret is {} bytes", subscription.auth.len());
    let ua_auth = Auth::clone_from_slice(&subscription.auth);
    let built = WebPushBuilder::new(endpoint, ua_public, ua_auth)
        .with_valid_duration(push.settings.ttl)
        .with_vapid(&push.key.pair, &push.settings.subject)
        .build(payload.to_vec())?;
    let mut request = reqwest::Request::try_from(built)?;
    request.headers_mut().insert(HeaderName::from_static("urgency"), HeaderValue::from_static(URGENCY));
    request.headers_mut().insert(HeaderName::from_static("topic"), HeaderValue::from_static(TOPIC));
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pu5_answers_map_to_verdicts() {
        let ten = HeaderValue::from_static("10");
        assert_eq!(verdict(StatusCode::CREATED, None), Verdict::Delivered);
        assert_eq!(verdict(StatusCode::GONE, None), Verdict::Gone);
        assert_eq!(verdict(StatusCode::NOT_FOUND, None), Verdict::Gone);
        assert_eq!(verdict(StatusCode::TOO_MANY_REQUESTS, Some(&ten)), Verdict::Retry(Some(Duration::from_secs(10))));
        assert_eq!(verdict(StatusCode::BAD_GATEWAY, None), Verdict::Retry(None));
        assert_eq!(verdict(StatusCode::FORBIDDEN, None), Verdict::Refused(StatusCode::FORBIDDEN));
        assert_eq!(verdict(StatusCode::PAYLOAD_TOO_LARGE, None), Verdict::Refused(StatusCode::PAYLOAD_TOO_LARGE));
    }

    #[test]
    fn pu5_retry_after_as_seconds_or_date_and_backoff_doubles() {
        assert_eq!(parse_retry_after(&HeaderValue::from_static("3")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
        let base = Duration::from_secs(1);
        assert_eq!([1, 2, 3, 4].map(|a| backoff(base, a).as_secs()), [1, 2, 4, 8]);
    }
}
