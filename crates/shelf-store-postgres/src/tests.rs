//! PostgreSQL-only tests: the store contract on a fresh database per test, and the group commit.

use crate::PostgresStore;
use sqlx::Connection;

fn admin_url() -> String {
    std::env::var("SHELF_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `admin` with its database swapped for `name`, keeping any `?options` (e.g. sslmode).
fn database_url(admin: &str, name: &str) -> String {
    let (base, options) = admin.split_once('?').map_or((admin, None), |(base, options)| (base, Some(options)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match options {
        Some(options) => format!("{server}/{name}?{options}"),
        None => format!("{server}/{name}"),
    }
}

/// A database that exists for one test, so tests run in parallel without sharing rows.
struct TestDatabase(String);

impl Drop for TestDatabase {
    /// Best effort: a leftover database is harmless, a panic in `drop` would hide the test's
    /// own failure. The store's pool may still hold connections here, hence `FORCE`; a thread
    /// with its own runtime because `drop` cannot await inside the test's runtime.
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

async fn fresh() -> (PostgresStore, TestDatabase) {
    let admin = admin_url();
    let name = format!("shelf_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL is needed (set SHELF_TEST_POSTGRES_URL)");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    let _ = conn.close().await;
    // Created before connecting, so a failed connect still drops the database.
    let database = TestDatabase(name);
    let store = PostgresStore::connect(&database_url(&admin, &database.0)).await.expect("connect to test database");
    (store, database)
}

shelf_store::contract_tests!(fresh);

/// Group commit (ADR 0012): writers queued behind a held row lock commit as one group once it
/// is released; an attempt the database refuses after its first writes ran rolls back alone,
/// the others keep distinct versions with no gap, and the user's queue is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_commits_once_and_a_failing_attempt_rolls_back_alone() {
    use shelf_core::{Email, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialTitle, Position, ProgressUpdate, Tags};
    use shelf_store::{Store, StoreError};
    let (store, _database) = fresh().await;
    // A failure no plan foresees: the progress row is refused after the material row and its
    // change entry were written in the same attempt.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_progress() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.position = 'refuse' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_progress BEFORE INSERT ON progress FOR EACH ROW EXECUTE FUNCTION refuse_progress();",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let now = shelf_core::truncate_to_micros(time::OffsetDateTime::now_utc());
    let user = store.create_user(&Email::parse("group@example.com").unwrap(), "hash", now).await.unwrap();
    let create = |position: &str| LibraryMutation::CreateMaterial {
        id: MaterialId::new(),
        title: MaterialTitle::parse("grouped").unwrap(),
        body: MaterialBody::parse("body").unwrap(),
        tags: Tags::parse(&["t"]).unwrap(),
        progress: Some(ProgressUpdate { position: Some(Position::parse(position).unwrap()), ..Default::default() }),
    };
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE").bind(user.0).execute(&mut *holder).await.unwrap();
    let store = std::sync::Arc::new(store);
    let spawn = |position: &'static str| {
        let (store, mutation) = (store.clone(), create(position));
        tokio::spawn(async move { store.apply(user, &mutation, now).await })
    };
    // The first writer's group (itself alone) waits on the held lock; the next 19 queue behind it.
    let mut tasks = vec![spawn("first")];
    while !matches!(store.writer_stats(), crate::WriterStats { queued_users: 1, waiting: 0, .. }) {
        tokio::task::yield_now().await;
    }
    tasks.extend((1..20).map(|i| spawn(if i == 7 { "refuse" } else { "p" })));
    while store.writer_stats().waiting < 19 {
        tokio::task::yield_now().await;
    }
    holder.commit().await.unwrap();
    let mut versions = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(applied) => versions.push(applied.library_version.0),
            Err(StoreError::Backend(error)) if i == 7 => assert!(format!("{error:?}").contains("refused by the test"), "{error:?}"),
            other => panic!("writer {i}: {other:?}"),
        }
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..21).collect::<Vec<_>>());
    assert_eq!(store.library_version(user).await.unwrap(), LibraryVersion(20));
    assert_eq!(store.list_materials(user, None, 100).await.unwrap().len(), 19, "the refused write left no material");
    assert_eq!(store.changes_since(user, LibraryVersion(0), 100, u64::MAX).await.unwrap().changes.len(), 38);
    let stats = store.writer_stats();
    assert_eq!((stats.commits, stats.committed_attempts), (2, 20), "one commit alone, then one for the 19");
    // The user's task removes the queue just after answering: no queue is kept for an idle user.
    while store.writer_stats().queued_users > 0 {
        tokio::task::yield_now().await;
    }
}

