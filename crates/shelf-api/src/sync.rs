//! The offline sync protocol: mutation batches, their results, conflicts and the dead-letter list.
//!
//! A mutation is `{"mutationId", "type", "id", "baseVersion"?, "data"?}`; `type` selects the
//! shape of `data` (the REST body of the same action). The schema is exact, so a batch that does
//! not match it is refused whole (400) before anything is applied.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::library::TagText;
use crate::{ErrorCode, ProgressInput, UpdateMaterialRequest};

/// The protocol this server speaks. A client sends it as `protocolVersion`; another value is
/// refused with 400 `unsupported_protocol`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The fields every queued mutation carries, and its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope<D> {
    /// Per device, increasing from 1. A mutation id seen before is answered `duplicate` and not
    /// re-applied.
    #[serde(deserialize_with = "crate::int::i64")]
    #[schema(minimum = 1)]
    pub mutation_id: i64,
    /// The material's id (also for progress, tag and attachment mutations).
    pub id: Uuid,
    /// The library version the device had seen when it made the edit.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::int::option_i64")]
    #[schema(minimum = 0)]
    pub base_version: Option<i64>,
    pub data: D,
}

/// `data` of mutations that carry none: absent or `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoData {}

/// The fields of a mutation that carries no data (`material.delete`, `progress.delete`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BareEnvelope {
    #[serde(deserialize_with = "crate::int::i64")]
    #[schema(minimum = 1)]
    pub mutation_id: i64,
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::int::option_i64")]
    #[schema(minimum = 0)]
    pub base_version: Option<i64>,
    #[serde(default)]
    pub data: NoData,
}

/// `data` of `material.create`: as `POST /api/materials`, without `id` (it is the mutation's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaterialCreateData {
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 1048576, pattern = "^[^\\u0000]*$")]
    pub body: String,
    #[serde(default)]
    #[schema(value_type = Vec<TagText>, max_items = 50)]
    pub tags: Vec<String>,
    pub progress: Option<ProgressInput>,
}

/// `data` of `tags.add` / `tags.remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagsInput {
    #[schema(value_type = Vec<TagText>, max_items = 50)]
    pub tags: Vec<String>,
}

/// `data` of `attachment.add`: a blob the user uploaded (`HEAD /api/blobs/{sha256}` is 200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentAddData {
    /// The new attachment's id, chosen by the device.
    pub attachment_id: Uuid,
    /// 64 lower-case hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// 1 to 255 characters, no path separators.
    #[schema(min_length = 1, max_length = 255, pattern = "^[^/\\\\\\u0000]*[^/\\\\\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^/\\\\\\u0000]*$")]
    pub filename: String,
    /// A MIME type such as `application/pdf`.
    #[schema(max_length = 255, pattern = "^[ -.0-~]+/[ -~]+$")]
    pub content_type: String,
    #[serde(deserialize_with = "crate::int::i64")]
    #[schema(minimum = 0)]
    pub size: i64,
}

/// `data` of `attachment.remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentRemoveData {
    pub attachment_id: Uuid,
}

/// `data` of `conflict.resolve`: the conflict, and how to settle it (as
/// `POST …/conflicts/{conflictId}/resolve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "resolution", rename_all = "lowercase")]
pub enum ConflictResolveData {
    /// Keep the server's value.
    Server {
        #[serde(rename = "conflictId")]
        conflict_id: Uuid,
    },
    /// Take the device's value.
    Device {
        #[serde(rename = "conflictId")]
        conflict_id: Uuid,
    },
    /// Write a new value (checked against the conflict's field: a title must be a valid title).
    Custom {
        #[serde(rename = "conflictId")]
        conflict_id: Uuid,
        #[schema(max_length = 1048576, pattern = "^[^\\u0000]*$")]
        value: String,
    },
}

impl ConflictResolveData {
    pub fn conflict_id(&self) -> Uuid {
        match self {
            ConflictResolveData::Server { conflict_id } | ConflictResolveData::Device { conflict_id } => *conflict_id,
            ConflictResolveData::Custom { conflict_id, .. } => *conflict_id,
        }
    }

    pub fn resolution(&self) -> ResolveConflictRequest {
        match self {
            ConflictResolveData::Server { .. } => ResolveConflictRequest::Server,
            ConflictResolveData::Device { .. } => ResolveConflictRequest::Device,
            ConflictResolveData::Custom { value, .. } => ResolveConflictRequest::Custom { value: value.clone() },
        }
    }
}

