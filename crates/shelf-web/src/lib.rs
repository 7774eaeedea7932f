//! The Shelf web app, embedded in the binary (built from `web/` by `build.rs`), and the archive
//! of earlier builds' hashed files that keeps an upgrade safe (ADR 0005).
//!
//! Why an archive: a tab opened before an upgrade still runs the old `index-<hash>.js`, which
//! may import chunks by their old hashed names. If the new binary only knew its own files, that
//! tab (or a Service Worker still precaching the old build) would get 404s and a blank app. So
//! at start the current build's hashed files are copied into `<data-dir>/web-assets/assets/`, and
//! a hashed file missing from the embedded build is served from there, until it has not been part
//! of a running build for [`ARCHIVE_RETENTION`].
//!
//! No HTTP here: this crate implements `shelf_server::web::WebAssets` (path → bytes, type, cache
//! policy); the server decides what to answer.

mod archive;
mod content_type;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use include_dir::{include_dir, Dir};
use shelf_server::web::{CachePolicy, WebAsset, WebAssets};

pub use archive::AssetArchive;

/// What `vite build` produced, or nothing when built with `SHELF_WEB_SKIP=1`.
static DIST: Dir<'static> = include_dir!("$OUT_DIR/dist");

/// Hashed files of earlier builds stay servable this long after the last start that shipped them.
pub const ARCHIVE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The embedded app plus, optionally, the archive of earlier builds' hashed files.
pub struct WebApp {
    files: HashMap<&'static str, WebAsset>,
    archive: Option<AssetArchive>,
}

impl WebApp {
    /// The embedded build, or `None` if this binary was built without the app.
    pub fn embedded() -> Option<Self> {
        let mut files = HashMap::new();
        collect(&DIST, &mut files);
        files.contains_key("index.html").then_some(Self { files, archive: None })
    }

    /// Copies this build's hashed files into `<dir>` (normally `<data-dir>/web-assets`), prunes
    /// files no build has shipped for [`ARCHIVE_RETENTION`], and serves missing hashed files
    /// from there.
    pub fn with_archive(mut self, dir: &Path) -> std::io::Result<Self> {
        let archive = AssetArchive::open(dir)?;
        let hashed: Vec<(&str, &[u8])> =
            self.files.iter().filter(|(_, asset)| asset.cache == CachePolicy::Immutable).map(|(path, asset)| (*path, &asset.bytes[..])).collect();
        archive.store_current(&hashed)?;
        let removed = archive.prune(ARCHIVE_RETENTION)?;
        if removed > 0 {
            tracing::info!(removed, "removed web assets no build has shipped for 30 days");
        }
        self.archive = Some(archive);
        Ok(self)
    }

    /// How many files this build has (for the start-up log).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }
}

impl WebAssets for WebApp {
    fn get(&self, path: &str) -> Option<WebAsset> {
        if let Some(asset) = self.files.get(path) {
            return Some(asset.clone());
        }
        let bytes = self.archive.as_ref()?.read(path)?;
        Some(asset(path, Bytes::from(bytes)))
    }
}

fn collect(dir: &'static Dir<'static>, files: &mut HashMap<&'static str, WebAsset>) {
    for file in dir.files() {
        if let Some(path) = file.path().to_str() {
            files.insert(path, asset(path, Bytes::from_static(file.contents())));
        }
    }
    for sub in dir.dirs() {
        collect(sub, files);
    }
}

fn asset(path: &str, bytes: Bytes) -> WebAsset {
    let cache = if is_hashed(path) { CachePolicy::Immutable } else { CachePolicy::Revalidate };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    WebAsset { content_type: content_type::for_path(path), cache, etag: format!("\"{:016x}\"", hasher.finish()), bytes }
}

/// Vite names every bundled file `assets/<name>-<hash>.<ext>`; nothing else is content-hashed
/// (`index.html`, `sw.js`, `manifest.webmanifest`, icons keep stable names).
pub fn is_hashed(path: &str) -> bool {
    path.strip_prefix("assets/").is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_under_assets_are_hashed() {
        assert!(is_hashed("assets/index-3f2a9c.js"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("sw.js"));
        assert!(!is_hashed("assets/"));
        assert!(!is_hashed("assets/nested/x.js"));
    }
}
