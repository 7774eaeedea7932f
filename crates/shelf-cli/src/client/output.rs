//! Printing: JSON on stdout for `--json`, short human lines otherwise.

use std::io::Write;

use serde::Serialize;
use shelf_client::LocalMaterial;

/// One JSON document (or one line of a JSON stream) on stdout.
pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

/// A line on stdout, flushed (so `follow` output reaches a pipe at once).
pub fn line(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}

/// A time as RFC 3339 (`2026-01-31T09:30:00Z`).
pub fn time(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// A note for the user that is not the command's output.
pub fn note(text: &str) {
    eprintln!("{text}");
}

fn tags(material: &LocalMaterial) -> String {
    if material.material.tags.is_empty() {
        String::new()
    } else {
        format!("  [{}]", material.material.tags.join(", "))
    }
}

/// `<id>  <title>  [tags]  40%  (2 unsent)`
pub fn material_line(material: &LocalMaterial) -> String {
    let progress = material.progress.as_ref().map(|p| format!("  {:.0}%", p.percent_complete)).unwrap_or_default();
    let pending = match material.pending_changes {
        0 => String::new(),
        n => format!("  ({n} unsent)"),
    };
    let conflicts = match material.material.conflicts.len() {
        0 => String::new(),
        n => format!("  ({n} conflicts)"),
    };
    format!("{}  {}{}{progress}{pending}{conflicts}", material.material.id, material.material.title, tags(material))
}

pub fn material_details(material: &LocalMaterial) -> String {
    let m = &material.material;
    let mut out = format!("{}\n  id: {}\n  version: {}{}\n", m.title, m.id, m.version, tags(material).replacen("  ", "\n  tags: ", 1));
    if let Some(p) = &material.progress {
        out.push_str(&format!(
            "  progress: {:.0}%{}, position {:?}, studied {} s\n",
            p.percent_complete,
            if p.completed { " (done)" } else { "" },
            p.position,
            p.study_seconds
        ));
    }
    for a in &material.attachments {
        out.push_str(&format!("  attachment {}: {} ({} bytes, {})\n", a.id, a.filename, a.size, a.content_type));
    }
    for c in &m.conflicts {
        out.push_str(&format!("  conflict {} on {:?} (see shelf conflicts)\n", c.id, c.field));
    }
    if material.pending_changes > 0 {
        out.push_str(&format!("  {} local change(s) not yet confirmed by the server\n", material.pending_changes));
    }
    if !m.body.is_empty() {
        out.push('\n');
        out.push_str(&m.body);
        if !m.body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