/// One queued edit of a device, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type")]
pub enum MutationInput {
    #[serde(rename = "material.create")]
    MaterialCreate(Envelope<MaterialCreateData>),
    #[serde(rename = "material.update")]
    MaterialUpdate(Envelope<UpdateMaterialRequest>),
    /// A delete with a `baseVersion` older than the material's last change still wins; the
    /// material as it was is kept in the dead-letter list (code `deleted`).
    #[serde(rename = "material.delete")]
    MaterialDelete(BareEnvelope),
    #[serde(rename = "progress.set")]
    ProgressSet(Envelope<ProgressInput>),
    #[serde(rename = "progress.delete")]
    ProgressDelete(BareEnvelope),
    #[serde(rename = "tags.add")]
    TagsAdd(Envelope<TagsInput>),
    #[serde(rename = "tags.remove")]
    TagsRemove(Envelope<TagsInput>),
    #[serde(rename = "conflict.resolve")]
    ConflictResolve(Envelope<ConflictResolveData>),
    #[serde(rename = "attachment.add")]
    AttachmentAdd(Envelope<AttachmentAddData>),
    #[serde(rename = "attachment.remove")]
    AttachmentRemove(Envelope<AttachmentRemoveData>),
}

macro_rules! envelope_field {
    ($self:ident, $field:ident) => {
        match $self {
            MutationInput::MaterialCreate(e) => e.$field,
            MutationInput::MaterialUpdate(e) => e.$field,
            MutationInput::MaterialDelete(e) => e.$field,
            MutationInput::ProgressSet(e) => e.$field,
            MutationInput::ProgressDelete(e) => e.$field,
            MutationInput::TagsAdd(e) => e.$field,
            MutationInput::TagsRemove(e) => e.$field,
            MutationInput::ConflictResolve(e) => e.$field,
            MutationInput::AttachmentAdd(e) => e.$field,
            MutationInput::AttachmentRemove(e) => e.$field,
        }
    };
}

impl MutationInput {
    pub fn mutation_id(&self) -> i64 {
        envelope_field!(self, mutation_id)
    }

    pub fn id(&self) -> Uuid {
        envelope_field!(self, id)
    }

    pub fn base_version(&self) -> Option<i64> {
        envelope_field!(self, base_version)
    }

    /// The mutation's `data` as JSON text, kept in the dead-letter list if it cannot apply.
    pub fn data_json(&self) -> Result<String, serde_json::Error> {
        match self {
            MutationInput::MaterialCreate(e) => serde_json::to_string(&e.data),
            MutationInput::MaterialUpdate(e) => serde_json::to_string(&e.data),
            MutationInput::MaterialDelete(e) | MutationInput::ProgressDelete(e) => serde_json::to_string(&e.data),
            MutationInput::ProgressSet(e) => serde_json::to_string(&e.data),
            MutationInput::TagsAdd(e) | MutationInput::TagsRemove(e) => serde_json::to_string(&e.data),
            MutationInput::ConflictResolve(e) => serde_json::to_string(&e.data),
            MutationInput::AttachmentAdd(e) => serde_json::to_string(&e.data),
            MutationInput::AttachmentRemove(e) => serde_json::to_string(&e.data),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutationBatchRequest {
    /// The protocol version the client speaks; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::int::option_u32")]
    #[schema(minimum = 1, maximum = 1)]
    pub protocol_version: Option<u32>,
    /// In the order the device made them; at most 500.
    #[schema(max_items = 500)]
    pub mutations: Vec<MutationInput>,
}

/// What became of one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MutationStatus {
    /// Applied as sent, committed at `libraryVersion`.
    Applied,
    /// Applied through the merge rules; `conflicts` lists the conflicts it recorded.
    Merged,
    /// Delivered before: nothing changed; the stored result.
    Duplicate,
    /// Not applied: `code` and `message` say why; it is in the dead-letter list.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MutationResultView {
    pub mutation_id: i64,
    pub status: MutationStatus,
    /// The library version after this mutation (for `rejected`: the version it was judged at).
    pub library_version: i64,
    /// For `rejected` (and `duplicate` of a rejected one): why.
    pub code: Option<ErrorCode>,
    pub message: Option<String>,
    /// The conflicts a merge recorded (their texts: `GET /api/materials/{id}/conflicts`).
    pub conflict: Vec<ConflictSummaryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MutationBatchResponse {
    pub library_version: i64,
    pub results: Vec<MutationResultView>,
}

/// Which text field a conflict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConflictFieldView {
    Title,
    Body,
}

impl From<shelf_core::ConflictField> for ConflictFieldView {
    fn from(field: shelf_core::ConflictField) -> Self {
        match field {
            shelf_core::ConflictField::Title => ConflictFieldView::Title,
            shelf_core::ConflictField::Body => ConflictFieldView::Body,
        }
    }
}

/// A conflict as materials carry it: without its texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictSummaryView {
    pub id: Uuid,
    pub field: ConflictFieldView,
    pub base_version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&shelf_core::ConflictSummary> for ConflictSummaryView {
    fn from(c: &shelf_core::ConflictSummary) -> Self {
        Self { id: c.id, field: c.field.into(), base_version: c.base_version, created_at: c.created_at }
    }
}

/// A device's edit that overlapped a concurrent edit: the server's value stayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictView {
    pub id: Uuid,
    pub field: ConflictFieldView,
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
            field: c.field.into(),
            server_value: c.server_value.clone(),
            device_value: c.device_value.clone(),
            base_version: c.base_version,
            created_at: c.created_at,
        }
    }
}

