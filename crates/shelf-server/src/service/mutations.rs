//! The offline sync protocol: a device's queued mutations, applied in order, each exactly once.
//!
//! The batch is validated whole first: one that does not follow the protocol (a value out of
//! bounds, a field in the wrong shape) is refused with 400 and nothing applies — that is a client
//! bug, and the message names the mutation. Then each mutation goes through the single write
//! path with its receipt: `applied`/`merged`, `duplicate` (delivered before), or `rejected`
//! (dead-lettered with its receipt) — one edit that does not fit the library's current state
//! never stalls the queue. A database failure stops the batch: what was applied keeps its
//! receipts, so the device's retry of the whole batch is safe.

use shelf_api::{
    ErrorCode, MutationBatchRequest, MutationInput, MutationResultView, MutationStatus, ResolveConflictRequest, PROTOCOL_VERSION,
};
use shelf_core::{
    ContentType, DeviceId, FileName, LibraryMutation, LibraryVersion, MaterialId, NewAttachment, OnConflict, Resolution,
    Sha256Hex, Tags, UserId, ValidationError,
};
use shelf_store::{Applied, Delivery, Outcome, Receipt, ReceiptKey};

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::service::library::{parse_create_fields, parse_progress, parse_update};
use crate::state::AppState;

pub const MAX_BATCH: usize = 500;

