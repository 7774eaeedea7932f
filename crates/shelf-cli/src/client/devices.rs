//! `shelf devices [revoke DEVICE_ID]` and `shelf conflicts [MATERIAL_ID | resolve …]`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use shelf_api::ConflictView;

use super::library::parse_id;
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
    /// Only this material's conflicts, fresh from the server (default: all, from the local library).
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
        output::line(&format!("{}  {}  last seen {}{current}", device.device_id, device.device_name, device.last_seen_at))?;
    }
    Ok(())
}

/// A conflict with the material it belongs to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MaterialConflict {
    material_id: uuid::Uuid,
    material_title: String,
    #[serde(flatten)]
    conflict: ConflictView,
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
        let resolution = match (resolve.keep.as_deref(), &custom) {
            (Some(keep @ ("server" | "device")), _) => keep,
            (Some(other), _) => anyhow::bail!("--keep takes server or device, not {other:?}"),
            (None, _) => "custom",
        };
        let material = client.resolve_conflict(material_id, conflict_id, resolution, custom).await?;
        return match context.json {
            true => output::json(&material),
            false => output::line(&format!("Resolved; {}", output::material_line(&material))),
        };
    }
    let listed: Vec<MaterialConflict> = match args.material_id {
        Some(raw) => {
            let id = parse_id(&raw, "material")?;
            let title = client.material(id).await.map(|m| m.material.title).unwrap_or_default();
            let conflicts = client.conflicts(id).await?;
            conflicts.into_iter().map(|conflict| MaterialConflict { material_id: id, material_title: title.clone(), conflict }).collect()
        }
        None => client
            .materials()
            .await?
            .into_iter()
            .flat_map(|m| {
                let (id, title) = (m.material.id, m.material.title);
                m.material.conflicts.into_iter().map(move |conflict| MaterialConflict { material_id: id, material_title: title.clone(), conflict })
            })
            .collect(),
    };
    if context.json {
        return output::json(&listed);
    }
    if listed.is_empty() {
        return output::line("No conflicts.");
    }
    for item in &listed {
        let c = &item.conflict;
        output::line(&format!(
            "{} {} ({:?}) conflict {}: server kept {:?}, this device wrote {:?}",
            item.material_id, c.field, item.material_title, c.id, c.server_value, c.device_value
        ))?;
    }
    Ok(())
}
