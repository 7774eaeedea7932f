//! Accounts and device sessions: argon2id passwords, random bearer tokens stored hashed.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use shelf_core::{DeviceId, DeviceName, Email, Password, UserId};
use shelf_store::{NewSession, SessionAuth, Store};
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};
use crate::service::hashing::HashingPool;
use crate::service::rate_limits::{self, RateLimits, Reservation};
use crate::service::renewals::Renewals;
use crate::service::session_cache::{SessionCache, TokenDigest};
use crate::service::session_reads::SessionReads;
use crate::state::AppState;

/// How a request presented its token.
pub enum Credential<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

impl Credential<'_> {
    pub fn token(&self) -> &str {
        match self {
            Credential::Bearer(token) | Credential::Cookie(token) => token,
        }
    }
}

/// A fresh login: the token is returned once and only its hash is stored.
pub struct IssuedSession {
    pub token: String,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
}

/// Last-seen times (and with them the sliding expiry) are refreshed at most this often, so
/// authentication stays a pure read.
const TOUCH_INTERVAL: time::Duration = time::Duration::seconds(60);

pub fn now() -> OffsetDateTime {
    shelf_core::truncate_to_micros(OffsetDateTime::now_utc())
}

/// 256 random bits, URL-safe base64.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens carry 256 bits of entropy, so a fast hash is enough: nobody can brute-force the
/// preimage, and a stolen database does not reveal usable tokens.
pub fn token_hash(token: &str) -> Vec<u8> {
    token_digest(token).to_vec()
}

/// [`token_hash`] as a fixed-size key (the session cache's).
pub fn token_digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) async fn hash_password(hashing: &HashingPool, password: Password) -> ApiResult<String> {
    hashing
        .run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2 hashing failed: {e}")))
        })
        .await?
}

pub(crate) async fn verify_password(hashing: &HashingPool, password: String, hash: String) -> ApiResult<bool> {
    hashing
        .run(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
            Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await?
}

/// A real argon2id hash of a random password, verified against when the e-mail is unknown so
/// that unknown addresses and wrong passwords take the same time and get the same answer.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default().hash_password(new_token().as_bytes(), &salt).map(|hash| hash.to_string()).unwrap_or_else(|error| {
            // Unknown addresses then answer 500 (their verification fails to parse): loud, not silent.
            tracing::error!(%error, "could not make the decoy password hash");
            String::new()
        })
    })
}

/// Who is signing up or in, and what keeps them from exhausting the server: the address limits
/// count against, the limits, and the bounded hashing pool.
pub struct Gate<'a> {
    pub client: IpAddr,
    pub limits: &'a RateLimits,
    pub hashing: &'a HashingPool,
}

pub async fn register(store: &dyn Store, gate: &Gate<'_>, email: &str, password: &str) -> ApiResult<UserId> {
    let email = Email::parse(email)?;
    let password = Password::parse(password)?;
    let reservation = rate_limits::reserve_registration(store, gate.limits, gate.client, now()).await?;
    let hash = match hash_password(gate.hashing, password).await {
        Ok(hash) => hash,
        Err(error) => return Err(refund_and_return(store, reservation, error).await),
    };
    Ok(store.create_user(&email, &hash, now()).await?)
}

pub async fn login(
    store: &dyn Store,
    gate: &Gate<'_>,
    email: &str,
    password: &str,
    device_name: Option<&str>,
    ttl: Duration,
) -> ApiResult<IssuedSession> {
    let device_name = DeviceName::parse(device_name)?;
    let reservation = rate_limits::reserve_login(store, gate.limits, gate.client, email, now()).await?;
    let user_id = match check_password(store, gate.hashing, email, password).await {
        Ok(user_id) => {
            rate_limits::refund(store, reservation).await?;
            user_id
        }
        Err(ApiError::InvalidCredentials) => return Err(ApiError::InvalidCredentials),
        Err(error) => return Err(refund_and_return(store, reservation, error).await),
    };
    let token = new_token();
    let created_at = now();
    let ttl = time::Duration::try_from(ttl).map_err(|e| ApiError::Internal(e.into()))?;
    let session = NewSession {
        device_id: DeviceId::new(),
        user_id,
        token_hash: token_hash(&token),
        device_name: device_name.as_str().to_owned(),
        created_at,
        expires_at: created_at + ttl,
    };
    store.create_session(&session).await?;
    Ok(IssuedSession { token, device_id: session.device_id, user_id, expires_at: session.expires_at })
}

