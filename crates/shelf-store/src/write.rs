//! The single library write path, once for every backend: lock → read → plan → write.
//!
//! A backend supplies only primitives inside its own transaction ([`WriteTx`]) and a way to run
//! one attempt in a transaction ([`WriteBackend`]). [`apply`] drives the attempts:
//!
//! 1. Take the user's lock — always the first lock of a library write, on every backend — and
//!    read everything the plan depends on ([`EntityState`]).
//! 2. Plan with the small in-lock merge budget. A merge that needs more gives the lock back
//!    (rollback), is planned outside it with the full budget, and the next attempt writes that plan
//!    only if the state it was made on is still the state under the lock; otherwise it plans again.
//!    The last attempt plans under the lock with the full budget, so the work stays bounded.
//! 3. Write the plan's rows, a change-feed entry per entity, dead letters, the receipt, and the
//!    new version — one transaction, or nothing.

use std::sync::Arc;

use async_trait::async_trait;
use shelf_core::{
    plan_mutation, Attachment, AttachmentWrite, ChangeKind, ChangeOp, Conflict, ConflictField, ConflictWrite, EntityState,
    LibraryMutation, LibraryVersion, Material, MaterialBase, MaterialId, MergeBudget, MutationKind, Plan, PlanError,
    Progress, RejectionCode, UserId, Write,
};
use time::OffsetDateTime;

use crate::types::{Applied, Delivery, Outcome, Receipt, ReceiptKey, ReceiptStatus, Rejection};
use crate::{StoreError, StoreResult};

/// Attempts before a merge is planned under the lock with the full budget.
const ATTEMPTS: usize = 3;

/// What one backend does inside one open write transaction. Implementations run statements
/// only; they decide nothing.
#[allow(async_fn_in_trait)] // Used with concrete types only: each backend's future keeps its own Send-ness.
pub trait WriteTx {
    /// Takes the user's write lock and returns the library version. Every library write calls
    /// this first, so writers of one user always queue on the same lock before touching rows.
    async fn lock_user(&mut self, user: UserId) -> StoreResult<LibraryVersion>;
    async fn material_and_progress(&mut self, user: UserId, id: MaterialId) -> StoreResult<(Option<Material>, Option<Progress>)>;
    /// The material's attachments, or only the one with id `only` (on any material).
    async fn attachments(&mut self, user: UserId, material: MaterialId, only: Option<uuid::Uuid>) -> StoreResult<Vec<Attachment>>;
    /// Whether the material's tombstone is in the change feed.
    async fn tombstone_exists(&mut self, user: UserId, material: MaterialId) -> StoreResult<bool>;
    /// The material's fields as of `version` (its newest revision at or before it).
    async fn merge_base(&mut self, user: UserId, material: MaterialId, version: LibraryVersion) -> StoreResult<Option<MaterialBase>>;
    async fn conflict(&mut self, user: UserId, material: MaterialId, id: uuid::Uuid) -> StoreResult<Option<Conflict>>;
    /// The size of the user's stored blob with this digest, if they hold it.
    async fn stored_blob_size(&mut self, user: UserId, sha256: &str) -> StoreResult<Option<i64>>;
    async fn receipt(&mut self, user: UserId, key: ReceiptKey) -> StoreResult<Option<Receipt>>;
    /// The library version of this device's latest applied mutation of this material.
    async fn own_latest_write(&mut self, user: UserId, key: ReceiptKey, material: MaterialId) -> StoreResult<Option<LibraryVersion>>;

