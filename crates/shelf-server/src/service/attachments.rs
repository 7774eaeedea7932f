//! Attaching uploaded files to materials: library mutations like any other.

use shelf_api::AttachRequest;
use shelf_core::{ContentType, FileName, LibraryMutation, MaterialId, NewAttachment, Sha256Hex, UserId, ValidationError};
use shelf_store::Applied;

use crate::error::ApiResult;
use crate::service::library;
use crate::state::AppState;

/// Attaches a blob the user uploaded; its size must match (checked under the user's lock by
/// the write path).
pub async fn attach(state: &AppState, user: UserId, material: MaterialId, request: &AttachRequest) -> ApiResult<Applied> {
    let sha256 = Sha256Hex::parse(&request.sha256)?;
    if request.size < 0 {
        return Err(ValidationError::new("size", "must be 0 or more").into());
    }
    let attachment = NewAttachment {
        id: uuid::Uuid::now_v7(),
        filename: FileName::parse(&request.filename)?,
        content_type: ContentType::parse(&request.content_type)?,
        size: request.size,
        sha256,
    };
    let mutation = LibraryMutation::AddAttachment { material_id: material, attachment };
    library::apply(state.store.as_ref(), state.bus.as_ref(), user, mutation).await
}

/// Detaches (a tombstone in the feed); the blob is collected later if nothing else uses it.
pub async fn detach(state: &AppState, user: UserId, material: MaterialId, attachment: uuid::Uuid) -> ApiResult<Applied> {
    let mutation = LibraryMutation::RemoveAttachment { material_id: material, attachment_id: attachment };
    library::apply(state.store.as_ref(), state.bus.as_ref(), user, mutation).await
}