/// The user whose password this is, or `InvalidCredentials` — the same answer, after the same
/// argon2 work (a decoy hash for unknown addresses), whichever part was wrong (spec AU3).
async fn check_password(store: &dyn Store, hashing: &HashingPool, email: &str, password: &str) -> ApiResult<UserId> {
    // No account has a longer password (Password::MAX_CHARS), so it cannot be right; refusing
    // it unhashed keeps a multi-megabyte "password" from costing more than a short one.
    if password.len() > Password::MAX_CHARS * 4 {
        return Err(ApiError::InvalidCredentials);
    }
    let credentials = match Email::parse(email) {
        Ok(email) => store.user_credentials(&email).await?,
        Err(_) => None,
    };
    let (user_id, hash) = match credentials {
        Some(c) => (Some(c.user_id), c.password_hash),
        None => (None, decoy_hash().to_owned()),
    };
    match (user_id, verify_password(hashing, password.to_owned(), hash).await?) {
        (Some(user_id), true) => Ok(user_id),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// A request that failed for the server's reasons (overload, an internal error) gives back the
/// attempt it reserved, then reports its own error.
pub(crate) async fn refund_and_return(store: &dyn Store, reservation: Reservation, error: ApiError) -> ApiError {
    if let Err(refund_error) = rate_limits::refund(store, reservation).await {
        // Deliberately not the answer: the original error is what the client must see; a lost
        // refund only costs the client one attempt of its allowance.
        tracing::warn!(error = %refund_error, "could not refund a rate-limit reservation");
    }
    error
}

/// Resolves a token to its live session, from `cache` when it resolved there within the
/// cache's TTL and has not expired since, else from the database (read together with the other
/// requests reading at that moment, `reads`). At most once a minute it queues a renewal
/// (`renewals`, not waited for): last-seen now and the expiry slid to the session lifetime from
/// now, so a session in use does not expire (spec AU11); one left unused for its lifetime does.
/// The flag says whether it renewed (a cookie's `Max-Age` follows).
pub async fn authenticate(cache: &SessionCache, reads: &SessionReads, renewals: &Renewals, token: &str) -> ApiResult<(SessionAuth, bool)> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::Unauthenticated);
    }
    let at = now();
    let digest = token_digest(token);
    let session = match cache.get(&digest, at) {
        Some(session) => session,
        None => {
            let generation = cache.generation();
            let session = reads.read(digest).await?.ok_or(ApiError::Unauthenticated)?;
            cache.insert(digest, session.clone(), generation);
            session
        }
    };
    if at - session.last_seen_at > TOUCH_INTERVAL {
        renewals.renew(session.device_id);
        // So that the next requests do not queue it again. The cached expiry stays the one the
        // database holds: the cache never extends a session.
        cache.seen(&digest, at);
        return Ok((session, true));
    }
    Ok((session, false))
}

/// Revokes one of `user`'s sessions (spec AU6): see [`sessions_ended`].
pub async fn revoke(state: &AppState, user: UserId, device: DeviceId) -> ApiResult<()> {
    if state.store.revoke_session(user, device).await? {
        sessions_ended(state, &[device]);
        Ok(())
    } else {
        Err(ApiError::NotFound("device"))
    }
}

/// Call after a commit that ended these sessions (logout, revocation, password change, account
/// deletion): this instance forgets them and ends their streams before the request answers, and
/// the bus tells every other instance to do the same (ADR 0011).
pub fn sessions_ended(state: &AppState, devices: &[DeviceId]) {
    state.sessions.evict_devices(devices);
    for device in devices {
        state.hub.close_device(*device, shelf_api::ErrorCode::Unauthenticated);
        state.bus.revoke(*device);
    }
}
