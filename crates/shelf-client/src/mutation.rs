//! Local edits and their wire form. The only module that maps a queued edit to the typed
//! `shelf_api::MutationInput` (docs/sync-protocol.md); the outbox stores `type` and `data` as the
//! protocol writes them.

use serde_json::Value;
use shelf_api::{
    AttachmentAddData, BareEnvelope, ConflictResolveData, Envelope, MaterialCreateData, MutationInput, NoData, ProgressInput, TagsInput,
    UpdateMaterialRequest,
};
use shelf_core::{
    ContentType, FileName, MaterialBody, MaterialTitle, PercentComplete, Position, ProgressUpdate, Sha256Hex, Tags, ValidationError,
};
use uuid::Uuid;

/// One edit a user makes to one material, as queued in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalEdit {
    Create(MaterialCreateData),
    Update(UpdateMaterialRequest),
    Delete,
    SetProgress(ProgressInput),
    DeleteProgress,
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    /// Settles a conflict; queued like any edit, so it can be decided offline.
    ResolveConflict(ConflictResolveData),
    /// Attaches an uploaded blob. Queued with the file it names (`outbox_files`): the entry is
    /// sent only after its bytes reached the server.
    AddAttachment(AttachmentAddData),
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
            LocalEdit::ResolveConflict(_) => "conflict.resolve",
            LocalEdit::AddAttachment(_) => "attachment.add",
        }
    }

    /// The mutation `data` on the wire: the REST body of the same action.
    pub fn data(&self) -> Value {
        let value = match self {
            LocalEdit::Create(data) => serde_json::to_value(data),
            LocalEdit::Update(request) => serde_json::to_value(request),
            LocalEdit::SetProgress(input) => serde_json::to_value(input),
            LocalEdit::AddTags(tags) | LocalEdit::RemoveTags(tags) => serde_json::to_value(TagsInput { tags: tags.clone() }),
            LocalEdit::Delete | LocalEdit::DeleteProgress => serde_json::to_value(NoData {}),
            LocalEdit::ResolveConflict(data) => serde_json::to_value(data),
            LocalEdit::AddAttachment(data) => serde_json::to_value(data),
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
            "conflict.resolve" => LocalEdit::ResolveConflict(parse(data)?),
            "attachment.add" => LocalEdit::AddAttachment(parse(data)?),
            other => return Err(serde::de::Error::custom(format!("unknown mutation type {other:?}"))),
        })
    }

    /// The typed wire mutation of this edit.
    pub fn into_input(self, mutation_id: i64, id: Uuid, base_version: i64) -> MutationInput {
        let base_version = Some(base_version);
        let bare = || BareEnvelope { mutation_id, id, base_version, data: NoData {} };
        match self {
            LocalEdit::Create(data) => MutationInput::MaterialCreate(Envelope { mutation_id, id, base_version, data }),
            LocalEdit::Update(data) => MutationInput::MaterialUpdate(Envelope { mutation_id, id, base_version, data }),
            LocalEdit::Delete => MutationInput::MaterialDelete(bare()),
            LocalEdit::SetProgress(data) => MutationInput::ProgressSet(Envelope { mutation_id, id, base_version, data }),
            LocalEdit::DeleteProgress => MutationInput::ProgressDelete(bare()),
            LocalEdit::AddTags(tags) => MutationInput::TagsAdd(Envelope { mutation_id, id, base_version, data: TagsInput { tags } }),
            LocalEdit::RemoveTags(tags) => {
                MutationInput::TagsRemove(Envelope { mutation_id, id, base_version, data: TagsInput { tags } })
            }
            LocalEdit::ResolveConflict(data) => MutationInput::ConflictResolve(Envelope { mutation_id, id, base_version, data }),
            LocalEdit::AddAttachment(data) => MutationInput::AttachmentAdd(Envelope { mutation_id, id, base_version, data }),
        }
    }

    /// Checks the edit with the server's own rules and normalises it (trimmed title, de-duplicated
    /// tags), so an invalid edit fails at once instead of being rejected after a sync.
    pub fn validated(self) -> Result<Self, ValidationError> {
        Ok(match self {
            LocalEdit::Create(mut data) => {
                data.title = MaterialTitle::parse(&data.title)?.as_str().to_owned();
                MaterialBody::parse(&data.body)?;
                data.tags = Tags::parse(&data.tags)?.into_vec();
                if let Some(progress) = &data.progress {
                    validate_progress(progress)?;
                }
                LocalEdit::Create(data)
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
            LocalEdit::ResolveConflict(ConflictResolveData::Custom { conflict_id, value }) => {
                // The field (title or body) is known to the server only; a body's limits hold for both.
                MaterialBody::parse(&value)?;
                LocalEdit::ResolveConflict(ConflictResolveData::Custom { conflict_id, value })
            }
            LocalEdit::AddAttachment(data) => {
                Sha256Hex::parse(&data.sha256)?;
                FileName::parse(&data.filename)?;
                ContentType::parse(&data.content_type)?;
                LocalEdit::AddAttachment(data)
            }
            other @ (LocalEdit::Delete | LocalEdit::DeleteProgress | LocalEdit::ResolveConflict(_)) => other,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_edit_round_trips_through_the_outbox_and_serialises_as_the_protocol_says() {
        let create = MaterialCreateData { title: "t".into(), body: "b".into(), tags: vec!["x".into()], progress: None };
        let edits = [
            LocalEdit::Create(create),
            LocalEdit::Update(UpdateMaterialRequest { title: Some("u".into()), ..Default::default() }),
            LocalEdit::Delete,
            LocalEdit::SetProgress(ProgressInput { study_seconds_delta: 5, ..Default::default() }),
            LocalEdit::DeleteProgress,
            LocalEdit::AddTags(vec!["a".into()]),
            LocalEdit::RemoveTags(vec!["a".into()]),
            LocalEdit::ResolveConflict(ConflictResolveData::Custom { conflict_id: Uuid::now_v7(), value: "v".into() }),
            LocalEdit::ResolveConflict(ConflictResolveData::Device { conflict_id: Uuid::now_v7() }),
            LocalEdit::AddAttachment(AttachmentAddData {
                attachment_id: Uuid::now_v7(),
                sha256: "a".repeat(64),
                filename: "slides.pdf".into(),
                content_type: "application/pdf".into(),
                size: 3,
            }),
        ];
        let id = Uuid::now_v7();
        for edit in edits {
            let stored = LocalEdit::from_stored(edit.type_name(), &edit.data()).unwrap();
            assert_eq!(stored, edit);
            let wire = serde_json::to_value(edit.clone().into_input(7, id, 3)).unwrap();
            assert_eq!((wire["type"].as_str(), wire["mutationId"].as_i64(), wire["baseVersion"].as_i64()), (Some(edit.type_name()), Some(7), Some(3)));
            let parsed: MutationInput = serde_json::from_value(wire).unwrap();
            assert_eq!(parsed.id(), id);
        }
    }
}
