#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for many writers of one user at once: backends may commit such writers
//! together (SQLite's writer thread, PostgreSQL's per-user groups), and each must still come out
//! as if it had committed alone.

use std::sync::Arc;

use shelf_core::{
    DeviceId, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialPatch,
    MaterialTitle, PlanError, ProgressUpdate, Tags,
};

use crate::contract::{now, user};
use crate::{Delivery, Outcome, ReceiptKey, ReceiptStatus, Store, StoreError};

fn create(id: MaterialId, title: &str) -> LibraryMutation {
    LibraryMutation::CreateMaterial {
        id,
        title: MaterialTitle::parse(title).unwrap(),
        body: MaterialBody::parse("body").unwrap(),
        tags: Tags::parse(&["t"]).unwrap(),
        progress: Some(ProgressUpdate {
            study_seconds_delta: 1,
            ..Default::default()
        }),
    }
}

/// What one writer sent, by its index.
#[derive(Clone, Copy)]
enum Sent {
    /// A create of an id that exists: fails with a plan error, writes nothing.
    Fails,
    /// A delivered edit of a material that does not exist: dead-lettered with its receipt.
    Rejected,
    /// One of two deliveries of the same create (same receipt key): one applies, one is a
    /// duplicate with the same receipt.
    Twice(usize),
    /// A plain create.
    Plain,
}

fn sent(i: usize) -> Sent {
    match i % 8 {
        0 => Sent::Fails,
        1 => Sent::Rejected,
        2 | 3 => Sent::Twice(i / 8),
        _ => Sent::Plain,
    }
}

const WRITERS: usize = 160;

/// LV4/LV5/SY9 with 160 writers of one user at once: every acknowledged write is stored at its own
/// version and the versions have no gap; each receipt is the one answered; failing and rejected
/// writes among them leave nothing behind and fail none of the others.
pub async fn lv4_many_writers_of_one_user_each_keep_their_own_version(store: Arc<dyn Store>) {
    let u = user(store.as_ref()).await;
    let taken = MaterialId::new();
    store
        .apply(u, &create(taken, "taken"), now())
        .await
        .unwrap(); // v2
    let device = DeviceId::new();
    let twice: Vec<MaterialId> = (0..WRITERS / 8).map(|_| MaterialId::new()).collect();
    let tasks = (0..WRITERS).map(|i| {
        let (store, id) = (
            store.clone(),
            twice.get(i / 8).copied().unwrap_or_else(MaterialId::new),
        );
        tokio::spawn(async move {
            let key = |n: usize| ReceiptKey {
                device,
                mutation_id: n as i64,
            };
            let delivery = |n: usize| Delivery {
                key: key(n),
                data: format!("{{\"n\":{n}}}"),
            };
            match sent(i) {
                Sent::Fails => store
                    .apply(u, &create(taken, &format!("again {i}")), now())
                    .await
                    .map(Outcome::Applied),
                Sent::Rejected => {
                    let patch = MaterialPatch {
                        title: Some(MaterialTitle::parse("nowhere").unwrap()),
                        ..Default::default()
                    };
                    let edit = LibraryMutation::UpdateMaterial {
                        id: MaterialId::new(),
                        patch,
                        progress: None,
                        base_version: None,
                        on_conflict: shelf_core::OnConflict::Record,
                    };
                    store.apply_delivered(u, &edit, now(), delivery(i)).await
                }
                Sent::Twice(pair) => {
                    store
                        .apply_delivered(
                            u,
                            &create(id, &format!("twice {pair}")),
                            now(),
                            delivery(WRITERS + pair),
                        )
                        .await
                }
                Sent::Plain => store
                    .apply(u, &create(MaterialId::new(), &format!("plain {i}")), now())
                    .await
                    .map(Outcome::Applied),
            }
        })
    });
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();

    let mut versions = Vec::new();
    let mut twice_receipts = vec![Vec::new(); twice.len()];
    for (i, result) in results.into_iter().enumerate() {
        match (sent(i), result) {
            (Sent::Fails, Err(StoreError::Plan(PlanError::MaterialExists))) => {}
            (Sent::Rejected, Ok(Outcome::Rejected(receipt))) => {
                assert_eq!(receipt.status, ReceiptStatus::Rejected);
                let stored = store
                    .receipt(
                        u,
                        ReceiptKey {
                            device,
                            mutation_id: i as i64,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    stored,
                    Some(receipt),
                    "writer {i}: the receipt answered is the one stored"
                );
            }
            (Sent::Plain, Ok(Outcome::Applied(applied))) => {
                let material = applied.material.unwrap();
                assert_eq!(
                    (material.version, material.title.as_str()),
                    (applied.library_version, format!("plain {i}").as_str())
                );
                let (stored, progress) = store.material(u, material.id).await.unwrap().unwrap();
                assert_eq!(
                    (stored, progress.unwrap().version),
                    (material, applied.library_version),
                    "writer {i} is stored"
                );
                versions.push(applied.library_version.0);
            }
            (Sent::Twice(pair), Ok(Outcome::Applied(applied))) => {
                versions.push(applied.library_version.0);
                twice_receipts[pair].push((ReceiptStatus::Applied, applied.library_version));
            }
            (Sent::Twice(pair), Ok(Outcome::Duplicate(receipt))) => {
                twice_receipts[pair].push((receipt.status, receipt.library_version))
            }
            (_, other) => panic!("writer {i}: unexpected {other:?}"),
        }
    }
    for (pair, answers) in twice_receipts.iter().enumerate() {
        let applied = answers
            .iter()
            .find(|(status, _)| *status == ReceiptStatus::Applied)
            .map(|(_, v)| *v);
        assert_eq!(answers.len(), 2, "pair {pair}");
        assert!(
            answers.iter().all(|(_, v)| Some(*v) == applied),
            "pair {pair}: one applied, one duplicate of it: {answers:?}"
        );
        let stored = store
            .receipt(
                u,
                ReceiptKey {
                    device,
                    mutation_id: (WRITERS + pair) as i64,
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.status, Some(stored.library_version)),
            (ReceiptStatus::Applied, applied)
        );
        assert_eq!(
            store
                .material(u, twice[pair])
                .await
                .unwrap()
                .unwrap()
                .0
                .version,
            stored.library_version
        );
    }
    versions.sort_unstable();
    let applied = versions.len() as i64;
    assert_eq!(
        applied,
        (WRITERS / 8 * 4 + WRITERS / 8) as i64,
        "every plain create and one of each pair applied"
    );
    assert_eq!(
        versions,
        (3..3 + applied).collect::<Vec<_>>(),
        "distinct versions, no gap"
    );
    assert_eq!(
        store.library_version(u).await.unwrap(),
        LibraryVersion(2 + applied)
    );
    assert_eq!(
        store.list_materials(u, None, 1000).await.unwrap().len() as i64,
        1 + applied,
        "failed writes left nothing"
    );
    let page = store
        .changes_since(u, LibraryVersion(2), 1000, u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        page.changes.len() as i64,
        2 * applied,
        "a material and a progress entry per applied write"
    );
    assert!(page
        .changes
        .iter()
        .all(|c| versions.binary_search(&c.version.0).is_ok()));
}