    async fn set_version(&mut self, user: UserId, version: LibraryVersion) -> StoreResult<()>;
    /// Marks the entity as changed at `version` in the feed (its only row there, upserted).
    async fn record_change(&mut self, user: UserId, change: (ChangeKind, uuid::Uuid, ChangeOp), version: LibraryVersion, now: OffsetDateTime) -> StoreResult<()>;
    /// Upserts the material and keeps this state as a revision (a future merge base).
    async fn upsert_material(&mut self, user: UserId, material: &Material) -> StoreResult<()>;
    async fn delete_material(&mut self, user: UserId, id: MaterialId) -> StoreResult<()>;
    async fn upsert_progress(&mut self, user: UserId, progress: &Progress) -> StoreResult<()>;
    /// Both upserts above, for a write that changes a material and its progress; a backend whose
    /// round trips cost more than its statements does them in one.
    async fn upsert_material_and_progress(&mut self, user: UserId, material: &Material, progress: &Progress) -> StoreResult<()> {
        self.upsert_material(user, material).await?;
        self.upsert_progress(user, progress).await
    }
    async fn delete_progress(&mut self, user: UserId, material: MaterialId) -> StoreResult<()>;
    async fn insert_attachment(&mut self, user: UserId, attachment: &Attachment) -> StoreResult<()>;
    async fn delete_attachment(&mut self, user: UserId, id: uuid::Uuid) -> StoreResult<()>;
    async fn insert_conflict(&mut self, user: UserId, material: MaterialId, conflict: &Conflict) -> StoreResult<()>;
    /// Deletes the conflict and returns it.
    async fn take_conflict(&mut self, user: UserId, material: MaterialId, id: uuid::Uuid) -> StoreResult<Option<Conflict>>;
    async fn insert_rejection(&mut self, user: UserId, key: Option<ReceiptKey>, rejection: &Rejection, now: OffsetDateTime) -> StoreResult<()>;
    /// [`StoreError::DuplicateMutation`] if the receipt exists already.
    async fn insert_receipt(&mut self, user: UserId, key: ReceiptKey, material: MaterialId, receipt: &Receipt, now: OffsetDateTime) -> StoreResult<()>;
}

/// One library write to perform.
#[derive(Debug, Clone)]
pub struct Job {
    pub user: UserId,
    pub mutation: LibraryMutation,
    pub now: OffsetDateTime,
    /// Set for mutations from a device's queue: they get receipts, and their rejections are
    /// dead-lettered instead of returned as errors.
    pub delivery: Option<Delivery>,
}

/// A plan made outside the lock, with what it was made from.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub state: EntityState,
    pub mutation: LibraryMutation,
    pub plan: Result<Plan, PlanError>,
}

/// How an attempt ended.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One per attempt, consumed at once.
pub enum Attempt {
    /// Committed (or nothing to commit).
    Done(Outcome),
    /// The merge needs the full budget: plan outside the lock, then try again.
    PlanOutside { state: EntityState, mutation: LibraryMutation },
}

/// Runs one [`attempt`] in one transaction: commits after `Done`, rolls back otherwise.
#[async_trait]
pub trait WriteBackend: Send + Sync {
    async fn attempt(&self, job: Arc<Job>, prepared: Option<Arc<Prepared>>, budget: MergeBudget) -> StoreResult<Attempt>;
}

/// Applies `job` through `backend`: the only way library data is ever written.
pub async fn apply(backend: &dyn WriteBackend, job: Job) -> StoreResult<Outcome> {
    let job = Arc::new(job);
    let mut prepared: Option<Arc<Prepared>> = None;
    for attempt in 1..=ATTEMPTS {
        let budget = if attempt == ATTEMPTS { MergeBudget::FULL } else { MergeBudget::IN_LOCK };
        match backend.attempt(job.clone(), prepared.take(), budget).await? {
            Attempt::Done(outcome) => return Ok(outcome),
            Attempt::PlanOutside { state, mutation } => {
                let now = job.now;
                // CPU work of up to tens of milliseconds: off the async workers, outside any lock.
                let planned = tokio::task::spawn_blocking(move || {
                    let plan = plan_mutation(&state, &mutation, now, MergeBudget::FULL);
                    Prepared { state, mutation, plan }
                })
                .await
                .map_err(StoreError::backend)?;
                prepared = Some(Arc::new(planned));
            }
        }
    }
    Err(StoreError::backend(std::io::Error::other("the full merge budget was deferred (a bug in the write path)")))
}

