//! ISO2: randomized isolation. Several users fill every kind of thing they own (materials with
//! secret titles and bodies, progress, attachments, an unfinished upload, a conflict, a rejected
//! edit, devices); then each, many times, calls a random route of the OpenAPI document with a
//! random other user's ids and random bodies. No answer may succeed on another user's thing, no
//! answer may carry another user's secrets, and afterwards every library is exactly as it was.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shelf_testkit::faults::Xorshift;
use shelf_testkit::{Backend, Operation, TestServer, TestUser};

use crate::attachments::{content, upload};

shelf_testkit::on_every_backend!(iso2_random_requests_with_other_users_ids_leak_nothing);

/// What one user owns, by the path parameter names of the OpenAPI document.
struct Owned {
    user: TestUser,
    secret: String,
    materials: Vec<String>,
    attachments: Vec<String>,
    uploads: Vec<String>,
    conflicts: Vec<String>,
    rejected: Vec<String>,
    blobs: Vec<String>,
    devices: Vec<String>,
}

impl Owned {
    /// A value of this user's for the parameter `name`, chosen by `pick`.
    fn value(&self, name: &str, pick: usize) -> String {
        let list = match name {
            "id" => &self.materials,
            "attachmentId" => &self.attachments,
            "uploadId" => &self.uploads,
            "conflictId" => &self.conflicts,
            "rejectedId" => &self.rejected,
            "sha256" => &self.blobs,
            "deviceId" => &self.devices,
            other => panic!("a new path parameter {other}: give it an owner here"),
        };
        list[pick % list.len()].clone()
    }
}

async fn fill(server: &TestServer, seed: u8) -> Owned {
    let user = server.user().await;
    let secret = format!("secret{seed}x{}", uuid::Uuid::new_v4().simple());
    let create = |n: u8| json!({"title": format!("{secret} title {n}"), "body": format!("{secret} body\nline two\n"), "tags": [format!("{secret}{n}")]});
    let mut materials = Vec::new();
    for n in 0..3 {
        materials.push(server.post("/api/materials", &user.token, create(n)).await.body["id"].as_str().unwrap().to_owned());
    }
    server.put(&format!("/api/materials/{}/progress", materials[0]), &user.token, json!({"percentComplete": 40, "position": secret})).await;
    let bytes = content(5_000, seed);
    let sha = upload(server, &user, &bytes).await;
    let attach = json!({"sha256": sha, "filename": format!("{secret}.pdf"), "contentType": "application/pdf", "size": bytes.len()});
    let attachment = server.post(&format!("/api/materials/{}/attachments", materials[1]), &user.token, attach).await.body["id"].as_str().unwrap().to_owned();
    let unfinished = server.tus_create(&user.token, 10, &"cd".repeat(32)).await.headers["location"].to_str().unwrap().rsplit('/').next().unwrap().to_owned();

    // A conflict: two edits of the same line from the same base; a rejected edit: a stale update
    // of a material deleted since.
    let base = server.library_version(&user.token).await;
    let edit = |id: &str, mutation_id: i64, base: i64, body: String| {
        json!({"type": "material.update", "mutationId": mutation_id, "id": id, "baseVersion": base, "data": {"body": body}})
    };
    let batch = json!({"mutations": [edit(&materials[2], 1, base, format!("{secret} server\nline two\n"))]});
    server.post("/api/library/mutations", &user.token, batch).await;
    let phone = server.login(&user, "phone").await.body["token"].as_str().unwrap().to_owned();
    let batch = json!({"mutations": [edit(&materials[2], 2, base, format!("{secret} device\nline two\n"))]});
    server.post("/api/library/mutations", &phone, batch).await;
    let conflicts = server.get(&format!("/api/materials/{}/conflicts", materials[2]), &user.token).await.body;
    let conflict = conflicts[0]["id"].as_str().expect("a conflict was kept").to_owned();
    let doomed = server.post("/api/materials", &user.token, create(9)).await.body["id"].as_str().unwrap().to_owned();
    let before_delete = server.library_version(&user.token).await;
    server.delete(&format!("/api/materials/{doomed}"), &user.token).await;
    let batch = json!({"mutations": [edit(&doomed, 3, before_delete - 1, format!("{secret} too late"))]});
    server.post("/api/library/mutations", &user.token, batch).await;
    let rejected = server.get("/api/library/rejected", &user.token).await.body["items"][0]["id"].as_str().expect("a rejected edit").to_owned();
    let devices = vec![user.device_id.clone()];
    Owned { user, secret, materials, attachments: vec![attachment], uploads: vec![unfinished], conflicts: vec![conflict], rejected: vec![rejected], blobs: vec![sha], devices }
}

