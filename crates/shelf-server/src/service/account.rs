//! The account lifecycle: changing the password, deleting the account.
//!
//! Both re-prove the password, counted against the same per-account and per-address limits as
//! logins (spec AU7): a stolen session must not become a way to guess the password, nor to delete
//! the account without it. A wrong password answers 403 `wrong_password` (the session itself is
//! fine, so not 401, which clients take as "signed out").

use shelf_blob::BlobKey;
use shelf_core::{DeviceId, Password, UserId};
use shelf_store::Account;

use crate::error::{ApiError, ApiResult};
use crate::service::auth::{hash_password, now, refund_and_return, sessions_ended, verify_password, Gate};
use crate::service::rate_limits;
use crate::state::AppState;

/// Sets a new password and signs out every other device of the user (their tokens are refused and
/// their streams end on every instance, [`sessions_ended`]). The current session stays.
pub async fn change_password(state: &AppState, gate: &Gate<'_>, user: UserId, device: DeviceId, current: &str, new: &str) -> ApiResult<()> {
    let new = Password::parse(new)?;
    reprove(state, gate, user, current).await?;
    let hash = hash_password(gate.hashing, new).await?;
    let signed_out = state.store.change_password(user, &hash, device).await?;
    sessions_ended(state, &signed_out);
    Ok(())
}

/// Deletes the account and everything of it: the database rows in one transaction, then the
/// streams, the blobs' bytes and the staged uploads (after the commit, so a failure there leaves
/// only unreachable bytes, never rows pointing at missing ones).
pub async fn delete(state: &AppState, gate: &Gate<'_>, user: UserId, password: &str) -> ApiResult<()> {
    reprove(state, gate, user, password).await?;
    let deleted = state.store.delete_user(user).await?;
    sessions_ended(state, &deleted.devices);
    for sha256 in deleted.blobs {
        let key = BlobKey { user: user.0, sha256 };
        match state.blobs.delete(&key).await {
            Ok(()) | Err(shelf_blob::BlobError::NotFound) => {}
            // The account is gone either way; the bytes are unreachable (no record points at
            // them) and the operator can find them by the user id in the log.
            Err(error) => tracing::warn!(%error, user = %user.0, sha256 = %key.sha256, "could not delete a deleted account's blob"),
        }
    }
    for (upload, staging) in deleted.uploads {
        if let Err(error) = crate::service::uploads::remove_staged(state.blobs.as_ref(), upload, staging.as_deref()).await {
            tracing::warn!(%error, %upload, "could not remove a deleted account's staged upload");
        }
    }
    tracing::info!(user = %user.0, devices = deleted.devices.len(), "account deleted");
    Ok(())
}

/// Checks `password` against the user's, under the login limits; the attempt is refunded when
/// right, as a correct login's is.
async fn reprove(state: &AppState, gate: &Gate<'_>, user: UserId, password: &str) -> ApiResult<Account> {
    let account = state.store.account(user).await?.ok_or(ApiError::Unauthenticated)?;
    // No account has a longer password, so it cannot be right (and is never hashed).
    if password.len() > Password::MAX_CHARS * 4 {
        return Err(ApiError::WrongPassword);
    }
    let reservation = rate_limits::reserve_login(state.store.as_ref(), gate.limits, gate.client, &account.email, now()).await?;
    match verify_password(gate.hashing, password.to_owned(), account.password_hash.clone()).await {
        Ok(true) => {
            rate_limits::refund(state.store.as_ref(), reservation).await?;
            Ok(account)
        }
        Ok(false) => Err(ApiError::WrongPassword),
        Err(error) => Err(refund_and_return(state.store.as_ref(), reservation, error).await),
    }
}
