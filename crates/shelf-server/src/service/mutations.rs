//! The offline sync protocol: a device's queued mutations, applied in order, each exactly once.
//!
//! Per mutation: a stored receipt means it was delivered before (`duplicate`, nothing changes);
//! otherwise it is parsed, applied with its receipt in one transaction (`applied`/`merged`), or
//! rejected into the dead-letter list with its receipt (`rejected`) — one bad edit never stalls
//! the queue. A database failure stops the batch: what was applied keeps its receipts, so the
//! device's retry of the whole batch is safe.

use serde_json::Value;
use shelf_api::{CreateMaterialRequest, MutationInput, MutationResultView, ProgressInput, TagsInput, UpdateMaterialRequest};
use shelf_bus::ChangeBus;
use shelf_core::{DeviceId, LibraryMutation, LibraryVersion, MaterialId, OnConflict, PlanError, Tags, UserId};
use shelf_store::{Receipt, ReceiptKey, Rejection, Store, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::service::library::{parse_create, parse_progress, parse_update};

pub const MAX_BATCH: usize = 500;

/// Applies `mutations` in order and answers one result per mutation.
pub async fn apply_batch(
    store: &dyn Store,
    bus: &dyn ChangeBus,
    user: UserId,
    device: DeviceId,
    mutations: &[MutationInput],
) -> ApiResult<(LibraryVersion, Vec<MutationResultView>)> {
    if mutations.len() > MAX_BATCH {
        return Err(shelf_core::ValidationError::new("mutations", "at most 500 mutations per batch").into());
    }
    let mut results = Vec::with_capacity(mutations.len());
    for input in mutations {
        results.push(apply_one(store, bus, user, device, input).await?);
    }
    let version = store.library_version(user).await?;
    Ok((version, results))
}

async fn apply_one(
    store: &dyn Store,
    bus: &dyn ChangeBus,
    user: UserId,
    device: DeviceId,
    input: &MutationInput,
) -> ApiResult<MutationResultView> {
    let key = ReceiptKey { device, mutation_id: input.mutation_id };
    if let Some(receipt) = store.receipt(key).await? {
        return Ok(view(receipt, "duplicate"));
    }
    let mutation = match parse(input) {
        Ok(mutation) => mutation,
        Err(error) => return reject(store, user, key, input, "validation_failed", &error.to_string()).await,
    };
    let overridden = stale_delete_snapshot(store, user, input, &mutation).await?;
    match store.apply_with_receipt(user, &mutation, now(), Some(key)).await {
        Ok(applied) => {
            if applied.changed {
                bus.publish(user, applied.library_version);
            }
            if let (Some(rejection), true) = (overridden, applied.changed) {
                // Delete wins, but the edits it overrode stay restorable in the dead-letter list.
                store.reject(user, None, &rejection, now()).await?;
            }
            let receipt = shelf_store::receipt_for(input.mutation_id, &applied)?;
            let status = receipt.status.clone();
            let mut result = view(receipt, &status);
            if applied.merged {
                let conflicts: Vec<shelf_api::ConflictView> = applied.conflicts.iter().map(Into::into).collect();
                result.conflict = serde_json::to_value(conflicts).ok();
            }
            Ok(result)
        }
        Err(StoreError::DuplicateMutation) => {
            let receipt = store.receipt(key).await?.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("receipt vanished")))?;
            Ok(view(receipt, "duplicate"))
        }
        Err(StoreError::Plan(error)) => {
            let code = match &error {
                PlanError::MaterialNotFound if store.material_deleted(user, mutation.material_id()).await? => "deleted",
                PlanError::MaterialNotFound | PlanError::ProgressNotFound | PlanError::ConflictNotFound => "not_found",
                PlanError::MaterialExists => "material_exists",
                PlanError::TooManyTags => "validation_failed",
                PlanError::EditConflict(_) => "edit_conflict",
            };
            let message = if code == "deleted" {
                "the material was deleted on another device; the edit is kept here to restore".to_owned()
            } else {
                error.to_string()
            };
            reject(store, user, key, input, code, &message).await
        }
        Err(other) => Err(other.into()),
    }
}

