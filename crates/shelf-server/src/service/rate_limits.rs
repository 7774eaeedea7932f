//! Login and registration limits per client address and per account (spec AU7).
//!
//! Counted in the database ([`Store::count_attempts`]), so they hold across instances, in fixed
//! windows. A login reserves one failure on its account and its address *before* the password is
//! hashed (so a flood of guesses costs one upsert each, not an argon2 run) and a correct password
//! takes the reservation back: only failures count, and a thousand devices of one user logging
//! in from one address never trip it. Registrations count per address whatever their outcome.
//! Accounts are keyed by a hash of the normalised address whether or not the account exists,
//! so the answer never tells which addresses are registered.

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shelf_store::Store;
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};

/// The limits; 0 switches one off. Defaults follow OWASP's advice for authentication: about
/// ten failures per account within minutes, more per address (several people may share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Wrong-password logins per account per window (`--login-failures-per-account`).
    pub login_failures_per_account: u32,
    /// Failed logins per client address per window (`--login-failures-per-address`).
    pub login_failures_per_address: u32,
    /// Registrations per client address per window (`--registrations-per-address`).
    pub registrations_per_address: u32,
    /// The window every limit counts in (`--rate-limit-window-secs`).
    pub window: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_failures_per_account: 10,
            login_failures_per_address: 100,
            registrations_per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Attempts counted for one request, to take back if it turns out not to count.
#[derive(Debug)]
pub struct Reservation {
    buckets: Vec<String>,
    window_start: i64,
}

/// Counts a login attempt against `account` (the e-mail as typed) and `client`; refuses with
/// [`ApiError::RateLimited`] when either is over its limit.
pub async fn reserve_login(
    store: &dyn Store,
    limits: &RateLimits,
    client: IpAddr,
    account: &str,
    now: OffsetDateTime,
) -> ApiResult<Reservation> {
    let checks = [
        (format!("login-account:{}", account_key(account)), limits.login_failures_per_account),
        (format!("login-address:{}", address_key(client)), limits.login_failures_per_address),
    ];
    reserve(store, limits.window, &checks, now).await
}

/// Counts a registration from `client`.
pub async fn reserve_registration(store: &dyn Store, limits: &RateLimits, client: IpAddr, now: OffsetDateTime) -> ApiResult<Reservation> {
    let checks = [(format!("register-address:{}", address_key(client)), limits.registrations_per_address)];
    reserve(store, limits.window, &checks, now).await
}

/// Takes the attempts back: a correct password, or a request the server could not evaluate
/// (overloaded), is not a failure the client should pay for.
pub async fn refund(store: &dyn Store, reservation: Reservation) -> ApiResult<()> {
    if reservation.buckets.is_empty() {
        return Ok(());
    }
    Ok(store.refund_attempts(&reservation.buckets, reservation.window_start).await?)
}

/// Deletes counters of windows that ended before `now`.
pub async fn purge(store: &dyn Store, limits: &RateLimits, now: OffsetDateTime) -> ApiResult<u64> {
    let (window_start, _) = window(limits.window, now);
    Ok(store.purge_attempts(window_start).await?)
}

async fn reserve(store: &dyn Store, window_length: Duration, checks: &[(String, u32)], now: OffsetDateTime) -> ApiResult<Reservation> {
    let (window_start, retry_after) = window(window_length, now);
    let (buckets, limits): (Vec<String>, Vec<u32>) = checks.iter().filter(|(_, limit)| *limit > 0).cloned().unzip();
    if buckets.is_empty() {
        return Ok(Reservation { buckets, window_start });
    }
    let counts = store.count_attempts(&buckets, window_start).await?;
    if counts.iter().zip(&limits).any(|(count, limit)| *count > i64::from(*limit)) {
        return Err(ApiError::RateLimited(retry_after));
    }
    Ok(Reservation { buckets, window_start })
}

/// The fixed window containing `now` (its start in Unix seconds) and the time until it ends.
fn window(length: Duration, now: OffsetDateTime) -> (i64, Duration) {
    let length = i64::try_from(length.as_secs()).unwrap_or(i64::MAX).max(1);
    let now = now.unix_timestamp();
    let start = now - now.rem_euclid(length);
    let remaining = u64::try_from(start + length - now).unwrap_or(1).max(1);
    (start, Duration::from_secs(remaining))
}

/// The account's bucket name: a hash, so the table never holds e-mail addresses (registered or
/// not) in the clear. Addresses that parse are normalised first, so case does not matter.
fn account_key(account: &str) -> String {
    let normalised = shelf_core::Email::parse(account).map(|e| e.as_str().to_owned());
    let digest = match &normalised {
        Ok(email) => Sha256::digest(email.as_bytes()),
        Err(_) => Sha256::digest(account.as_bytes()),
    };
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// IPv4 addresses count one by one; IPv6 clients by their /64, since one host usually holds a
/// whole /64 and could otherwise rotate through addresses for free.
fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn windows_are_fixed_and_retry_after_points_at_their_end() {
        let at = |secs| OffsetDateTime::from_unix_timestamp(secs).unwrap();
        assert_eq!(window(Duration::from_secs(900), at(1_800)), (1_800, Duration::from_secs(900)));
        assert_eq!(window(Duration::from_secs(900), at(2_699)), (1_800, Duration::from_secs(1)));
        assert_eq!(window(Duration::from_secs(0), at(5)), (5, Duration::from_secs(1)));
    }

    #[test]
    fn accounts_and_addresses_have_stable_keys() {
        assert_eq!(account_key("Ada@Example.com"), account_key(" ada@example.com "));
        assert_ne!(account_key("ada@example.com"), account_key("bob@example.com"));
        assert_eq!(account_key("not an email").len(), 64);
        assert_eq!(address_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(address_key("2001:db8:1:2:aaaa::1".parse().unwrap()), address_key("2001:db8:1:2::ffff".parse().unwrap()));
    }
}