/// The change entries a group keeps until its commit (ADR 0012): an entity written twice in a
/// group ends with one entry, the last; a material deleted earlier in the group is known as
/// deleted to a later attempt before anything reached the table; a refused attempt's entries
/// are forgotten with its savepoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_keeps_one_change_entry_per_entity_and_sees_its_own_deletes() {
    use shelf_core::{
        ChangeKind, ChangeOp, Email, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialTitle, PlanError, Tags,
    };
    use shelf_store::{Store, StoreError};
    let (store, _database) = fresh().await;
    let now = shelf_core::truncate_to_micros(time::OffsetDateTime::now_utc());
    let user = store.create_user(&Email::parse("entries@example.com").unwrap(), "hash", now).await.unwrap();
    let create = |id| LibraryMutation::CreateMaterial {
        id,
        title: MaterialTitle::parse("kept").unwrap(),
        body: MaterialBody::parse("body").unwrap(),
        tags: Tags::parse(&["t"]).unwrap(),
        progress: None,
    };
    let add_tag = |id, tag: &str| LibraryMutation::AddTags { id, tags: Tags::parse(&[tag]).unwrap() };
    let (a, b) = (MaterialId::new(), MaterialId::new());
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE").bind(user.0).execute(&mut *holder).await.unwrap();
    let store = std::sync::Arc::new(store);
    let spawn = |mutation: LibraryMutation| {
        let store = store.clone();
        tokio::spawn(async move { store.apply(user, &mutation, now).await })
    };
    // The create of `a` is a group alone, waiting on the held lock; the rest queue behind it in
    // this order (each is queued before the next is sent), and run as one group.
    let mut tasks = vec![spawn(create(a))];
    while !matches!(store.writer_stats(), super::WriterStats { queued_users: 1, waiting: 0, .. }) {
        tokio::task::yield_now().await;
    }
    let rest =
        [add_tag(a, "x"), add_tag(a, "y"), LibraryMutation::DeleteMaterial { id: a, base_version: None }, add_tag(a, "z"), create(b)];
    for (queued, mutation) in rest.into_iter().enumerate() {
        tasks.push(spawn(mutation));
        while store.writer_stats().waiting < queued + 1 {
            tokio::task::yield_now().await;
        }
    }
    holder.commit().await.unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().map(|applied| applied.library_version.0));
    }
    let refused = results.remove(4);
    assert!(matches!(refused, Err(StoreError::Plan(PlanError::MaterialDeleted))), "{refused:?}");
    assert_eq!(results.into_iter().collect::<Result<Vec<_>, _>>().unwrap(), vec![2, 3, 4, 5, 6], "a new library starts at version 1");
    assert_eq!(store.library_version(user).await.unwrap(), LibraryVersion(6));
    let page = store.changes_since(user, LibraryVersion(0), 100, u64::MAX).await.unwrap();
    let entries: Vec<_> = page.changes.iter().map(|c| (c.kind, c.id, c.op, c.version.0)).collect();
    assert_eq!(entries, vec![(ChangeKind::Material, a, ChangeOp::Delete, 5), (ChangeKind::Material, b, ChangeOp::Upsert, 6)]);
    let stats = store.writer_stats();
    assert_eq!((stats.commits, stats.committed_attempts), (2, 6), "one commit alone, then one for the five");
}
