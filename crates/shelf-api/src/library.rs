//! Materials, progress, the library version and the change feed.

use serde::{Deserialize, Serialize};
use shelf_core::{Material, Progress};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A study material's own fields (as in the change feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaterialFields {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The library version of this material's last change.
    pub version: i64,
    /// Edits from other devices that overlapped and await the user's decision (their texts:
    /// `GET /api/materials/{id}/conflicts`).
    pub conflicts: Vec<crate::ConflictSummaryView>,
}

impl From<&Material> for MaterialFields {
    fn from(m: &Material) -> Self {
        Self {
            id: m.id.0,
            title: m.title.clone(),
            body: m.body.clone(),
            tags: m.tags.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version.0,
            conflicts: m.conflicts.iter().map(crate::ConflictSummaryView::from).collect(),
        }
    }
}

/// Study progress on one material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    pub material_id: Uuid,
    pub percent_complete: f64,
    pub position: String,
    pub study_seconds: i64,
    pub completed: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_studied_at: Option<OffsetDateTime>,
    /// The library version of this progress's last change.
    pub version: i64,
}

impl From<&Progress> for ProgressView {
    fn from(p: &Progress) -> Self {
        Self {
            material_id: p.material_id.0,
            percent_complete: p.percent_complete,
            position: p.position.clone(),
            study_seconds: p.study_seconds,
            completed: p.completed,
            last_studied_at: p.last_studied_at,
            version: p.version.0,
        }
    }
}

/// A material with its progress (`null` when none was recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaterialView {
    #[serde(flatten)]
    pub material: MaterialFields,
    pub progress: Option<ProgressView>,
}

impl MaterialView {
    pub fn new(material: &Material, progress: Option<&Progress>) -> Self {
        Self { material: material.into(), progress: progress.map(ProgressView::from) }
    }
}

/// A tag as a request carries it (schema only): 1 to 64 characters, not blank, no NUL; trimmed
/// and de-duplicated when stored.
pub struct TagText;

impl utoipa::PartialSchema for TagText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(shelf_core::Tags::MAX_TAG_CHARS))
            .pattern(Some("^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"))
            .into()
    }
}

impl ToSchema for TagText {}

/// Progress fields to set; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgressInput {
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub percent_complete: Option<f64>,
    /// At most 256 characters.
    #[schema(max_length = 256, pattern = "^[^\\u0000]*$")]
    pub position: Option<String>,
    /// Seconds studied since the last update, added to `studySeconds` (0 to 31622400).
    #[serde(default, deserialize_with = "crate::int::i64")]
    #[schema(minimum = 0, maximum = 31622400)]
    pub study_seconds_delta: i64,
    pub completed: Option<bool>,
    /// Defaults to the server's receive time when anything changed; capped at it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_studied_at: Option<OffsetDateTime>,
    /// An explicit reset: lets `percentComplete` go down and `completed` become false even from
    /// a device whose view is stale.
    #[serde(default)]
    pub reset: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateMaterialRequest {
    /// Optional client-chosen UUID, so offline clients can create materials.
    pub id: Option<Uuid>,
    /// 1 to 500 characters, not blank (trimmed when stored).
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    pub title: String,
    /// Up to 1 MiB of UTF-8 text.
    #[serde(default)]
    #[schema(max_length = 1048576, pattern = "^[^\\u0000]*$")]
    pub body: String,
    /// Up to 50 tags of up to 64 characters.
    #[serde(default)]
    #[schema(value_type = Vec<TagText>, max_items = 50)]
    pub tags: Vec<String>,
    /// Initial progress, written in the same transaction.
    pub progress: Option<ProgressInput>,
}

/// A partial update; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMaterialRequest {
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$")]
    pub title: Option<String>,
    #[schema(max_length = 1048576, pattern = "^[^\\u0000]*$")]
    pub body: Option<String>,
    #[schema(value_type = Option<Vec<TagText>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    pub progress: Option<ProgressInput>,
}

/// A material after a mutation, with the library version the mutation committed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaterialMutationResponse {
    #[serde(flatten)]
    pub material: MaterialView,
    pub library_version: i64,
}

/// Progress after a mutation, with the library version the mutation committed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressMutationResponse {
    #[serde(flatten)]
    pub progress: ProgressView,
    pub library_version: i64,
}

/// The answer to a delete: the library version it committed at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedResponse {
    pub library_version: i64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListMaterialsQuery {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaterialsPage {
    pub items: Vec<MaterialView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryVersionResponse {
    pub library_version: i64,
    /// Changes when the database is replaced or restored; a client then resyncs from 0.
    pub epoch: String,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The last version the client has; 0 for a full snapshot.
    #[param(minimum = 0, maximum = 9223372036854775807i64)]
    pub since: Option<i64>,
    /// 1 to 1000, default 500.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One entity's latest state (`op: "upsert"`) or tombstone (`op: "delete"`, `data: null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeView {
    /// `material` or `progress`.
    pub kind: String,
    /// The material's id, for both kinds.
    pub id: Uuid,
    /// `upsert` or `delete`.
    pub op: String,
    pub version: i64,
    /// A MaterialFields or ProgressView object, or null for a tombstone.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesResponse {
    pub library_version: i64,
    pub epoch: String,
    pub changes: Vec<ChangeView>,
    pub has_more: bool,
    /// The `since` for the next request.
    pub next_since: i64,
}