/// For a delete made before the device saw later edits of the material: the material as it is
/// now, to keep in the dead-letter list (code `deleted`) once the delete has won.
async fn stale_delete_snapshot(
    store: &dyn Store,
    user: UserId,
    input: &MutationInput,
    mutation: &LibraryMutation,
) -> ApiResult<Option<Rejection>> {
    let (LibraryMutation::DeleteMaterial { id }, Some(base)) = (mutation, input.base_version) else { return Ok(None) };
    let Some((material, progress)) = store.material(user, *id).await? else { return Ok(None) };
    if material.version.0 <= base {
        return Ok(None);
    }
    let mut data = serde_json::json!({"title": material.title, "body": material.body, "tags": material.tags});
    if let Some(p) = progress {
        data["progress"] = serde_json::json!({"percentComplete": p.percent_complete, "position": p.position, "completed": p.completed});
    }
    Ok(Some(Rejection {
        mutation_type: "material.create".into(),
        material_id: *id,
        data: data.to_string(),
        code: "deleted".into(),
        message: "edits made on another device after this device last synced were overridden by its delete; restore them from here".into(),
    }))
}

async fn reject(
    store: &dyn Store,
    user: UserId,
    key: ReceiptKey,
    input: &MutationInput,
    code: &str,
    message: &str,
) -> ApiResult<MutationResultView> {
    let rejection = Rejection {
        mutation_type: input.mutation_type.clone(),
        material_id: MaterialId(input.id),
        data: input.data.to_string(),
        code: code.to_owned(),
        message: message.to_owned(),
    };
    let receipt = store.reject(user, Some(key), &rejection, now()).await?;
    let status = if receipt.code.as_deref() == Some(code) && receipt.status == "rejected" { "rejected" } else { "duplicate" };
    Ok(view(receipt, status))
}

fn view(receipt: Receipt, status: &str) -> MutationResultView {
    MutationResultView {
        mutation_id: receipt.mutation_id,
        status: status.to_owned(),
        library_version: receipt.library_version.0,
        code: receipt.code,
        message: receipt.message,
        conflict: receipt.detail.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

fn data<T: serde::de::DeserializeOwned>(value: &Value) -> ApiResult<T> {
    let value = if value.is_null() { Value::Object(Default::default()) } else { value.clone() };
    serde_json::from_value(value).map_err(|e| ApiError::Validation(shelf_core::ValidationError::new("data", e.to_string())))
}

/// Turns one queued mutation into the domain mutation; same validation as the REST routes.
fn parse(input: &MutationInput) -> ApiResult<LibraryMutation> {
    let id = MaterialId(input.id);
    let base_version = input.base_version.map(LibraryVersion);
    Ok(match input.mutation_type.as_str() {
        "material.create" => {
            let mut request: CreateMaterialRequest = data(&input.data)?;
            request.id = Some(input.id);
            parse_create(&request)?
        }
        "material.update" => {
            let request: UpdateMaterialRequest = data(&input.data)?;
            let mut mutation = parse_update(id, &request)?;
            if let LibraryMutation::UpdateMaterial { base_version: base, on_conflict, .. } = &mut mutation {
                *base = base_version;
                *on_conflict = OnConflict::Record;
            }
            mutation
        }
        "material.delete" => LibraryMutation::DeleteMaterial { id },
        "progress.set" => {
            let request: ProgressInput = data(&input.data)?;
            LibraryMutation::SetProgress { material_id: id, update: parse_progress(&request)?, base_version }
        }
        "progress.delete" => LibraryMutation::DeleteProgress { material_id: id },
        "tags.add" | "tags.remove" => {
            let request: TagsInput = data(&input.data)?;
            let tags = Tags::parse(&request.tags)?;
            if input.mutation_type == "tags.add" {
                LibraryMutation::AddTags { id, tags }
            } else {
                LibraryMutation::RemoveTags { id, tags }
            }
        }
        other => {
            return Err(shelf_core::ValidationError::new("type", format!("unknown mutation type {other:?}")).into());
        }
    })
}
