//! The `shelf` command-line client against a real `shelf serve` process, on SQLite and on
//! PostgreSQL, with two profiles acting as two devices of one user (spec CL1–CL9): live follow,
//! editing while the server is down, `kill -9` in the middle of a large push, a revoked device,
//! a server restored from a backup.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::backup::Backup;
use common::{Serve, WAIT};
use serde_json::Value;
use shelf_api::{MaterialCreateData, ProgressInput};
use shelf_client::{LocalEdit, Replica};
use shelf_testkit::{Api, Backend, TestDatabase};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

shelf_testkit::on_every_backend!(
    cl5_an_edit_on_one_profile_shows_in_follow_on_the_other,
    cl1_both_profiles_edit_while_the_server_is_down_then_converge,
    cl2_kill_9_in_the_middle_of_a_large_push_loses_nothing_and_doubles_nothing,
    cl6_a_revoked_device_says_so_and_cl8_errors_are_one_line,
    cl10_after_a_restored_backup_the_devices_send_again_what_the_server_lost,
    cl11_a_new_epoch_after_a_restore_brings_everything_back,
    cl12_a_file_attached_and_a_conflict_settled_offline_reach_the_server_in_order,
);

/// One machine's home: XDG folders in a temporary directory, an account on `server`.
struct Machine {
    home: tempfile::TempDir,
    server: String,
    email: String,
}

impl Machine {
    fn new(server: &str) -> Self {
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        Self { home: tempfile::tempdir().unwrap(), server: server.to_owned(), email }
    }

    fn command(&self, profile: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shelf"));
        command
            .args(["--profile", profile])
            .args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env_remove("SHELF_PROFILE")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        command
    }

