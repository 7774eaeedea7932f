//! `shelf sync`, `shelf follow`, `shelf status`.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Notify;
use shelf_api::ChangeView;
use shelf_client::{FollowOptions, SyncState};

use super::{output, Context};

pub async fn sync(context: &Context) -> anyhow::Result<()> {
    let (_, client) = context.profile.client()?;
    let report = client.sync().await?;
    if context.json {
        return output::json(&report);
    }
    for rejected in &report.pushed.rejected {
        output::note(&format!(
            "refused by the server: {} of {} ({}): {}",
            rejected.type_name, rejected.material_id, rejected.code, rejected.message
        ));
    }
    let conflicts = match report.pushed.conflicts {
        0 => String::new(),
        n => format!(" ({n} left conflicts: see shelf conflicts)"),
    };
    output::line(&format!(
        "Sent {} edit(s){conflicts}, received {} change(s); library at version {}{}.",
        report.pushed.acknowledged,
        report.pulled,
        report.library_version,
        if report.resynced { " (rebuilt from a fresh snapshot)" } else { "" }
    ))
}

fn change_line(change: &ChangeView) -> String {
    let title = change.data.as_ref().and_then(|d| d.get("title").or_else(|| d.get("filename"))).and_then(|t| t.as_str());
    let title = title.map(|t| format!(" {t:?}")).unwrap_or_default();
    format!("v{} {} {} {}{title}", change.version, change.kind, change.op, change.id)
}

pub async fn follow(context: &Context) -> anyhow::Result<()> {
    let (_, client) = context.profile.client()?;
    let json = context.json;
    // Stdout closed (the reader went away): stop instead of syncing for no one.
    let stdout_closed = Arc::new(Notify::new());
    let closed = stdout_closed.clone();
    let mut observer = move |change: &ChangeView| {
        let printed = if json { output::json(change) } else { output::line(&change_line(change)) };
        if printed.is_err() {
            closed.notify_one();
        }
    };
    if !json {
        tokio::spawn(report_trouble(client.watch_status()));
    }
    tokio::select! {
        result = client.follow(FollowOptions::default(), &mut observer) => Ok(result?),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = stdout_closed.notified() => anyhow::bail!("standard output was closed"),
    }
}

/// Tells a person watching `shelf follow` when it goes offline or fails (once per reason).
async fn report_trouble(mut status: tokio::sync::watch::Receiver<Option<shelf_client::Status>>) {
    let mut last = None;
    while status.changed().await.is_ok() {
        let Some(current) = status.borrow_and_update().clone() else { continue };
        let shown = (current.state, current.reason.clone());
        if matches!(current.state, SyncState::Offline | SyncState::Error) && last.as_ref() != Some(&shown) {
            output::note(&format!("{}: {}; retrying", current.state.as_str(), current.reason.clone().unwrap_or_default()));
        }
        last = Some(shown);
    }
}

pub async fn status(context: &Context) -> anyhow::Result<()> {
    let (session, client) = context.profile.client()?;
    let status = client.status().await?;
    if context.json {
        let mut value = serde_json::to_value(&status)?;
        value["profile"] = json!(context.profile.name);
        value["server"] = json!(session.server);
        value["email"] = json!(session.email);
        value["deviceId"] = json!(session.device_id);
        return output::json(&value);
    }
    let last = status.last_synced_at.map(output::time).unwrap_or_else(|| "never".into());
    let reason = status.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
    output::line(&format!(
        "{}{reason}: {} pending, {} refused; last synced {last}; library version {} ({} on {})",
        status.state.as_str(),
        status.pending_count,
        status.rejected_count,
        status.library_version,
        session.email,
        session.server
    ))
}
