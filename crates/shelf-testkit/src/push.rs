//! A stand-in Web Push service on 127.0.0.1 and a stand-in browser subscription, so tests see
//! exactly the bytes a real push service would receive and prove them correct: the VAPID JWT
//! verifies against the `k=` key with the right audience, expiry and subject, and the body
//! decrypts (RFC 8291 aes128gcm) with the subscription's private key.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::jwt_simple::common::VerificationOptions;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::p256::SecretKey;

/// How the stand-in answers one request.
#[derive(Clone)]
pub enum Answer {
    /// This status, with `Retry-After` when given.
    Status(u16, Option<&'static str>),
    /// Waits until the notify fires, then answers 201 (a slow push service).
    HoldUntil(Arc<Notify>),
    /// Never answers (until the client gives up).
    Never,
}

/// One request as the push service received it.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ReceivedPush {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    received: mpsc::UnboundedSender<ReceivedPush>,
}

/// A push service on 127.0.0.1:<port>; answers 201 unless scripted otherwise.
pub struct PushServiceStandIn {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    received: mpsc::UnboundedReceiver<ReceivedPush>,
    task: tokio::task::JoinHandle<()>,
}

impl PushServiceStandIn {
    pub async fn start() -> Self {
        let (sender, received) = mpsc::unbounded_channel();
        let answers = Arc::new(Mutex::new(VecDeque::new()));
        let script = Script { answers: answers.clone(), received: sender };
        let app = axum::Router::new().fallback(receive).with_state(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stand-in push service");
        });
        Self { base, answers, received, task }
    }

    /// The next requests get these answers, in order; then 201 again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.answers.lock().expect("script").extend(answers);
    }

    /// The next request received, waiting at most `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<ReceivedPush> {
        tokio::time::timeout(wait, self.received.recv()).await.ok().flatten()
    }

    /// A new browser subscription on this push service.
    pub fn subscription(&self) -> BrowserSubscription {
        BrowserSubscription::new(&format!("{}/push/{}", self.base, uuid::Uuid::new_v4().simple()))
    }
}

impl Drop for PushServiceStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(script): State<Script>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let push = ReceivedPush { at: Instant::now(), path: uri.path().to_owned(), headers, body };
    // The test may have stopped listening; the answer still goes out.
    let _ = script.received.send(push);
    let answer = script.answers.lock().expect("script").pop_front().unwrap_or(Answer::Status(201, None));
    match answer {
        Answer::Status(status, retry_after) => {
            let status = StatusCode::from_u16(status).expect("status");
            match retry_after {
                Some(after) => (status, [("retry-after", after)]).into_response(),
                None => status.into_response(),
            }
        }
        Answer::HoldUntil(release) => {
            release.notified().await;
            StatusCode::CREATED.into_response()
        }
        Answer::Never => std::future::pending().await,
    }
}

/// What a browser keeps for one subscription: its P-256 key pair and auth secret.
pub struct BrowserSubscription {
    pub endpoint: String,
    secret: SecretKey,
    auth: [u8; 16],
}

/// A push that passed every check, with its decrypted payload.
#[derive(Debug)]
pub struct OpenedPush {
    pub payload: Value,
    /// The `k=` key of the `Authorization` header (base64url).
    pub vapid_key: String,
    pub subject: String,
}

impl BrowserSubscription {
    pub fn new(endpoint: &str) -> Self {
        let mut auth = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth);
        Self { endpoint: endpoint.to_owned(), secret: SecretKey::random(&mut rand::rngs::OsRng), auth }
    }

    /// `PushSubscription.toJSON()` as a browser sends it.
    pub fn json(&self) -> Value {
        let p256dh = URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes());
        json!({"endpoint": self.endpoint, "expirationTime": null, "keys": {"p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode(self.auth)}})
    }

    /// Whether this request was addressed to this subscription.
    pub fn is_for(&self, push: &ReceivedPush) -> bool {
        self.endpoint.ends_with(&push.path)
    }

    /// Checks the request as a push service and a browser would, and decrypts it. Panics with
    /// the reason on any failure.
    pub fn open(&self, push: &ReceivedPush) -> OpenedPush {
        assert!(self.is_for(push), "push for {} reached {}", push.path, self.endpoint);
        assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
        let ttl: u64 = push.header("ttl").expect("TTL header").parse().expect("TTL is a number");
        assert!(ttl > 0 && ttl <= 24 * 3600, "TTL {ttl}");
        assert!(matches!(push.header("urgency"), Some("very-low" | "low" | "normal" | "high")), "Urgency {:?}", push.header("urgency"));
        let topic = push.header("topic").expect("Topic header");
        assert!(topic.len() <= 32 && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "Topic {topic:?}");

        let authorization = push.header("authorization").expect("Authorization header");
        let rest = authorization.strip_prefix("vapid ").expect("vapid scheme");
        let (mut token, mut key) = (None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(t) = part.strip_prefix("t=") {
                token = Some(t);
            } else if let Some(k) = part.strip_prefix("k=") {
                key = Some(k);
            }
        }
        let (token, key) = (token.expect("t="), key.expect("k="));
        let key_bytes = URL_SAFE_NO_PAD.decode(key).expect("k= is base64url");
        assert_eq!(key_bytes.len(), 65, "k= is an uncompressed point");
        let public = ES256PublicKey::from_bytes(&key_bytes).expect("k= is a P-256 key");
        let claims = public.verify_token::<NoCustomClaims>(token, Some(VerificationOptions::default())).expect("the JWT's ES256 signature verifies with k=");
        // The audience is the endpoint's origin (web-push-native leaves a loopback port out).
        let endpoint: Uri = self.endpoint.parse().expect("endpoint");
        let origin = format!("{}://{}", endpoint.scheme_str().expect("scheme"), endpoint.host().expect("host"));
        let origin_with_port = format!("{origin}:{}", endpoint.port_u16().expect("port"));
        let audiences = claims.audiences.expect("aud").into_set();
        assert!(audiences.contains(&origin) || audiences.contains(&origin_with_port), "aud {audiences:?}, endpoint {}", self.endpoint);
        let now = web_push_native::jwt_simple::prelude::Clock::now_since_epoch();
        let expires = claims.expires_at.expect("exp");
        assert!(expires > now && expires <= now + web_push_native::jwt_simple::prelude::Duration::from_hours(24), "exp not within 24 h");
        let subject = claims.subject.expect("sub");
        assert!(subject.starts_with("mailto:") || subject.starts_with("https:"), "sub {subject}");

        let auth = web_push_native::Auth::clone_from_slice(&self.auth);
        let plain = web_push_native::decrypt(push.body.to_vec(), &self.secret, &auth).expect("the body decrypts with the subscription's key");
        let payload = serde_json::from_slice(&plain).expect("the payload is JSON");
        OpenedPush { payload, vapid_key: key.to_owned(), subject }
    }
}