    /// Runs `shelf --profile <profile> <args>` to the end, with `stdin` as its input.
    async fn run_with_input(&self, profile: &str, args: &[&str], stdin: &str) -> Output {
        let mut child = self.command(profile, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        tokio::time::timeout(WAIT * 3, child.wait_with_output()).await.expect("shelf finished").unwrap()
    }

    async fn run(&self, profile: &str, args: &[&str]) -> Output {
        self.run_with_input(profile, args, "").await
    }

    /// Runs a command that must succeed and returns its `--json` output.
    async fn json(&self, profile: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let output = self.run(profile, &args).await;
        assert!(output.status.success(), "shelf {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
    }

    async fn register(&self) {
        let args = ["register", "--server", &self.server, "--email", &self.email, "--password-stdin"];
        let output = self.run_with_input("default", &args, &format!("{PASSWORD}\n")).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }

    async fn login(&self, profile: &str) -> Value {
        let args = ["login", "--server", &self.server, "--email", &self.email, "--device-name", profile, "--password-stdin", "--json"];
        let output = self.run_with_input(profile, &args, &format!("{PASSWORD}\n")).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn replica_path(&self, profile: &str) -> std::path::PathBuf {
        self.home.path().join("data/shelf/profiles").join(profile).join("replica.sqlite3")
    }

    fn token(&self, profile: &str) -> String {
        std::fs::read_to_string(self.home.path().join("config/shelf/profiles").join(profile).join("token")).unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// What two devices must agree on: every material's fields and progress, without local counters.
fn library(materials: &Value) -> Vec<Value> {
    let mut items: Vec<Value> = materials
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let progress = m["progress"].as_object().map(|p| (p["percentComplete"].clone(), p["studySeconds"].clone()));
            serde_json::json!([m["id"], m["title"], m["body"], m["tags"], m["version"], progress])
        })
        .collect();
    items.sort_by_key(|v| v[0].as_str().unwrap_or("").to_owned());
    items
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Reads `follow --json` lines until the material `id` shows up with `title`.
async fn arrives(lines: &mut Lines, id: &str, title: &str) -> Value {
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let change: Value = serde_json::from_str(&line).unwrap();
            if change["kind"] == "material" && change["id"] == id && change["data"]["title"] == title {
                return change;
            }
        }
        panic!("follow ended");
    })
    .await
    .expect("the change arrives in follow --json")
}

async fn start(backend: Backend) -> (TestDatabase, Serve) {
    let database = TestDatabase::create(backend).await;
    let serve = common::serve(&database.url, &["--sse-heartbeat-secs", "1"]).await;
    (database, serve)
}

/// A server and one account signed in on two profiles, `laptop` and `phone`.
async fn two_devices(backend: Backend) -> (TestDatabase, Serve, Machine) {
    let (database, serve) = start(backend).await;
    let machine = Machine::new(&serve.base);
    machine.register().await;
    machine.login("laptop").await;
    machine.login("phone").await;
    (database, serve, machine)
}

async fn cl5_an_edit_on_one_profile_shows_in_follow_on_the_other(backend: Backend) {
    let (_database, mut serve, machine) = two_devices(backend).await;
    let mut follow = machine.command("phone", &["follow", "--json"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();

    let added = machine.json("laptop", &["add", "Seen on the phone", "--tag", "live"]).await;
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["title"], "Seen on the phone");
    assert_eq!(added["pendingChanges"], 0, "sent at once");
    let change = arrives(&mut lines, &id, "Seen on the phone").await;
    assert_eq!(change["op"], "upsert");
    machine.json("laptop", &["edit", &id, "--title", "Renamed on the laptop"]).await;
    arrives(&mut lines, &id, "Renamed on the laptop").await;
    // The server goes away and comes back: follow reconnects (backoff, Last-Event-ID) by itself.
    serve.restart().await;
    machine.json("laptop", &["edit", &id, "--title", "After a server restart"]).await;
    arrives(&mut lines, &id, "After a server restart").await;

    let listed = machine.json("phone", &["ls"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "the follower's replica has it: ls works from it");
    assert_eq!(listed[0]["title"], "After a server restart");
    let status = machine.json("phone", &["status"]).await;
    assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("synced"), Some(0)));
    let devices = machine.json("laptop", &["devices"]).await;
    let names: Vec<&str> = devices.as_array().unwrap().iter().map(|d| d["deviceName"].as_str().unwrap()).collect();
    assert!(names.contains(&"laptop") && names.contains(&"phone"), "{names:?}");
    assert!(devices[0]["deviceId"].is_string());

    let file = machine.home.path().join("slides.pdf");
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();
    let attached = machine.json("laptop", &["attach", &id, file.to_str().unwrap()]).await;
    assert_eq!((attached["filename"].as_str(), attached["size"].as_i64()), (Some("slides.pdf"), Some(300_000)));
    let out = machine.home.path().join("fetched.pdf");
    let fetched = machine.json("phone", &["fetch", &id, "slides.pdf", "--out", out.to_str().unwrap()]).await;
    assert_eq!(fetched["sha256"], attached["sha256"]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());
    follow.kill().await.unwrap();
}

async fn cl1_both_profiles_edit_while_the_server_is_down_then_converge(backend: Backend) {
    let (_database, mut serve, machine) = two_devices(backend).await;
    let shared = machine.json("laptop", &["add", "Shared notes"]).await["id"].as_str().unwrap().to_owned();
    let contested = machine.json("laptop", &["add", "Contested"]).await["id"].as_str().unwrap().to_owned();
    machine.json("phone", &["sync"]).await;

    serve.stop().await;
    let body = machine.home.path().join("body.txt");
    std::fs::write(&body, "written on the phone\n").unwrap();
    let (laptop_body, phone_body) = (machine.home.path().join("laptop.txt"), machine.home.path().join("phone.txt"));
    std::fs::write(&laptop_body, "the laptop's line\n").unwrap();
    std::fs::write(&phone_body, "the phone's line\n").unwrap();
    let offline = [
        machine.json("laptop", &["edit", &contested, "--body-file", laptop_body.to_str().unwrap()]).await,
        machine.json("phone", &["edit", &contested, "--body-file", phone_body.to_str().unwrap()]).await,
        machine.json("laptop", &["edit", &shared, "--title", "Shared notes (laptop title)"]).await,
        machine.json("laptop", &["add", "Laptop only", "--tag", "offline"]).await,
        machine.json("phone", &["edit", &shared, "--body-file", body.to_str().unwrap()]).await,
        machine.json("phone", &["progress", &shared, "--percent", "30", "--studied", "120"]).await,
        machine.json("phone", &["add", "Phone only"]).await,
    ];
    assert!(offline.iter().all(|m| m["pendingChanges"].as_u64() > Some(0)), "queued while the server is down");
    let status = machine.json("phone", &["status"]).await;
    assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("offline"), Some(4)));
    let failed = machine.run("laptop", &["sync"]).await;
    assert!(!failed.status.success());
    assert!(stderr(&failed).starts_with("cannot reach the server"), "{}", stderr(&failed));
    assert_eq!(machine.json("laptop", &["ls"]).await.as_array().unwrap().len(), 3, "reads work offline");

    serve.restart().await;
    machine.json("laptop", &["sync"]).await;
    machine.json("phone", &["sync"]).await;
    machine.json("laptop", &["sync"]).await;
    let laptop = library(&machine.json("laptop", &["ls"]).await);
    let phone = library(&machine.json("phone", &["ls"]).await);
    assert_eq!(laptop, phone, "both devices converge");
    assert_eq!(laptop.len(), 4);
    let merged = machine.json("phone", &["show", &shared]).await;
    assert_eq!(merged["title"], "Shared notes (laptop title)", "different fields both survive (SY1)");
    assert_eq!(merged["body"], "written on the phone\n");
    assert_eq!(merged["progress"]["studySeconds"], 120);
    for profile in ["laptop", "phone"] {
        let status = machine.json(profile, &["status"]).await;
        assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("synced"), Some(0)));
    }

    // The same line edited on both: the laptop synced first, the phone's text became a conflict.
    let conflicts = machine.json("phone", &["conflicts"]).await;
    assert_eq!(conflicts.as_array().unwrap().len(), 1, "{conflicts}");
    let conflict = &conflicts[0];
    assert_eq!((conflict["materialId"].as_str(), conflict["field"].as_str()), (Some(contested.as_str()), Some("body")));
    assert_eq!((conflict["serverValue"].as_str(), conflict["deviceValue"].as_str()), (Some("the laptop's line\n"), Some("the phone's line\n")));
    let conflict_id = conflict["id"].as_str().unwrap();
    let resolved = machine.json("phone", &["conflicts", "resolve", &contested, conflict_id, "--keep", "device"]).await;
    assert_eq!(resolved["body"], "the phone's line\n");
    machine.json("laptop", &["sync"]).await;
    assert_eq!(machine.json("laptop", &["conflicts"]).await, serde_json::json!([]));
    assert_eq!(library(&machine.json("laptop", &["ls"]).await), library(&machine.json("phone", &["ls"]).await));
}