/// Applies the batch's mutations in order and answers one result per mutation.
pub async fn apply_batch(
    state: &AppState,
    user: UserId,
    device: DeviceId,
    request: &MutationBatchRequest,
) -> ApiResult<(LibraryVersion, Vec<MutationResultView>)> {
    let protocol = request.protocol_version.unwrap_or(PROTOCOL_VERSION);
    if protocol != PROTOCOL_VERSION {
        let message = format!("this server speaks sync protocol {PROTOCOL_VERSION}, not {protocol}");
        return Err(ApiError::BadRequest(ErrorCode::UnsupportedProtocol, message));
    }
    if request.mutations.len() > MAX_BATCH {
        return Err(ValidationError::new("mutations", "at most 500 mutations per batch").into());
    }
    let parsed = request
        .mutations
        .iter()
        .enumerate()
        .map(|(index, input)| {
            parse(input).map_err(|e| ValidationError::new("mutations", format!("mutations[{index}] ({}): {e}", input.mutation_id())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::with_capacity(parsed.len());
    for (input, mutation) in request.mutations.iter().zip(&parsed) {
        results.push(apply_one(state, user, device, input, mutation).await?);
    }
    let version = state.store.library_version(user).await?;
    Ok((version, results))
}

async fn apply_one(
    state: &AppState,
    user: UserId,
    device: DeviceId,
    input: &MutationInput,
    mutation: &LibraryMutation,
) -> ApiResult<MutationResultView> {
    let data = input.data_json().map_err(|e| ApiError::Internal(e.into()))?;
    let delivery = Delivery { key: ReceiptKey { device, mutation_id: input.mutation_id() }, data };
    let outcome = state.store.apply_delivered(user, mutation, now(), delivery).await?;
    Ok(match outcome {
        Outcome::Applied(applied) => {
            if applied.changed {
                state.bus.publish(user, applied.library_version);
            }
            crate::metrics::sync_mutation(if applied.merged { "merged" } else { "applied" }, applied.conflicts.len());
            applied_view(input.mutation_id(), &applied)
        }
        Outcome::Rejected(receipt) => {
            crate::metrics::sync_mutation("rejected", 0);
            receipt_view(&receipt, MutationStatus::Rejected)
        }
        Outcome::Duplicate(receipt) => {
            crate::metrics::sync_mutation("duplicate", 0);
            receipt_view(&receipt, MutationStatus::Duplicate)
        }
    })
}

fn applied_view(mutation_id: i64, applied: &Applied) -> MutationResultView {
    MutationResultView {
        mutation_id,
        status: if applied.merged { MutationStatus::Merged } else { MutationStatus::Applied },
        library_version: applied.library_version.0,
        code: None,
        message: None,
        conflict: applied.conflicts.iter().map(Into::into).collect(),
    }
}

fn receipt_view(receipt: &Receipt, status: MutationStatus) -> MutationResultView {
    MutationResultView {
        mutation_id: receipt.mutation_id,
        status,
        library_version: receipt.library_version.0,
        code: receipt.code.map(ErrorCode::from),
        message: receipt.message.clone(),
        conflict: receipt.conflicts.iter().map(Into::into).collect(),
    }
}

fn base_version(raw: Option<i64>) -> Result<Option<LibraryVersion>, ValidationError> {
    match raw {
        Some(v) if v < 0 => Err(ValidationError::new("baseVersion", "must be 0 or a library version")),
        other => Ok(other.map(LibraryVersion)),
    }
}

/// A conflict resolution as the domain takes it (a custom value is checked against the
/// conflict's field when planned).
pub fn parse_resolution(resolution: &ResolveConflictRequest) -> Result<Resolution, ValidationError> {
    Ok(match resolution {
        ResolveConflictRequest::Server => Resolution::KeepServer,
        ResolveConflictRequest::Device => Resolution::TakeDevice,
        ResolveConflictRequest::Custom { value } => Resolution::Custom(shelf_core::MaterialBody::parse(value)?.as_str().to_owned()),
    })
}

/// Turns one queued mutation into the domain mutation; the same validation as the REST routes.
fn parse(input: &MutationInput) -> Result<LibraryMutation, ValidationError> {
    if input.mutation_id() < 1 {
        return Err(ValidationError::new("mutationId", "must be 1 or more"));
    }
    let id = MaterialId(input.id());
    let base_version = base_version(input.base_version())?;
    let api = |e: ApiError| match e {
        ApiError::Validation(v) => v,
        other => ValidationError::new("data", other.to_string()),
    };
    Ok(match input {
        MutationInput::MaterialCreate(e) => {
            let d = &e.data;
            parse_create_fields(id, &d.title, &d.body, &d.tags, d.progress.as_ref()).map_err(api)?
        }
        MutationInput::MaterialUpdate(e) => {
            let mut mutation = parse_update(id, &e.data).map_err(api)?;
            if let LibraryMutation::UpdateMaterial { base_version: base, on_conflict, .. } = &mut mutation {
                *base = base_version;
                *on_conflict = OnConflict::Record;
            }
            mutation
        }
        MutationInput::MaterialDelete(_) => LibraryMutation::DeleteMaterial { id, base_version },
        MutationInput::ProgressSet(e) => {
            LibraryMutation::SetProgress { material_id: id, update: parse_progress(&e.data).map_err(api)?, base_version }
        }
        MutationInput::ProgressDelete(_) => LibraryMutation::DeleteProgress { material_id: id },
        MutationInput::TagsAdd(e) => LibraryMutation::AddTags { id, tags: Tags::parse(&e.data.tags)? },
        MutationInput::TagsRemove(e) => LibraryMutation::RemoveTags { id, tags: Tags::parse(&e.data.tags)? },
        MutationInput::ConflictResolve(e) => LibraryMutation::ResolveConflict {
            id,
            conflict_id: e.data.conflict_id(),
            resolution: parse_resolution(&e.data.resolution())?,
        },
        MutationInput::AttachmentAdd(e) => {
            let d = &e.data;
            if d.size < 0 {
                return Err(ValidationError::new("size", "must be 0 or more"));
            }
            let attachment = NewAttachment {
                id: d.attachment_id,
                sha256: Sha256Hex::parse(&d.sha256)?,
                filename: FileName::parse(&d.filename)?,
                content_type: ContentType::parse(&d.content_type)?,
                size: d.size,
            };
            LibraryMutation::AddAttachment { material_id: id, attachment }
        }
        MutationInput::AttachmentRemove(e) => LibraryMutation::RemoveAttachment { material_id: id, attachment_id: e.data.attachment_id },
    })
}
