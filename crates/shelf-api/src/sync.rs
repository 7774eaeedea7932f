//! The offline sync protocol: mutation batches, their results, conflicts and the dead-letter list.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// One queued edit of a device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutationInput {
    /// Per-device, increasing. A mutation id seen before is answered `duplicate` and not re-applied.
    pub mutation_id: i64,
    /// `material.create`, `material.update`, `material.delete`, `progress.set`, `progress.delete`,
    /// `tags.add`, `tags.remove`.
    #[serde(rename = "type")]
    pub mutation_type: String,
    /// The material's id.
    pub id: Uuid,
    /// The library version the device had seen when it made the edit.
    pub base_version: Option<i64>,
    /// The same fields as the REST body of that action (`tags.*`: `{"tags": [...]}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutationBatchRequest {
    /// In the order the device made them; at most 500.
    pub mutations: Vec<MutationInput>,
}

/// What became of one mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MutationResultView {
    pub mutation_id: i64,
    /// `applied`, `merged`, `duplicate` or `rejected`.
    pub status: String,
    /// The library version after this mutation (for `rejected`: the version it was judged at).
    pub library_version: i64,
    /// For `rejected` (and `duplicate` of a rejected one): why.
    pub code: Option<String>,
    pub message: Option<String>,
    /// For `merged`: the conflicts recorded on the material (`[]` when everything merged).
    #[schema(value_type = Option<Vec<ConflictView>>)]
    pub conflict: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MutationBatchResponse {
    pub library_version: i64,
    pub results: Vec<MutationResultView>,
}

/// A device's edit that overlapped a concurrent edit: the server's value stayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictView {
    pub id: Uuid,
    /// `title` or `body`.
    pub field: String,
    pub server_value: String,
    pub device_value: String,
    pub base_version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&shelf_core::Conflict> for ConflictView {
    fn from(c: &shelf_core::Conflict) -> Self {
        Self {
            id: c.id,
            field: c.field.clone(),
            server_value: c.server_value.clone(),
            device_value: c.device_value.clone(),
            base_version: c.base_version,
            created_at: c.created_at,
        }
    }
}

/// How to settle a conflict: keep the server's value, take the device's, or write a new one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveConflictRequest {
    /// `server`, `device` or `custom`.
    pub resolution: String,
    /// The new value, with `custom`.
    pub value: Option<String>,
}

/// An entry of the dead-letter list: a mutation that could not apply, kept to restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedView {
    pub id: Uuid,
    pub device_id: Option<Uuid>,
    pub mutation_id: Option<i64>,
    #[serde(rename = "type")]
    pub mutation_type: String,
    pub material_id: Uuid,
    #[schema(value_type = Object)]
    pub data: Value,
    /// e.g. `deleted` (the material was deleted concurrently), `not_found`, `validation_failed`.
    pub code: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedPage {
    pub items: Vec<RejectedView>,
}

/// `{"tags": [...]}` for `tags.add` / `tags.remove`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagsInput {
    pub tags: Vec<String>,
}