/// Everything a user can read of their own library, to compare before and after.
async fn snapshot(server: &TestServer, owned: &Owned) -> Vec<Value> {
    let token = &owned.user.token;
    let mut all = vec![
        server.get("/api/library/changes?since=0", token).await.body,
        server.get("/api/library/rejected", token).await.body,
        json!(server.get("/api/devices", token).await.body.as_array().unwrap().iter().map(|d| d["deviceId"].clone()).collect::<Vec<_>>()),
    ];
    for id in &owned.materials {
        all.push(server.get(&format!("/api/materials/{id}/conflicts"), token).await.body);
    }
    all.push(json!(server.call(Method::HEAD, &format!("/api/uploads/{}", owned.uploads[0]), Some(token), None).await.headers.get("upload-offset").map(|v| v.to_str().unwrap_or("").to_owned())));
    all
}

fn random_body(random: &mut Xorshift, victim: &Owned) -> Value {
    let bodies = [
        json!({}),
        json!({"title": "taken", "body": "mine"}),
        json!({"percentComplete": 1}),
        json!({"sha256": victim.blobs[0], "filename": "x.pdf", "contentType": "application/pdf", "size": 5000}),
        json!({"resolution": "device"}),
        json!({"mutations": [{"type": "material.update", "mutationId": random.below(0xffff) as i64, "id": victim.materials[0], "baseVersion": 1, "data": {"title": "taken"}}]}),
        json!({"mutations": [{"type": "attachment.remove", "mutationId": random.below(0xffff) as i64, "id": victim.materials[1], "baseVersion": 1, "data": {"attachmentId": victim.attachments[0]}}]}),
    ];
    bodies[random.below(bodies.len())].clone()
}

async fn iso2_random_requests_with_other_users_ids_leak_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut users = Vec::new();
    for seed in 0..4 {
        users.push(fill(&server, seed).await);
    }
    let before: Vec<_> = futures::future::join_all(users.iter().map(|u| snapshot(&server, u))).await;
    let operations: Vec<Operation> = shelf_testkit::openapi_operations(&server)
        .await
        .into_iter()
        .filter(|op| op.secured && !op.path.ends_with("-ws") && !op.path.ends_with("/logout") && op.path != "/api/library-version-events")
        .collect();
    let mut random = Xorshift::new(0x5EED_1234_ABCD_0001);
    let mut refused = 0;
    for round in 0..400 {
        let attacker = &users[random.below(users.len())];
        let victim = &users[(users.iter().position(|u| std::ptr::eq(u, attacker)).unwrap() + 1 + random.below(users.len() - 1)) % users.len()];
        let op = &operations[random.below(operations.len())];
        let pick = random.below(usize::MAX);
        let path = shelf_testkit::fill_path(&op.path, |name| victim.value(name, pick));
        let body = matches!(op.method, Method::POST | Method::PUT | Method::PATCH).then(|| random_body(&mut random, victim));
        let reply = server.call(op.method.clone(), &path, Some(&attacker.user.token), body.clone()).await;
        let text = reply.body.to_string();
        for other in users.iter().filter(|u| !std::ptr::eq(*u, attacker)) {
            assert!(!text.contains(&other.secret), "round {round}: {} {path} {body:?} answered another user's secret: {text}", op.method);
            assert!(!reply.headers.values().any(|v| v.to_str().is_ok_and(|v| v.contains(&other.secret))), "round {round}: a header leaked");
        }
        if op.path.contains('{') {
            // Another user's id never names something of the attacker's: nothing to succeed on.
            assert!(!reply.status.is_success(), "round {round}: {} {path} {body:?} -> {} {text}", op.method, reply.status);
            assert!(reply.status == StatusCode::NOT_FOUND || reply.status.is_client_error(), "round {round}: {} {path} -> {}", op.method, reply.status);
            refused += 1;
        }
    }
    assert!(refused > 200, "most rounds used another user's ids ({refused})");
    assert!(users.iter().all(|u| before.iter().flatten().any(|v| v.to_string().contains(&u.secret))));
    let after: Vec<_> = futures::future::join_all(users.iter().map(|u| snapshot(&server, u))).await;
    // An attacker's own library may have grown (its batches naming someone else's ids create or
    // are rejected in its own library); what each user made is exactly as it was.
    for (user, (before, after)) in users.iter().zip(before.iter().zip(&after)) {
        let mine = |snapshot: &[Value], i: usize, key: &str| -> Vec<Value> {
            snapshot[i][key].as_array().unwrap().iter().filter(|v| v.to_string().contains(&user.secret)).cloned().collect()
        };
        assert!(mine(before, 0, "changes").len() >= 5 && mine(before, 1, "items").len() == 1, "the secrets are there to leak: {} {}", mine(before, 0, "changes").len(), before[1]);
        assert_eq!(mine(before, 0, "changes"), mine(after, 0, "changes"), "{}'s library changed", user.user.email);
        assert_eq!(mine(before, 1, "items"), mine(after, 1, "items"), "{}'s rejected edits changed", user.user.email);
        assert_eq!(before[2..], after[2..], "{}'s devices, conflicts or upload changed", user.user.email);
    }
}
