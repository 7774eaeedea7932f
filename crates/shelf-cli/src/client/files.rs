//! `shelf attach ID FILE` and `shelf fetch ID ATTACHMENT [--out F]`, with a progress bar on
//! stderr (hidden for `--json` and when stderr is not a terminal).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shelf_client::Progress;

use super::library::parse_id;
use super::{output, Context};

#[derive(Args)]
pub struct AttachArgs {
    /// The material's id.
    id: String,
    file: PathBuf,
}

#[derive(Args)]
pub struct FetchArgs {
    /// The material's id.
    id: String,
    /// The attachment's id or file name.
    attachment: String,
    /// Where to save it [default: the attachment's file name in the current folder].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn progress_bar(context: &Context, message: &str) -> (ProgressBar, Progress) {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if context.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_owned());
    let shared = bar.clone();
    let progress: Progress = Arc::new(move |done, total| {
        shared.set_length(total);
        shared.set_position(done);
    });
    (bar, progress)
}

pub async fn attach(context: &Context, args: AttachArgs) -> anyhow::Result<()> {
    let id = parse_id(&args.id, "material")?;
    anyhow::ensure!(args.file.is_file(), "{} is not a readable file", args.file.display());
    let (_, client) = context.profile.client()?;
    let (bar, progress) = progress_bar(context, "uploading");
    let result = client.attach(id, &args.file, progress).await;
    bar.finish_and_clear();
    let attached = result?;
    if context.json {
        return output::json(&attached);
    }
    let a = &attached.attachment;
    if attached.pending {
        let pending = client.status().await?.pending_count;
        output::note(&format!("offline: {} is kept here and uploaded with the next shelf sync ({pending} change(s) wait)", a.filename));
    }
    let verb = if attached.pending { "Queued" } else { "Attached" };
    output::line(&format!("{verb} {} ({} bytes, sha256 {}) as {}", a.filename, a.size, a.sha256, a.id))
}

pub async fn fetch(context: &Context, args: FetchArgs) -> anyhow::Result<()> {
    let id = parse_id(&args.id, "material")?;
    let (_, client) = context.profile.client()?;
    let (bar, progress) = progress_bar(context, "downloading");
    let result = client.download(id, &args.attachment, args.out.as_deref(), progress).await;
    bar.finish_and_clear();
    let downloaded = result?;
    if context.json {
        output::json(&downloaded)
    } else {
        output::line(&format!("Saved {} ({} bytes)", downloaded.path.display(), downloaded.size))
    }
}
