//! Accounts and device sessions: argon2id passwords, random bearer tokens stored hashed.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use shelf_core::{DeviceId, DeviceName, Email, Password, UserId};
use shelf_store::{NewSession, SessionAuth, SessionInfo, Store};
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};

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

/// Last-seen times are refreshed at most this often, so authentication stays a pure read.
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
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Each argon2id run holds 19 MiB and a core for tens of milliseconds. Unbounded, a burst of
/// logins spawns hundreds of blocking threads and exhausts memory (seen: 24 GB, OOM-killed at
/// 256 concurrent logins), so runs queue for one permit per core instead.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        tokio::sync::Semaphore::new(cores)
    })
}

async fn hash_password(password: Password) -> ApiResult<String> {
    let _permit = hashing_permits().acquire().await.map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2 hashing failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

async fn verify_password(password: String, hash: String) -> ApiResult<bool> {
    let _permit = hashing_permits().acquire().await.map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

/// A real argon2id hash of a random password, verified against when the e-mail is unknown so
/// that unknown addresses and wrong passwords take the same time and get the same answer.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(new_token().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

pub async fn register(store: &dyn Store, email: &str, password: &str) -> ApiResult<UserId> {
    let email = Email::parse(email)?;
    let password = Password::parse(password)?;
    let hash = hash_password(password).await?;
    Ok(store.create_user(&email, &hash, now()).await?)
}

pub async fn login(
    store: &dyn Store,
    email: &str,
    password: &str,
    device_name: Option<&str>,
    ttl: Duration,
) -> ApiResult<IssuedSession> {
    let device_name = DeviceName::parse(device_name)?;
    let credentials = match Email::parse(email) {
        Ok(email) => store.user_credentials(&email).await?,
        Err(_) => None,
    };
    let (user_id, hash) = match credentials {
        Some(c) => (Some(c.user_id), c.password_hash),
        None => (None, decoy_hash().to_owned()),
    };
    let valid = verify_password(password.to_owned(), hash).await?;
    let user_id = match (user_id, valid) {
        (Some(user_id), true) => user_id,
        _ => return Err(ApiError::InvalidCredentials),
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

/// Resolves a token to its live session, refreshing last-seen at most once a minute.
pub async fn authenticate(store: &dyn Store, token: &str) -> ApiResult<SessionAuth> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::Unauthenticated);
    }
    let at = now();
    let session = store.session_by_token_hash(&token_hash(token), at).await?.ok_or(ApiError::Unauthenticated)?;
    if at - session.last_seen_at > TOUCH_INTERVAL {
        store.touch_session(session.device_id, at).await?;
    }
    Ok(session)
}

pub async fn devices(store: &dyn Store, user: UserId) -> ApiResult<Vec<SessionInfo>> {
    Ok(store.list_sessions(user, now()).await?)
}

pub async fn revoke(store: &dyn Store, user: UserId, device: DeviceId) -> ApiResult<()> {
    if store.revoke_session(user, device).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("device"))
    }
}