/// How to settle a conflict: keep the server's value, take the device's, or write a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "resolution", rename_all = "lowercase")]
pub enum ResolveConflictRequest {
    Server,
    Device,
    /// `value` is checked against the conflict's field (a title must be a valid title).
    Custom {
        #[schema(max_length = 1048576, pattern = "^[^\\u0000]*$")]
        value: String,
    },
}

/// The kinds of queued mutation, as in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum MutationType {
    #[serde(rename = "material.create")]
    MaterialCreate,
    #[serde(rename = "material.update")]
    MaterialUpdate,
    #[serde(rename = "material.delete")]
    MaterialDelete,
    #[serde(rename = "progress.set")]
    ProgressSet,
    #[serde(rename = "progress.delete")]
    ProgressDelete,
    #[serde(rename = "tags.add")]
    TagsAdd,
    #[serde(rename = "tags.remove")]
    TagsRemove,
    #[serde(rename = "conflict.resolve")]
    ConflictResolve,
    #[serde(rename = "attachment.add")]
    AttachmentAdd,
    #[serde(rename = "attachment.remove")]
    AttachmentRemove,
}

impl From<shelf_core::MutationKind> for MutationType {
    fn from(kind: shelf_core::MutationKind) -> Self {
        use shelf_core::MutationKind as K;
        match kind {
            K::MaterialCreate => MutationType::MaterialCreate,
            K::MaterialUpdate => MutationType::MaterialUpdate,
            K::MaterialDelete => MutationType::MaterialDelete,
            K::ProgressSet => MutationType::ProgressSet,
            K::ProgressDelete => MutationType::ProgressDelete,
            K::TagsAdd => MutationType::TagsAdd,
            K::TagsRemove => MutationType::TagsRemove,
            K::ConflictResolve => MutationType::ConflictResolve,
            K::AttachmentAdd => MutationType::AttachmentAdd,
            K::AttachmentRemove => MutationType::AttachmentRemove,
        }
    }
}

/// An entry of the dead-letter list: a mutation that could not apply, kept to restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedView {
    pub id: Uuid,
    pub device_id: Option<Uuid>,
    pub mutation_id: Option<i64>,
    #[serde(rename = "type")]
    pub mutation_type: MutationType,
    pub material_id: Uuid,
    /// The mutation's `data` as it was sent (the shape its `type` defines); `null` in lists when
    /// larger than 16 KiB — read the entry itself (`GET /api/library/rejected/{id}`) for it.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// Bytes of `data` as JSON.
    pub data_bytes: u64,
    /// e.g. `deleted` (the material was deleted concurrently), `not_found`, `conflict_overflow`.
    pub code: ErrorCode,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Which page of the dead-letter list to read.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RejectedQueryParams {
    /// The `nextBefore` of the previous page.
    pub before: Option<Uuid>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedPage {
    pub items: Vec<RejectedView>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<Uuid>,
}
