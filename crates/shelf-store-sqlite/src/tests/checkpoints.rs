//! The background checkpoints (`checkpoint.rs`): they run, the WAL starts over under continuous
//! writes, and fast writers do not turn them into a database sync every millisecond.

use shelf_core::{Email, LibraryMutation, MaterialBody, MaterialId, MaterialTitle, Tags};
use shelf_store::Store;

use super::fresh;

/// A new material titled `title`, without progress.
fn create(title: &str, body: &str) -> LibraryMutation {
    LibraryMutation::CreateMaterial {
        id: MaterialId::new(),
        title: MaterialTitle::parse(title).unwrap(),
        body: MaterialBody::parse(body).unwrap(),
        tags: Tags::parse(&["t"]).unwrap(),
        progress: None,
    }
}

/// Checkpoints run on their own thread: writes wake it every `NUDGE_EVERY` attempts, and
/// everything written stays readable through them.
#[tokio::test]
async fn writes_are_checkpointed_in_the_background() {
    let (store, _dir) = fresh().await;
    let now = shelf_core::truncate_to_micros(time::OffsetDateTime::now_utc());
    let user = store.create_user(&Email::parse("wal@example.com").unwrap(), "hash", now).await.unwrap();
    let writes = 2 * crate::checkpoint::NUDGE_EVERY + 10;
    for n in 0..writes {
        store.apply(user, &create(&format!("m{n}"), "body"), now).await.unwrap();
    }
    let mut waited = 0;
    while store.library_writer.checkpoints() < 2 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    let ran = store.library_writer.checkpoints();
    assert!(ran >= 2, "two nudges' worth of writes ran {ran} checkpoints");
    assert_eq!(store.library_version(user).await.unwrap().0, 1 + writes as i64);
    let page = store.changes_since(user, shelf_core::LibraryVersion(0), 1000, 1 << 30).await.unwrap();
    assert_eq!(page.changes.len(), writes);
}

/// Under writes that never pause, the background checkpoint always ends a few frames short
/// and the WAL could only start over at the writer's backstop checkpoint (a long stall). The
/// writer now finishes a checkpoint once the WAL reaches `RESTART_FRAMES`, so the WAL file
/// (which never shrinks, so its size is the longest the WAL has been) stays far below the
/// backstop although more than a backstop's worth of frames is written.
#[tokio::test]
async fn the_wal_starts_over_under_continuous_writes_without_reaching_the_backstop() {
    const FRAME: u64 = 4096 + 24;
    let (store, dir) = fresh().await;
    let wal = dir.path().join("shelf.db-wal");
    let now = shelf_core::truncate_to_micros(time::OffsetDateTime::now_utc());
    let user = store.create_user(&Email::parse("restart@example.com").unwrap(), "hash", now).await.unwrap();
    let backstop = u64::from(crate::checkpoint::BACKSTOP_PAGES);
    let mut frames_written = 0;
    let mut n = 0;
    while frames_written < 2 * backstop {
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        store.apply(user, &create(&format!("m{n}"), &"body ".repeat(1500)), now).await.unwrap();
        n += 1;
        // Counted from the file's growth, or, while the WAL reuses the file after a restart,
        // as six frames: the material and its revision take two overflow pages and a leaf each.
        let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        frames_written += ((after.saturating_sub(before)) / FRAME).max(6);
    }
    let longest = std::fs::metadata(&wal).unwrap().len() / FRAME;
    assert!(longest < backstop * 3 / 4, "{n} writes, {frames_written}+ frames: the WAL reached {longest} frames (backstop {backstop})");
    assert_eq!(store.library_version(user).await.unwrap().0, 1 + n as i64);
}

/// A nudge comes every `NUDGE_EVERY` attempts, which under many writers is every millisecond
/// or so; each checkpoint ends with a sync of the database file, so they start at most once
/// per `MIN_INTERVAL` however fast the writes come.
#[tokio::test]
async fn checkpoints_start_at_most_once_per_interval_under_fast_writes() {
    let (store, _dir) = fresh().await;
    let store = std::sync::Arc::new(store);
    let now = shelf_core::truncate_to_micros(time::OffsetDateTime::now_utc());
    let user = store.create_user(&Email::parse("pace@example.com").unwrap(), "hash", now).await.unwrap();
    let started = std::time::Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..60 {
                    store.apply(user, &create(&format!("w{writer} m{n}"), "body"), now).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let ran = store.library_writer.checkpoints();
    let elapsed = started.elapsed();
    // A checkpoint that has ended by now started by now: at most one per interval, plus the first.
    let most = elapsed.as_millis() / crate::checkpoint::MIN_INTERVAL.as_millis() + 1;
    assert!(u128::from(ran) <= most, "{ran} checkpoints in {elapsed:?} (at most {most})");
    assert_eq!(store.library_version(user).await.unwrap().0, 1 + 480);
}
