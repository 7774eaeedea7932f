//! `<data-dir>/web-assets/`: hashed files of every build this data folder has run, so a tab or
//! Service Worker of an earlier build can still fetch its chunks after an upgrade.
//!
//! A file's modification time is "the last start of a build that shipped it": each start
//! rewrites or touches the current build's files, so files only earlier builds had age from the
//! moment they were superseded, and [`AssetArchive::prune`] removes them after the retention.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub struct AssetArchive {
    root: PathBuf,
}

impl AssetArchive {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir.join("assets"))?;
        Ok(Self { root: dir.to_path_buf() })
    }

    /// Writes the files that are missing (atomically: temp file + rename, so a crash never
    /// leaves a truncated chunk) and marks all of them as shipped now.
    pub fn store_current(&self, files: &[(&str, &[u8])]) -> std::io::Result<()> {
        let now = SystemTime::now();
        for (path, bytes) in files {
            let Some(target) = self.path_of(path) else { continue };
            if target.is_file() {
                fs::File::options().write(true).open(&target)?.set_modified(now)?;
                continue;
            }
            let temporary = target.with_extension("partial");
            let mut file = fs::File::create(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, &target)?;
        }
        Ok(())
    }

    /// Removes files not shipped by any start for `retention`; returns how many.
    pub fn prune(&self, retention: Duration) -> std::io::Result<usize> {
        let cutoff = SystemTime::now().checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join("assets"))? {
            let entry = entry?;
            let modified = entry.metadata()?.modified()?;
            if modified < cutoff {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The archived bytes of a hashed file, if an earlier build shipped it.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        // A missing file is the normal "never shipped" case; other read errors are treated the
        // same on purpose, because the caller can only answer 404 either way.
        fs::read(self.path_of(path)?).ok()
    }

    /// Only plain names directly under `assets/`; anything else (`..`, nested paths) is refused.
    fn path_of(&self, path: &str) -> Option<PathBuf> {
        let name = path.strip_prefix("assets/")?;
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        plain.then(|| self.root.join("assets").join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web3_earlier_builds_stay_readable_until_pruned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let archive = AssetArchive::open(dir.path()).expect("open");
        archive.store_current(&[("assets/old-1a.js", b"old")]).expect("first build");
        archive.store_current(&[("assets/new-2b.js", b"new")]).expect("second build");
        assert_eq!(archive.read("assets/old-1a.js").as_deref(), Some(&b"old"[..]));
        assert_eq!(archive.prune(Duration::from_secs(3600)).expect("prune"), 0);
        assert_eq!(archive.prune(Duration::ZERO).expect("prune"), 2);
        assert_eq!(archive.read("assets/old-1a.js"), None);
    }

    #[test]
    fn paths_outside_assets_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let archive = AssetArchive::open(dir.path()).expect("open");
        for path in ["assets/../secret", "index.html", "assets/a/b.js", "assets/.hidden", "assets/"] {
            assert_eq!(archive.path_of(path), None, "{path}");
        }
    }
}