/// One attempt inside an open transaction (see the module docs).
pub async fn attempt<T: WriteTx + ?Sized>(tx: &mut T, job: &Job, prepared: Option<&Prepared>, budget: MergeBudget) -> StoreResult<Attempt> {
    let user = job.user;
    let current = tx.lock_user(user).await?;
    if let Some(delivery) = &job.delivery {
        if let Some(receipt) = tx.receipt(user, delivery.key).await? {
            return Ok(Attempt::Done(Outcome::Duplicate(receipt)));
        }
    }
    let (mutation, state) = read_state(tx, job, &job.mutation).await?;
    let plan = match prepared {
        Some(p) if p.state == state && p.mutation == mutation => p.plan.clone(),
        _ => match plan_mutation(&state, &mutation, job.now, budget) {
            Err(PlanError::OverBudget) => return Ok(Attempt::PlanOutside { state, mutation }),
            other => other,
        },
    };
    let mut plan = match (plan, &job.delivery) {
        (Ok(plan), _) => plan,
        (Err(error), None) => return Err(StoreError::Plan(error)),
        (Err(error), Some(delivery)) => {
            let rejection = Rejection {
                kind: mutation.kind(),
                material_id: mutation.material_id(),
                data: delivery.data.clone(),
                code: error.rejection_code(),
                message: error.rejection_message(),
            };
            return reject(tx, job, delivery, current, &rejection).await;
        }
    };
    let id = mutation.material_id();
    let changed = !plan.is_noop();
    let version = if changed { current.next() } else { current };
    if changed {
        plan.stamp(version);
        write_plan(tx, user, id, &plan, version, job.now).await?;
    }
    let applied = Applied::from_plan(&plan, &state, version, changed);
    if let Some(delivery) = &job.delivery {
        let receipt = Receipt {
            mutation_id: delivery.key.mutation_id,
            status: if plan.merged { ReceiptStatus::Merged } else { ReceiptStatus::Applied },
            library_version: version,
            code: None,
            message: None,
            conflicts: applied.conflicts.clone(),
        };
        tx.insert_receipt(user, delivery.key, id, &receipt, job.now).await?;
    }
    Ok(Attempt::Done(Outcome::Applied(applied)))
}

async fn reject<T: WriteTx + ?Sized>(tx: &mut T, job: &Job, delivery: &Delivery, current: LibraryVersion, rejection: &Rejection) -> StoreResult<Attempt> {
    tx.insert_rejection(job.user, Some(delivery.key), rejection, job.now).await?;
    let receipt = Receipt {
        mutation_id: delivery.key.mutation_id,
        status: ReceiptStatus::Rejected,
        library_version: current,
        code: Some(rejection.code),
        message: Some(rejection.message.clone()),
        conflicts: Vec::new(),
    };
    tx.insert_receipt(job.user, delivery.key, rejection.material_id, &receipt, job.now).await?;
    Ok(Attempt::Done(Outcome::Rejected(receipt)))
}

/// Everything the plan depends on. A device has always seen its own earlier writes, so the
/// mutation's base version is raised to its own latest write of the material first.
async fn read_state<T: WriteTx + ?Sized>(tx: &mut T, job: &Job, mutation: &LibraryMutation) -> StoreResult<(LibraryMutation, EntityState)> {
    let (user, id) = (job.user, mutation.material_id());
    let mut mutation = mutation.clone();
    let (material, progress) = tx.material_and_progress(user, id).await?;
    if let (Some(delivery), Some(_)) = (&job.delivery, mutation.base_version()) {
        if let Some(own) = tx.own_latest_write(user, delivery.key, id).await? {
            mutation.raise_base_version(own);
        }
    }
    let attachments = match &mutation {
        LibraryMutation::DeleteMaterial { .. } if material.is_some() => tx.attachments(user, id, None).await?,
        LibraryMutation::AddAttachment { attachment, .. } => tx.attachments(user, id, Some(attachment.id)).await?,
        LibraryMutation::RemoveAttachment { attachment_id, .. } => tx.attachments(user, id, Some(*attachment_id)).await?,
        _ => Vec::new(),
    };
    let creates = matches!(mutation, LibraryMutation::CreateMaterial { .. });
    let tombstone = material.is_none() && !creates && tx.tombstone_exists(user, id).await?;
    let base = match (mutation.merge_base_version(), &material) {
        (Some(base), Some(m)) if base < m.version => tx.merge_base(user, id, base).await?,
        _ => None,
    };
    let conflict = match &mutation {
        LibraryMutation::ResolveConflict { conflict_id, .. } if material.is_some() => tx.conflict(user, id, *conflict_id).await?,
        _ => None,
    };
    let blob_size = match &mutation {
        LibraryMutation::AddAttachment { attachment, .. } => tx.stored_blob_size(user, attachment.sha256.as_str()).await?,
        _ => None,
    };
    Ok((mutation, EntityState { material, progress, attachments, tombstone, base, conflict, blob_size }))
}