/// `attach` and `conflicts resolve` go through the outbox like every edit: made while the server
/// is down, they are kept (the file as the replica's own copy, so deleting the original changes
/// nothing) and sent with the next sync, after the edits queued before them.
async fn cl12_a_file_attached_and_a_conflict_settled_offline_reach_the_server_in_order(backend: Backend) {
    let (_database, mut serve, machine) = two_devices(backend).await;
    let id = machine.json("laptop", &["add", "Contested"]).await["id"].as_str().unwrap().to_owned();
    machine.json("phone", &["sync"]).await;
    machine.json("laptop", &["edit", &id, "--title", "The laptop's title"]).await;
    machine.json("phone", &["edit", &id, "--title", "The phone's title"]).await;
    let conflicts = machine.json("phone", &["conflicts"]).await;
    let conflict_id = conflicts[0]["id"].as_str().unwrap().to_owned();

    serve.stop().await;
    let file = machine.home.path().join("notes.pdf");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let created = machine.json("phone", &["add", "Made offline"]).await["id"].as_str().unwrap().to_owned();
    let queued = machine.json("phone", &["attach", &created, file.to_str().unwrap()]).await;
    assert_eq!((queued["pending"].as_bool(), queued["version"].as_i64(), queued["size"].as_i64()), (Some(true), Some(0), Some(200_000)));
    std::fs::remove_file(&file).unwrap();
    let shown = machine.json("phone", &["show", &created]).await;
    assert_eq!(shown["attachments"][0]["filename"], "notes.pdf", "a queued attach shows at once: {shown}");
    let resolved = machine.json("phone", &["conflicts", "resolve", &id, &conflict_id, "--value", "Both titles"]).await;
    assert_eq!((resolved["title"].as_str(), resolved["conflicts"].as_array().map(Vec::len)), (Some("Both titles"), Some(0)));
    let status = machine.json("phone", &["status"]).await;
    assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("offline"), Some(3)));

    serve.restart().await;
    let report = machine.json("phone", &["sync"]).await;
    assert_eq!(report["pushed"]["rejected"], serde_json::json!([]), "{report}");
    let staged = std::fs::read_dir(machine.replica_path("phone").with_extension("sqlite3.files")).unwrap().count();
    assert_eq!(staged, 0, "the replica's copy goes once the file is on the server");
    machine.json("laptop", &["sync"]).await;
    let settled = machine.json("laptop", &["show", &id]).await;
    assert_eq!((settled["title"].as_str(), settled["conflicts"].as_array().map(Vec::len)), (Some("Both titles"), Some(0)));
    let attached = machine.json("laptop", &["show", &created]).await["attachments"][0].clone();
    assert!(attached["version"].as_i64() > Some(0), "{attached}");
    let out = machine.home.path().join("fetched.pdf");
    machine.json("laptop", &["fetch", &created, "notes.pdf", "--out", out.to_str().unwrap()]).await;
    assert_eq!(std::fs::read(&out).unwrap(), content);
    for profile in ["laptop", "phone"] {
        let status = machine.json(profile, &["status"]).await;
        assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("synced"), Some(0)));
    }
}

