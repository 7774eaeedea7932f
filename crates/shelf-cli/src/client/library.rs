//! `shelf ls`, `show`, `add`, `edit`, `rm`, `progress`: reads and edits of the local replica.
//! Edits commit locally first (with their outbox entry), then are sent at once if the server is
//! reachable; offline they stay queued for the next `shelf sync`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use shelf_api::{MaterialCreateData, ProgressInput, UpdateMaterialRequest};
use shelf_client::{Client, ClientError, LocalEdit};
use uuid::Uuid;

use super::{output, Context};

#[derive(Args)]
pub struct IdArg {
    /// The material's id.
    id: String,
}

#[derive(Args)]
pub struct AddArgs {
    title: String,
    /// Read the body from this file (`-` for standard input).
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// A tag; repeat for several.
    #[arg(long = "tag")]
    tags: Vec<String>,
}

#[derive(Args)]
pub struct EditArgs {
    id: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// The material's tags become exactly these; repeat for several.
    #[arg(long = "tag")]
    tags: Vec<String>,
}

#[derive(Args)]
pub struct ProgressArgs {
    id: String,
    /// Percent complete, 0 to 100.
    #[arg(long)]
    percent: Option<f64>,
    /// Where you are (a page, a timestamp…).
    #[arg(long)]
    position: Option<String>,
    /// Seconds studied in this session (added to the total).
    #[arg(long)]
    studied: Option<i64>,
    /// Mark the material done (100% unless --percent says otherwise).
    #[arg(long)]
    done: bool,
}

pub fn parse_id(raw: &str, what: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| anyhow::anyhow!("{raw:?} is not a {what} id (a UUID such as 0190c2d4-…)"))
}

fn read_body(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return Ok(std::io::read_to_string(std::io::stdin())?);
    }
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

pub async fn list(context: &Context) -> anyhow::Result<()> {
    let (_, client) = context.profile.client()?;
    let materials = client.materials().await?;
    if context.json {
        return output::json(&materials);
    }
    for material in &materials {
        output::line(&output::material_line(material))?;
    }
    Ok(())
}

pub async fn show(context: &Context, args: IdArg) -> anyhow::Result<()> {
    let (_, client) = context.profile.client()?;
    let material = client.material(parse_id(&args.id, "material")?).await?;
    if context.json {
        output::json(&material)
    } else {
        output::line(output::material_details(&material).trim_end())
    }
}

pub async fn add(context: &Context, args: AddArgs) -> anyhow::Result<()> {
    let body = args.body_file.as_ref().map(read_body).transpose()?.unwrap_or_default();
    let data = MaterialCreateData { title: args.title, body, tags: args.tags, progress: None };
    let (_, client) = context.profile.client()?;
    let id = Uuid::now_v7();
    commit(context, &client, id, LocalEdit::Create(data)).await?;
    print_material(context, &client, id).await
}

pub async fn edit(context: &Context, args: EditArgs) -> anyhow::Result<()> {
    let id = parse_id(&args.id, "material")?;
    let request = UpdateMaterialRequest {
        title: args.title,
        body: args.body_file.as_ref().map(read_body).transpose()?,
        tags: (!args.tags.is_empty()).then_some(args.tags),
        progress: None,
    };
    anyhow::ensure!(
        request.title.is_some() || request.body.is_some() || request.tags.is_some(),
        "nothing to change: give --title, --body-file or --tag"
    );
    let (_, client) = context.profile.client()?;
    commit(context, &client, id, LocalEdit::Update(request)).await?;
    print_material(context, &client, id).await
}

pub async fn remove(context: &Context, args: IdArg) -> anyhow::Result<()> {
    let id = parse_id(&args.id, "material")?;
    let (_, client) = context.profile.client()?;
    commit(context, &client, id, LocalEdit::Delete).await?;
    if context.json {
        output::json(&json!({"id": id, "deleted": true}))
    } else {
        output::line(&format!("Deleted {id}"))
    }
}

pub async fn progress(context: &Context, args: ProgressArgs) -> anyhow::Result<()> {
    let id = parse_id(&args.id, "material")?;
    let input = ProgressInput {
        percent_complete: args.percent.or(args.done.then_some(100.0)),
        position: args.position,
        study_seconds_delta: args.studied.unwrap_or(0),
        completed: args.done.then_some(true),
        last_studied_at: None,
        reset: false,
    };
    anyhow::ensure!(
        input.percent_complete.is_some() || input.position.is_some() || args.studied.is_some() || args.done,
        "nothing to record: give --percent, --position, --studied or --done"
    );
    let (_, client) = context.profile.client()?;
    commit(context, &client, id, LocalEdit::SetProgress(input)).await?;
    print_material(context, &client, id).await
}

async fn print_material(context: &Context, client: &Client, id: Uuid) -> anyhow::Result<()> {
    let material = client.material(id).await?;
    if context.json {
        output::json(&material)
    } else {
        output::line(&output::material_line(&material))
    }
}

/// Commits the edit locally, then tries to send it. Offline (or never signed in) the edit stays
/// queued and the command succeeds; a refusal by the server or a revoked session fails it (the
/// edit stays queued after a revocation, for the next login).
async fn commit(context: &Context, client: &Client, id: Uuid, edit: LocalEdit) -> anyhow::Result<()> {
    let mutation_id = client.edit(id, edit).await?;
    send(context, client, mutation_id).await
}

/// Tries to send a committed edit now, as [`commit`] does.
pub(super) async fn send(context: &Context, client: &Client, mutation_id: i64) -> anyhow::Result<()> {
    match client.sync().await {
        Ok(_) => {}
        Err(ClientError::Unreachable { reason, .. }) => {
            let pending = client.status().await?.pending_count;
            if !context.json {
                output::note(&format!("offline ({reason}): saved here; {pending} change(s) wait for shelf sync"));
            }
        }
        Err(ClientError::NotSignedIn) => {
            if !context.json {
                output::note("not signed in: saved here; it is sent after shelf login and shelf sync");
            }
        }
        Err(error) => return Err(error.into()),
    }
    if let Some(rejected) = client.rejection(mutation_id).await? {
        anyhow::bail!("the server refused this edit ({}): {}", rejected.code, rejected.message);
    }
    Ok(())
}
