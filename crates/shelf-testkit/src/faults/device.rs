//! A recording device: writes through `POST /api/library/mutations` (retrying the same mutation id
//! until a receipt answers, as a client's outbox does) and reads the change feed into its own
//! replica, recording every acknowledged write and every page it applied.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use shelf_api::{ChangesResponse, MutationBatchResponse, PROTOCOL_VERSION};
use uuid::Uuid;

use super::history::{Entry, Op, Page, Write, WriteKind};

/// What a device holds of one material: its version, its progress version and study seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    pub material_version: i64,
    pub progress_version: Option<i64>,
    pub study_seconds: i64,
}

pub struct Device {
    pub index: usize,
    pub user: usize,
    base: String,
    token: String,
    http: reqwest::Client,
    next_mutation: i64,
    pub cursor: i64,
    pub replica: HashMap<Uuid, Held>,
    /// Materials this device created (acknowledged), for study writes.
    own: Vec<Uuid>,
    pub ops: Vec<Op>,
    /// Requests that failed (connection refused or reset, 5xx) and were sent again.
    pub retries: u64,
}

/// Waits between attempts while the server is down.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

impl Device {
    pub fn new(index: usize, user: usize, base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        let (base, token) = (base.to_owned(), token.to_owned());
        Self { index, user, base, token, http, next_mutation: 1, cursor: 0, replica: HashMap::new(), own: Vec::new(), ops: Vec::new(), retries: 0 }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    fn seq(&self) -> usize {
        self.ops.len()
    }

    /// Creates a material with progress (so atomicity shows), or studies one of its own.
    pub async fn write(&mut self, study: bool) {
        let (kind, material) = match (study, self.own.len()) {
            (true, n) if n > 0 => (WriteKind::Study, self.own[(self.next_mutation as usize * 7919) % n]),
            _ => (WriteKind::Create, Uuid::now_v7()),
        };
        let mutation_id = self.next_mutation;
        self.next_mutation += 1;
        let mutation = match kind {
            WriteKind::Create => json!({
                "type": "material.create", "mutationId": mutation_id, "id": material, "baseVersion": self.cursor,
                "data": {"title": format!("device {} write {mutation_id}", self.index), "body": "", "tags": [], "progress": {"studySecondsDelta": 1}}
            }),
            WriteKind::Study => json!({
                "type": "progress.set", "mutationId": mutation_id, "id": material, "baseVersion": self.cursor,
                "data": {"studySecondsDelta": 1}
            }),
        };
        let body = json!({"protocolVersion": PROTOCOL_VERSION, "mutations": [mutation]});
        let started = self.seq();
        let mut attempts = 0;
        let receipt = loop {
            attempts += 1;
            match self.send::<MutationBatchResponse>(reqwest::Method::POST, "/api/library/mutations", Some(&body)).await {
                Some(response) => match response.results.into_iter().next() {
                    Some(receipt) => break receipt,
                    None => continue,
                },
                None => tokio::time::sleep(RETRY_PAUSE).await,
            }
        };
        let status = serde_json::to_value(receipt.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        if kind == WriteKind::Create && status != "rejected" {
            self.own.push(material);
        }
        self.ops.push(Op::Write(Write {
            device: self.index,
            user: self.user,
            invoked: started,
            mutation_id,
            material,
            kind,
            status,
            version: receipt.library_version,
            attempts,
        }));
    }

    /// Pulls the feed from the cursor to its end, recording each page applied.
    pub async fn read(&mut self) {
        loop {
            let path = format!("/api/library/changes?since={}&limit=1000", self.cursor);
            let Some(page) = self.send::<ChangesResponse>(reqwest::Method::GET, &path, None).await else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            let since = self.cursor;
            let mut entries = Vec::with_capacity(page.changes.len());
            for change in &page.changes {
                let study_seconds = change.data.as_ref().and_then(|d| d["studySeconds"].as_i64()).unwrap_or(0);
                let entry = Entry { id: change.id, progress: change.kind == "progress", deleted: change.op == "delete", version: change.version, study_seconds };
                apply(&mut self.replica, &entry);
                entries.push(entry);
            }
            self.cursor = page.next_since;
            self.ops.push(Op::Page(Page {
                device: self.index,
                user: self.user,
                since,
                library_version: page.library_version,
                next_since: page.next_since,
                complete: !page.has_more,
                entries,
            }));
            if !page.has_more {
                return;
            }
        }
    }

    /// One request; `None` when it should be tried again (server down, restarting, or 5xx).
    async fn send<T: serde::de::DeserializeOwned>(&mut self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Option<T> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = match request.send().await {
            Ok(response) if response.status().is_success() => response.json::<T>().await.ok(),
            Ok(response) if response.status().is_server_error() => None,
            Ok(response) => panic!("device {}: {path} answered {}: {}", self.index, response.status(), response.text().await.unwrap_or_default()),
            Err(_) => None,
        };
        if answer.is_none() {
            self.retries += 1;
        }
        answer
    }
}

/// Applies one feed entry to a replica (the checker replays pages with the same function).
pub fn apply(replica: &mut HashMap<Uuid, Held>, entry: &Entry) {
    match (entry.progress, entry.deleted) {
        (false, true) => {
            replica.remove(&entry.id);
        }
        (false, false) => replica.entry(entry.id).or_default().material_version = entry.version,
        (true, deleted) => {
            let held = replica.entry(entry.id).or_default();
            held.progress_version = (!deleted).then_some(entry.version);
            held.study_seconds = if deleted { 0 } else { entry.study_seconds };
        }
    }
}