async fn cl2_kill_9_in_the_middle_of_a_large_push_loses_nothing_and_doubles_nothing(backend: Backend) {
    const MATERIALS: usize = 1000;
    let (_database, serve) = start(backend).await;
    let machine = Machine::new(&serve.base);
    machine.register().await;
    machine.login("laptop").await;
    machine.json("laptop", &["sync"]).await;
    // A large outbox, as a long offline session (or an import) leaves it: a create and a
    // study-time delta per material, so a doubled mutation would show as doubled study time.
    let mut edits = Vec::new();
    for i in 0..MATERIALS {
        let id = Uuid::now_v7();
        let create = MaterialCreateData { title: format!("bulk {i}"), body: "b".repeat(200), tags: vec![], progress: None };
        edits.push((id, LocalEdit::Create(create)));
        edits.push((id, LocalEdit::SetProgress(ProgressInput { study_seconds_delta: 1, ..Default::default() })));
    }
    let mut replica = Replica::open(&machine.replica_path("laptop")).unwrap();
    replica.record_edits(edits, time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(replica.pending_count().unwrap(), 2 * MATERIALS as u64);
    let api = Api::new(&serve.base);
    let token = machine.token("laptop");
    let start_version = api.library_version(&token).await;

    let mut sync = machine.command("laptop", &["sync"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Kill it once the server has applied part of the second batch: the first batch's receipts
    // are (most likely) stored, the second is in flight, the rest is untouched.
    let killed_at = tokio::time::timeout(WAIT * 3, async {
        loop {
            let version = api.library_version(&token).await;
            if version >= start_version + 600 {
                return version;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the push makes progress");
    sync.start_kill().unwrap();
    sync.wait().await.unwrap();
    assert!(killed_at < start_version + 2 * MATERIALS as i64, "killed in the middle of the push (at v{killed_at})");

    let report = machine.json("laptop", &["sync"]).await;
    assert!(report["pushed"]["rejected"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(api.library_version(&token).await, start_version + 2 * MATERIALS as i64, "every mutation applied exactly once");
    let materials = machine.json("laptop", &["ls"]).await;
    let materials = materials.as_array().unwrap();
    assert_eq!(materials.len(), MATERIALS, "nothing lost");
    let study: i64 = materials.iter().map(|m| m["progress"]["studySeconds"].as_i64().unwrap()).sum();
    assert_eq!(study, MATERIALS as i64, "nothing doubled");
    let status = machine.json("laptop", &["status"]).await;
    assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("synced"), Some(0)));
}

async fn cl6_a_revoked_device_says_so_and_cl8_errors_are_one_line(backend: Backend) {
    let (_database, serve) = start(backend).await;
    let machine = Machine::new(&serve.base);
    machine.register().await;
    machine.login("laptop").await;
    let phone = machine.login("phone").await;
    machine.json("phone", &["add", "Before the revoke"]).await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let token = machine.home.path().join("config/shelf/profiles/phone/token");
        assert_eq!(std::fs::metadata(token).unwrap().permissions().mode() & 0o777, 0o600, "only the user can read the token");
    }

    let phone_id = phone["deviceId"].as_str().unwrap();
    let revoked = machine.json("laptop", &["devices", "revoke", phone_id]).await;
    assert_eq!(revoked["revoked"], true);
    for args in [&["sync"][..], &["devices"], &["add", "After the revoke"]] {
        let output = machine.run("phone", args).await;
        assert!(!output.status.success(), "{args:?} fails");
        assert_eq!(stderr(&output), "this device was signed out; run shelf login", "{args:?}");
    }
    assert_eq!(machine.json("phone", &["ls"]).await.as_array().unwrap().len(), 2, "local reads still work; the edit is kept");
    let status = machine.json("phone", &["status"]).await;
    assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("error"), Some(1)));

    // Signing in again sends what was queued.
    machine.login("phone").await;
    machine.json("phone", &["sync"]).await;
    assert_eq!(machine.json("laptop", &["sync"]).await["pulled"].as_u64(), Some(2));

    let signed_out = machine.json("phone", &["logout"]).await;
    assert_eq!(signed_out["signedOut"], true);
    assert!(!machine.home.path().join("config/shelf/profiles/phone/token").exists(), "the token is gone");
    let output = machine.run("phone", &["sync"]).await;
    assert_eq!(stderr(&output), "not signed in; run shelf login");
    assert_eq!(machine.json("phone", &["ls"]).await.as_array().unwrap().len(), 2, "the library stays");

    // Errors: one line on stderr, non-zero exit, no panic or backtrace.
    let wrong = ["login", "--server", &serve.base, "--email", &machine.email, "--password-stdin"];
    let unknown = Uuid::now_v7().to_string();
    let cases: [(Output, &str); 4] = [
        (machine.run_with_input("laptop", &wrong, "not the password\n").await, "wrong e-mail address or password"),
        (machine.run("laptop", &["show", &unknown]).await, "no material with id"),
        (machine.run("laptop", &["edit", &unknown, "--title", "x"]).await, "no material with id"),
        (machine.run("nobody", &["ls"]).await, "is not signed in"),
    ];
    for (output, expected) in cases {
        let message = stderr(&output);
        assert!(!output.status.success());
        assert!(message.contains(expected) && !message.contains('\n') && !message.contains("panicked"), "{message:?}");
    }
    let down = Machine::new("http://127.0.0.1:9");
    let output = down.run_with_input("default", &["login", "--server", &down.server, "--email", &down.email, "--password-stdin"], "x\n").await;
    assert!(stderr(&output).starts_with("cannot reach the server at http://127.0.0.1:9"), "{}", stderr(&output));
}

fn titles(materials: &Value) -> Vec<String> {
    let mut titles: Vec<String> = materials.as_array().unwrap().iter().map(|m| m["title"].as_str().unwrap().to_owned()).collect();
    titles.sort();
    titles
}

/// Both devices edit after a backup was taken, then the server is restored from it. Returns the
/// material edited on both sides of the backup and what the library must end up holding.
async fn restored_after_edits(database: &TestDatabase, serve: &mut Serve, machine: &Machine, phone_edits: usize) -> (String, Vec<String>) {
    let kept = machine.json("laptop", &["add", "Before the backup"]).await["id"].as_str().unwrap().to_owned();
    machine.json("phone", &["sync"]).await;
    serve.stop().await;
    let backup = Backup::take(database).await;
    serve.restart().await;

    // Acknowledged and pulled by both devices: gone from their outboxes.
    machine.json("laptop", &["add", "After the backup"]).await;
    machine.json("laptop", &["progress", &kept, "--studied", "600"]).await;
    let mut expected = vec!["After the backup".to_owned(), "Before the backup".to_owned()];
    for n in 0..phone_edits {
        let title = format!("From the phone {n}");
        machine.json("phone", &["add", &title]).await;
        expected.push(title);
    }
    machine.json("laptop", &["sync"]).await;
    machine.json("phone", &["sync"]).await;
    for profile in ["laptop", "phone"] {
        assert_eq!(machine.json(profile, &["status"]).await["pendingCount"], 0);
    }

    // The server's disk is lost; the operator restores last night's backup.
    serve.stop().await;
    backup.restore().await;
    (kept, expected)
}

/// Both devices hold the whole library again, and so does the server.
async fn everything_is_back(serve: &Serve, machine: &Machine, kept: &str, expected: &[String]) {
    for profile in ["laptop", "phone"] {
        assert_eq!(titles(&machine.json(profile, &["ls"]).await), expected, "{profile}");
        let status = machine.json(profile, &["status"]).await;
        assert_eq!((status["state"].as_str(), status["pendingCount"].as_u64()), (Some("synced"), Some(0)), "{profile}");
    }
    assert_eq!(library(&machine.json("laptop", &["ls"]).await), library(&machine.json("phone", &["ls"]).await));
    let studied = machine.json("phone", &["show", kept]).await;
    assert_eq!(studied["progress"]["studySeconds"], 600, "the lost progress came back too");
    let on_server = Api::new(&serve.base).get("/api/materials", machine.token("laptop").trim()).await;
    assert_eq!(titles(&on_server.body["items"]), expected, "the server has everything again");
}

/// Nobody told the server: each device notices that the server is behind its cursor.
async fn cl10_after_a_restored_backup_the_devices_send_again_what_the_server_lost(backend: Backend) {
    let (database, mut serve, machine) = two_devices(backend).await;
    let (kept, expected) = restored_after_edits(&database, &mut serve, &machine, 1).await;
    serve.restart().await;
    let version = Api::new(&serve.base).library_version(machine.token("laptop").trim()).await;
    assert!(version < 3, "the server lost the last changes (version {version})");

    let report = machine.json("phone", &["sync"]).await;
    assert_eq!(report["resynced"], true, "{report}");
    machine.json("laptop", &["sync"]).await;
    machine.json("phone", &["sync"]).await;
    everything_is_back(&serve, &machine, &kept, &expected).await;
}

/// `shelf admin new-epoch` after the restore: every device resyncs because the epoch changed,
/// whatever its cursor (versions re-sent by one device could catch up with another's cursor and
/// hide the loss from a version compare); edits the backup has come back as duplicates.
async fn cl11_a_new_epoch_after_a_restore_brings_everything_back(backend: Backend) {
    let (database, mut serve, machine) = two_devices(backend).await;
    let (kept, expected) = restored_after_edits(&database, &mut serve, &machine, 3).await;
    let output = Command::new(env!("CARGO_BIN_EXE_shelf")).args(["admin", "new-epoch", "--database-url", &database.url, "--json"]).output().await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let changed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_ne!(changed["epoch"], changed["previousEpoch"]);
    serve.restart().await;

    assert_eq!(machine.json("phone", &["sync"]).await["resynced"], true);
    let laptop = machine.json("laptop", &["sync"]).await;
    assert_eq!((laptop["resynced"].as_bool(), laptop["pushed"]["acknowledged"].as_u64()), (Some(true), Some(3)), "{laptop}");
    machine.json("phone", &["sync"]).await;
    everything_is_back(&serve, &machine, &kept, &expected).await;
}
