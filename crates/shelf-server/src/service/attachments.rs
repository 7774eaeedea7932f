//! Attaching uploaded files to materials: library mutations like any other.

use shelf_api::AttachRequest;
use shelf_blob::BlobKey;
use shelf_core::{ContentType, FileName, LibraryMutation, MaterialId, NewAttachment, Sha256Hex, UserId, ValidationError};
use shelf_store::Applied;

use crate::error::{ApiError, ApiResult};
use crate::service::library;
use crate::state::AppState;

/// The size of the user's stored blob with this digest, if they hold it.
pub async fn held_blob_size(state: &AppState, user: UserId, sha256: &Sha256Hex) -> ApiResult<Option<i64>> {
    let key = BlobKey { user: user.0, sha256: sha256.as_str().to_owned() };
    let stored = state.blobs.head(&key).await.map_err(ApiError::Blob)?;
    stored.map(|meta| i64::try_from(meta.size).map_err(|e| ApiError::Internal(e.into()))).transpose()
}

/// Attaches a blob the user uploaded; its size must match.
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
    match held_blob_size(state, user, &attachment.sha256).await? {
        None => return Err(ApiError::NotFound("blob (upload it first)")),
        Some(size) if size != request.size => return Err(ValidationError::new("size", "does not match the uploaded blob").into()),
        Some(_) => {}
    }
    let mutation = LibraryMutation::AddAttachment { material_id: material, attachment };
    library::apply(state.store.as_ref(), state.bus.as_ref(), user, mutation).await
}

/// Detaches (a tombstone in the feed); the blob is collected later if nothing else uses it.
pub async fn detach(state: &AppState, user: UserId, material: MaterialId, attachment: uuid::Uuid) -> ApiResult<Applied> {
    let mutation = LibraryMutation::RemoveAttachment { material_id: material, attachment_id: attachment };
    library::apply(state.store.as_ref(), state.bus.as_ref(), user, mutation).await
}
