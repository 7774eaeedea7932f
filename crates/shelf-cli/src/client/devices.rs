//! `shelf devices [revoke DEVICE_ID]` and `shelf conflicts [MATERIAL_ID | resolve …]`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use shelf_api::{ConflictFieldView, ConflictSummaryView, ConflictView, ResolveConflictRequest};
use shelf_client::ClientError;
use uuid::Uuid;

use super::library::{parse_id, send};
use super::{output, Context};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevicesArgs {
    #[command(subcommand)]
    action: Option<DevicesAction>,
}

#[derive(Subcommand)]
enum DevicesAction {
    /// Sign a device out: its next request is refused and its streams end.
    Revoke { device_id: String },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_precedence_over_arg = true)]
pub struct ConflictsArgs {
    /// Only this material's conflicts (default: every material's).
    material_id: Option<String>,
    #[command(subcommand)]
    action: Option<ConflictsAction>,
}

#[derive(Subcommand)]
enum ConflictsAction {
    /// Settle a conflict: keep the server's value, take this device's, or write a new one.
    Resolve(ResolveArgs),
}

#[derive(Args)]
struct ResolveArgs {
    material_id: String,
    conflict_id: String,
    /// `server` or `device`.
    #[arg(long, conflicts_with_all = ["value", "value_file"], required_unless_present_any = ["value", "value_file"])]
    keep: Option<String>,
    /// A new value for the field.
    #[arg(long, conflicts_with = "value_file")]
    value: Option<String>,
    /// Read the new value from this file.
    #[arg(long)]
    value_file: Option<PathBuf>,
}

pub async fn devices(context: &Context, args: DevicesArgs) -> anyhow::Result<()> {
    let (_, client) = context.profile.client()?;
    if let Some(DevicesAction::Revoke { device_id }) = args.action {
        let device_id = parse_id(&device_id, "device")?;
        client.revoke_device(device_id).await?;
        return match context.json {
            true => output::json(&json!({"deviceId": device_id, "revoked": true})),
            false => output::line(&format!("Revoked device {device_id}")),
        };
    }
    let devices = client.devices().await?;
    if context.json {
        return output::json(&devices);
    }
    for device in &devices {
        let current = if device.current { "  (this device)" } else { "" };
        let seen = output::time(device.last_seen_at);
        output::line(&format!("{}  {}  last seen {seen}{current}", device.device_id, device.device_name))?;
    }
    Ok(())
}

/// A conflict with the material it belongs to; the texts when the server could be asked.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MaterialConflict {
    material_id: Uuid,
    material_title: String,
    id: Uuid,
    field: ConflictFieldView,
    base_version: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    server_value: Option<String>,
    device_value: Option<String>,
}

impl MaterialConflict {
    fn new(material_id: Uuid, material_title: &str, summary: &ConflictSummaryView, texts: Option<&ConflictView>) -> Self {
        Self {
            material_id,
            material_title: material_title.to_owned(),
            id: summary.id,
            field: summary.field,
            base_version: summary.base_version,
            created_at: summary.created_at,
            server_value: texts.map(|t| t.server_value.clone()),
            device_value: texts.map(|t| t.device_value.clone()),
        }
    }
}

fn resolution(keep: Option<&str>, custom: Option<String>) -> anyhow::Result<ResolveConflictRequest> {
    Ok(match (keep, custom) {
        (Some("server"), _) => ResolveConflictRequest::Server,
        (Some("device"), _) => ResolveConflictRequest::Device,
        (Some(other), _) => anyhow::bail!("--keep takes server or device, not {other:?}"),
        (None, Some(value)) => ResolveConflictRequest::Custom { value },
        (None, None) => anyhow::bail!("give --keep server|device, --value or --value-file"),
    })
}

pub async fn conflicts(context: &Context, args: ConflictsArgs) -> anyhow::Result<()> {
    let (_, client) = context.profile.client()?;
    if let Some(ConflictsAction::Resolve(resolve)) = args.action {
        let material_id = parse_id(&resolve.material_id, "material")?;
        let conflict_id = parse_id(&resolve.conflict_id, "conflict")?;
        let custom = match (&resolve.value, &resolve.value_file) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?),
            (None, None) => None,
        };
        // Through the outbox: decided offline, it is sent with the next sync.
        let mutation_id = client.resolve_conflict(material_id, conflict_id, resolution(resolve.keep.as_deref(), custom)?).await?;
        send(context, &client, mutation_id).await?;
        let material = client.material(material_id).await?;
        return match context.json {
            true => output::json(&material),
            false => output::line(&format!("Resolved; {}", output::material_line(&material))),
        };
    }
    // The replica knows which materials have conflicts; their texts come from the server.
    let only = args.material_id.as_deref().map(|raw| parse_id(raw, "material")).transpose()?;
    let mut listed = Vec::new();
    for material in client.materials().await? {
        let m = material.material;
        if m.conflicts.is_empty() || only.is_some_and(|id| id != m.id) {
            continue;
        }
        let texts = match client.conflicts(m.id).await {
            Ok(texts) => texts,
            Err(ClientError::Unreachable { reason, .. }) => {
                output::note(&format!("offline ({reason}): conflict texts are not shown"));
                Vec::new()
            }
            Err(error) => return Err(error.into()),
        };
        for summary in &m.conflicts {
            listed.push(MaterialConflict::new(m.id, &m.title, summary, texts.iter().find(|t| t.id == summary.id)));
        }
    }
    if context.json {
        return output::json(&listed);
    }
    if listed.is_empty() {
        return output::line("No conflicts.");
    }
    for c in &listed {
        let texts = match (&c.server_value, &c.device_value) {
            (Some(server), Some(device)) => format!(": server kept {server:?}, this device wrote {device:?}"),
            _ => String::new(),
        };
        output::line(&format!("{} {:?} conflict {} on {:?}{texts}", c.material_id, c.material_title, c.id, c.field))?;
    }
    Ok(())
}
