//! Local edits and their wire form. The only module that knows the JSON of a queued mutation
//! (`type` + `data`, docs/sync-protocol.md), so switching to typed wire mutations is one edit here.

use serde_json::Value;
use shelf_api::{CreateMaterialRequest, MutationInput, ProgressInput, TagsInput, UpdateMaterialRequest};
use shelf_core::{MaterialBody, MaterialTitle, PercentComplete, Position, ProgressUpdate, Tags, ValidationError};
use uuid::Uuid;

/// One edit a user makes to one material, as queued in the outbox.
#[derive(Debug, Clone)]
pub enum LocalEdit {
    Create(CreateMaterialRequest),
    Update(UpdateMaterialRequest),
    Delete,
    SetProgress(ProgressInput),
    DeleteProgress,
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
}

impl LocalEdit {
    /// The mutation `type` on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            LocalEdit::Create(_) => "material.create",
            LocalEdit::Update(_) => "material.update",
            LocalEdit::Delete => "material.delete",
            LocalEdit::SetProgress(_) => "progress.set",
            LocalEdit::DeleteProgress => "progress.delete",
            LocalEdit::AddTags(_) => "tags.add",
            LocalEdit::RemoveTags(_) => "tags.remove",
        }
    }

    /// The mutation `data` on the wire: the REST body of the same action.
    pub fn data(&self) -> Value {
        let value = match self {
            LocalEdit::Create(request) => serde_json::to_value(request),
            LocalEdit::Update(request) => serde_json::to_value(request),
            LocalEdit::SetProgress(input) => serde_json::to_value(input),
            LocalEdit::AddTags(tags) | LocalEdit::RemoveTags(tags) => serde_json::to_value(TagsInput { tags: tags.clone() }),
            LocalEdit::Delete | LocalEdit::DeleteProgress => return Value::Object(Default::default()),
        };
        // These are plain structs of strings and numbers; serialising them cannot fail.
        value.unwrap_or(Value::Null)
    }

    /// Reads back an edit stored in the outbox.
    pub fn from_stored(type_name: &str, data: &Value) -> Result<Self, serde_json::Error> {
        fn parse<T: serde::de::DeserializeOwned>(data: &Value) -> Result<T, serde_json::Error> {
            serde_json::from_value(data.clone())
        }
        Ok(match type_name {
            "material.create" => LocalEdit::Create(parse(data)?),
            "material.update" => LocalEdit::Update(parse(data)?),
            "material.delete" => LocalEdit::Delete,
            "progress.set" => LocalEdit::SetProgress(parse(data)?),
            "progress.delete" => LocalEdit::DeleteProgress,
            "tags.add" => LocalEdit::AddTags(parse::<TagsInput>(data)?.tags),
            "tags.remove" => LocalEdit::RemoveTags(parse::<TagsInput>(data)?.tags),
            other => return Err(serde::de::Error::custom(format!("unknown mutation type {other:?}"))),
        })
    }

    /// Checks the edit with the server's own rules and normalises it (trimmed title, de-duplicated
    /// tags), so an invalid edit fails at once instead of being rejected after a sync.
    pub fn validated(self) -> Result<Self, ValidationError> {
        Ok(match self {
            LocalEdit::Create(mut request) => {
                request.title = MaterialTitle::parse(&request.title)?.as_str().to_owned();
                MaterialBody::parse(&request.body)?;
                request.tags = Tags::parse(&request.tags)?.into_vec();
                if let Some(progress) = &request.progress {
                    validate_progress(progress)?;
                }
                LocalEdit::Create(request)
            }
            LocalEdit::Update(mut request) => {
                if let Some(title) = &request.title {
                    request.title = Some(MaterialTitle::parse(title)?.as_str().to_owned());
                }
                if let Some(body) = &request.body {
                    MaterialBody::parse(body)?;
                }
                if let Some(tags) = &request.tags {
                    request.tags = Some(Tags::parse(tags)?.into_vec());
                }
                if let Some(progress) = &request.progress {
                    validate_progress(progress)?;
                }
                LocalEdit::Update(request)
            }
            LocalEdit::SetProgress(input) => {
                validate_progress(&input)?;
                LocalEdit::SetProgress(input)
            }
            LocalEdit::AddTags(tags) => LocalEdit::AddTags(Tags::parse(&tags)?.into_vec()),
            LocalEdit::RemoveTags(tags) => LocalEdit::RemoveTags(Tags::parse(&tags)?.into_vec()),
            other @ (LocalEdit::Delete | LocalEdit::DeleteProgress) => other,
        })
    }
}

fn validate_progress(input: &ProgressInput) -> Result<(), ValidationError> {
    if let Some(percent) = input.percent_complete {
        PercentComplete::parse(percent)?;
    }
    if let Some(position) = &input.position {
        Position::parse(position)?;
    }
    ProgressUpdate::parse_study_seconds_delta(input.study_seconds_delta)?;
    Ok(())
}

/// The wire mutation for one outbox entry.
pub fn wire(mutation_id: i64, material_id: Uuid, base_version: i64, type_name: &str, data: Value) -> MutationInput {
    MutationInput { mutation_id, mutation_type: type_name.to_owned(), id: material_id, base_version: Some(base_version), data }
}
