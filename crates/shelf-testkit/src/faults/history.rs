//! The history of a fault run and its checker, in the style of Jepsen's: every acknowledged write
//! and every feed page a device applied is recorded while the server is killed and restarted;
//! afterwards the checker replays each device's pages and checks the properties a sync client
//! relies on. Each violation is an anomaly with a sentence saying what was seen.

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::device::{apply, Held};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// `material.create` with `studySecondsDelta: 1`.
    Create,
    /// `progress.set` with `studySecondsDelta: 1` on a material the device created.
    Study,
}

/// A write, once a receipt answered for it (after `attempts` tries of the same mutation id).
#[derive(Debug, Clone)]
pub struct Write {
    pub device: usize,
    pub user: usize,
    /// The device's operation count when the write started: pages applied after it completed
    /// have a larger index in the device's log.
    pub invoked: usize,
    pub mutation_id: i64,
    pub material: Uuid,
    pub kind: WriteKind,
    /// `applied`, `merged`, `duplicate` or `rejected`.
    pub status: String,
    pub version: i64,
    pub attempts: u32,
}

/// One feed entry as a device saw it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: Uuid,
    pub progress: bool,
    pub deleted: bool,
    pub version: i64,
    pub study_seconds: i64,
}

/// One page of the change feed that a device applied.
#[derive(Debug, Clone)]
pub struct Page {
    pub device: usize,
    pub user: usize,
    pub since: i64,
    pub library_version: i64,
    pub next_since: i64,
    /// The last page of a pull (`hasMore` false): the replica then is the library at `next_since`.
    pub complete: bool,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub enum Op {
    Write(Write),
    Page(Page),
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub operations: usize,
    pub writes: usize,
    pub pages: usize,
    pub anomalies: Vec<String>,
}

/// The final state of one user's library on the server (a full pull from 0) and its version.
pub struct ServerState {
    pub user: usize,
    pub library_version: i64,
    pub library: HashMap<Uuid, Held>,
}

/// Checks the logs of every device (each in its own order) against the server's final state.
/// `finals` holds each device's replica after its final pull, by device index.
pub fn check(logs: &[(usize, usize, Vec<Op>)], servers: &[ServerState], finals: &HashMap<usize, HashMap<Uuid, Held>>) -> Verdict {
    let mut verdict = Verdict::default();
    let mut anomaly = |text: String| verdict.anomalies.push(text);
    let writes: Vec<&Write> = logs.iter().flat_map(|(_, _, ops)| ops.iter()).filter_map(|op| if let Op::Write(w) = op { Some(w) } else { None }).collect();

    for server in servers {
        let user_writes: Vec<&&Write> = writes.iter().filter(|w| w.user == server.user && w.status != "rejected").collect();
        for rejected in writes.iter().filter(|w| w.user == server.user && w.status == "rejected") {
            anomaly(format!("device {} mutation {}: rejected", rejected.device, rejected.mutation_id));
        }
        // Durability and exactly-once: every acknowledged write is in the final state, once.
        let mut expected_seconds: HashMap<Uuid, i64> = HashMap::new();
        for write in &user_writes {
            *expected_seconds.entry(write.material).or_default() += 1;
        }
        for (material, seconds) in &expected_seconds {
            match server.library.get(material) {
                None => anomaly(format!("user {}: acknowledged material {material} is missing on the server", server.user)),
                Some(held) if held.study_seconds != *seconds => anomaly(format!(
                    "user {}: material {material} has {} study seconds, {seconds} acknowledged (lost or doubled writes)",
                    server.user, held.study_seconds
                )),
                Some(_) => {}
            }
        }
        for material in server.library.keys().filter(|m| !expected_seconds.contains_key(m)) {
            anomaly(format!("user {}: material {material} on the server was never acknowledged to anyone", server.user));
        }
        // Versions: each distinct mutation bumped the version once; no two applied at one version.
        let distinct: HashSet<(usize, i64)> = user_writes.iter().map(|w| (w.device, w.mutation_id)).collect();
        if server.library_version != 1 + distinct.len() as i64 {
            anomaly(format!(
                "user {}: library version {} after {} distinct mutations (expected {}: a gap or a double bump)",
                server.user,
                server.library_version,
                distinct.len(),
                1 + distinct.len()
            ));
        }
        let mut by_version: BTreeMap<i64, (usize, i64)> = BTreeMap::new();
        for write in user_writes.iter().filter(|w| w.status == "applied" || w.status == "merged") {
            if let Some(other) = by_version.insert(write.version, (write.device, write.mutation_id)) {
                anomaly(format!("user {}: version {} acknowledged to two mutations {other:?} and {:?}", server.user, write.version, (write.device, write.mutation_id)));
            }
            if write.version > server.library_version {
                anomaly(format!("user {}: version {} acknowledged beyond the final {}", server.user, write.version, server.library_version));
            }
        }
    }

    for (device, user, ops) in logs {
        check_device(*device, *user, ops, &writes, &mut anomaly);
        // Convergence: the device's final replica is the server's library.
        if let (Some(server), Some(last)) = (servers.iter().find(|s| s.user == *user), finals.get(device)) {
            if *last != server.library {
                let differing = server.library.iter().filter(|(id, held)| last.get(id) != Some(held)).count() + last.keys().filter(|id| !server.library.contains_key(id)).count();
                anomaly(format!("device {device}: final replica differs from the server in {differing} materials"));
            }
        }
        verdict.operations += ops.len();
        verdict.pages += ops.iter().filter(|op| matches!(op, Op::Page(_))).count();
    }
    verdict.writes = writes.len();
    verdict
}

/// Monotonic reads, read-your-writes, atomic creates and isolation, replaying one device's pages.
fn check_device(device: usize, user: usize, ops: &[Op], writes: &[&Write], anomaly: &mut impl FnMut(String)) {
    let mut replica: HashMap<Uuid, Held> = HashMap::new();
    let mut last_seen = 0;
    let own: Vec<&&Write> = writes.iter().filter(|w| w.device == device && w.status != "rejected").collect();
    let users_materials: HashSet<Uuid> = writes.iter().filter(|w| w.user == user).map(|w| w.material).collect();
    for (index, op) in ops.iter().enumerate() {
        let Op::Page(page) = op else { continue };
        if page.library_version < last_seen {
            anomaly(format!("device {device}: read version {} after {last_seen} (non-monotonic)", page.library_version));
        }
        last_seen = last_seen.max(page.library_version);
        if page.entries.iter().any(|e| e.version <= page.since || e.version > page.next_since) {
            anomaly(format!("device {device}: a page since {} up to {} holds entries outside it", page.since, page.next_since));
        }
        for entry in &page.entries {
            if !users_materials.contains(&entry.id) {
                anomaly(format!("device {device}: saw material {} of another user (isolation)", entry.id));
            }
            apply(&mut replica, entry);
        }
        if !page.complete {
            continue;
        }
        // Read-your-writes: every write acknowledged before this pull started is in it.
        for write in own.iter().filter(|w| w.invoked < index && w.version <= page.next_since) {
            let held = replica.get(&write.material);
            let visible = match write.kind {
                WriteKind::Create => held.is_some_and(|h| h.material_version > 0),
                WriteKind::Study => held.and_then(|h| h.progress_version).is_some_and(|v| v >= write.version),
            };
            if !visible {
                anomaly(format!("device {device}: its write {} (version {}) is not in its read up to {}", write.mutation_id, write.version, page.next_since));
            }
        }
        for write in own.iter().filter(|w| w.invoked < index && w.version > page.library_version) {
            anomaly(format!("device {device}: read version {} after its write was acknowledged at {}", page.library_version, write.version));
        }
        // Atomic creates: never a material without its progress, or progress without its material.
        for (id, held) in &replica {
            if held.material_version == 0 || held.progress_version.is_none() {
                anomaly(format!("device {device}: material {id} seen half-created ({held:?}) at version {}", page.next_since));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: usize = 0;

    fn create(mutation_id: i64, material: Uuid, version: i64, invoked: usize) -> Op {
        Op::Write(Write { device: DEVICE, user: 0, invoked, mutation_id, material, kind: WriteKind::Create, status: "applied".into(), version, attempts: 1 })
    }

    fn page(since: i64, version: i64, entries: Vec<Entry>) -> Op {
        Op::Page(Page { device: DEVICE, user: 0, since, library_version: version, next_since: version, complete: true, entries })
    }

    fn created(id: Uuid, version: i64) -> Vec<Entry> {
        vec![
            Entry { id, progress: false, deleted: false, version, study_seconds: 0 },
            Entry { id, progress: true, deleted: false, version, study_seconds: 1 },
        ]
    }

    fn held(version: i64) -> Held {
        Held { material_version: version, progress_version: Some(version), study_seconds: 1 }
    }

    fn run(ops: Vec<Op>, server: HashMap<Uuid, Held>, version: i64) -> Vec<String> {
        let finals = HashMap::from([(DEVICE, server.clone())]);
        let servers = [ServerState { user: 0, library_version: version, library: server }];
        check(&[(DEVICE, 0, ops)], &servers, &finals).anomalies
    }

    #[test]
    fn a_clean_history_has_no_anomaly() {
        let a = Uuid::now_v7();
        let ops = vec![create(1, a, 2, 0), page(0, 2, created(a, 2))];
        assert_eq!(run(ops, HashMap::from([(a, held(2))]), 2), Vec::<String>::new());
    }

    #[test]
    fn lost_doubled_unread_half_applied_and_backwards_reads_are_found() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        // b was acknowledged but the server lost it; the version says 3 writes for 2 mutations.
        let lost = run(vec![create(1, a, 2, 0), create(2, b, 3, 1)], HashMap::from([(a, held(2))]), 4);
        assert!(lost.iter().any(|a| a.contains("missing on the server")), "{lost:?}");
        assert!(lost.iter().any(|a| a.contains("a gap or a double bump")), "{lost:?}");
        let doubled = run(vec![create(1, a, 2, 0)], HashMap::from([(a, Held { study_seconds: 2, ..held(2) })]), 2);
        assert!(doubled.iter().any(|a| a.contains("lost or doubled")), "{doubled:?}");
        // A read after the write that does not show it, and a later read that goes back.
        let unread = run(vec![create(1, a, 2, 0), page(0, 1, vec![]), page(1, 0, vec![])], HashMap::from([(a, held(2))]), 2);
        assert!(unread.iter().any(|a| a.contains("non-monotonic")), "{unread:?}");
        assert!(unread.iter().any(|a| a.contains("after its write was acknowledged")), "{unread:?}");
        let half = run(vec![create(1, a, 2, 0), page(0, 2, created(a, 2)[..1].to_vec())], HashMap::from([(a, held(2))]), 2);
        assert!(half.iter().any(|a| a.contains("half-created")), "{half:?}");
    }
}
