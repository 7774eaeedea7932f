//! Subscribing and unsubscribing a device (spec PU2): inputs are checked before anything is
//! stored, so the server never holds an endpoint it would refuse to send to.

use shelf_api::PushSubscriptionRequest;
use shelf_core::{DeviceId, UserId};
use shelf_store::{NewPushSubscription, Store};

use super::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::extract::CurrentDevice;
use crate::state::AppState;

pub async fn subscribe(state: &AppState, device: CurrentDevice, request: &PushSubscriptionRequest) -> ApiResult<()> {
    let endpoint = state.push.allowed_hosts().check(&request.endpoint)?;
    let p256dh = endpoint::decode_p256dh(&request.keys.p256dh)?;
    let auth = endpoint::decode_key("keys.auth", &request.keys.auth, 16)?;
    let subscription = NewPushSubscription {
        device_id: device.device_id,
        user_id: device.user_id,
        endpoint: endpoint.to_string(),
        p256dh,
        auth,
        created_at: crate::service::auth::now(),
    };
    if state.store.put_push_subscription(&subscription).await? {
        Ok(())
    } else {
        // The session was revoked between authentication and now.
        Err(ApiError::Unauthenticated)
    }
}

pub async fn unsubscribe(store: &dyn Store, device: CurrentDevice) -> ApiResult<()> {
    store.delete_push_subscription(device.user_id, device.device_id).await?;
    Ok(())
}

/// The user's devices that have a push subscription (for the device list).
pub async fn devices_with_push(store: &dyn Store, user: UserId) -> ApiResult<Vec<DeviceId>> {
    Ok(store.push_devices(user).await?)
}