/// Writes the plan's rows at `version`: children after a created material, before a deleted one.
async fn write_plan<T: WriteTx + ?Sized>(tx: &mut T, user: UserId, id: MaterialId, plan: &Plan, version: LibraryVersion, now: OffsetDateTime) -> StoreResult<()> {
    let change = |kind, entity: uuid::Uuid, op| (kind, entity, op);
    let progress_written = match (&plan.material, &plan.progress) {
        (Write::Upsert(material), Write::Upsert(progress)) => {
            tx.upsert_material_and_progress(user, material, progress).await?;
            true
        }
        (Write::Upsert(material), _) => {
            tx.upsert_material(user, material).await?;
            false
        }
        _ => false,
    };
    if let Write::Upsert(_) = &plan.material {
        tx.record_change(user, change(ChangeKind::Material, id.0, ChangeOp::Upsert), version, now).await?;
    }
    match &plan.progress {
        Write::Unchanged => {}
        Write::Upsert(progress) => {
            if !progress_written {
                tx.upsert_progress(user, progress).await?;
            }
            tx.record_change(user, change(ChangeKind::Progress, id.0, ChangeOp::Upsert), version, now).await?;
        }
        Write::Delete => {
            tx.delete_progress(user, id).await?;
            tx.record_change(user, change(ChangeKind::Progress, id.0, ChangeOp::Delete), version, now).await?;
        }
    }
    for write in &plan.attachments {
        match write {
            AttachmentWrite::Insert(attachment) => {
                tx.insert_attachment(user, attachment).await?;
                tx.record_change(user, change(ChangeKind::Attachment, attachment.id, ChangeOp::Upsert), version, now).await?;
            }
            AttachmentWrite::Delete(attachment) => {
                tx.delete_attachment(user, *attachment).await?;
                tx.record_change(user, change(ChangeKind::Attachment, *attachment, ChangeOp::Delete), version, now).await?;
            }
        }
    }
    for write in &plan.conflicts {
        match write {
            ConflictWrite::Insert(conflict) => tx.insert_conflict(user, id, conflict).await?,
            ConflictWrite::Delete(conflict) => {
                tx.take_conflict(user, id, *conflict).await?;
            }
            ConflictWrite::Fold(conflict) => {
                if let Some(conflict) = tx.take_conflict(user, id, *conflict).await? {
                    tx.insert_rejection(user, None, &folded_conflict(id, &conflict), now).await?;
                }
            }
        }
    }
    if let Some(overridden) = &plan.overridden {
        tx.insert_rejection(user, None, &overridden_material(overridden), now).await?;
    }
    if plan.material == Write::Delete {
        tx.delete_material(user, id).await?;
        tx.record_change(user, change(ChangeKind::Material, id.0, ChangeOp::Delete), version, now).await?;
    }
    tx.set_version(user, version).await
}

/// The oldest conflict of a material with too many, kept as the edit that would restore it.
fn folded_conflict(material: MaterialId, conflict: &Conflict) -> Rejection {
    let field = match conflict.field {
        ConflictField::Title => "title",
        ConflictField::Body => "body",
    };
    Rejection {
        kind: MutationKind::MaterialUpdate,
        material_id: material,
        data: serde_json::json!({ field: conflict.device_value }).to_string(),
        code: RejectionCode::ConflictOverflow,
        message: format!(
            "this material kept more than {} unresolved conflicts; this edit (the oldest) is kept here to restore",
            shelf_core::MAX_CONFLICTS_PER_MATERIAL
        ),
    }
}

/// A material a stale delete won over, kept as the create that would restore it.
fn overridden_material(overridden: &shelf_core::OverriddenMaterial) -> Rejection {
    let m = &overridden.material;
    let mut data = serde_json::json!({"title": m.title, "body": m.body, "tags": m.tags});
    if let Some(p) = &overridden.progress {
        data["progress"] = serde_json::json!({"percentComplete": p.percent_complete, "position": p.position, "completed": p.completed});
    }
    Rejection {
        kind: MutationKind::MaterialCreate,
        material_id: m.id,
        data: data.to_string(),
        code: RejectionCode::Deleted,
        message: "edits made on another device after this device last synced were overridden by its delete; restore them from here".into(),
    }
}
