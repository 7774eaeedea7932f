//! [`Client`]: one device's replica and its server connection. Local reads and edits never touch
//! the network; `sync`, `follow` and the online calls do.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;
use shelf_api::{ConflictResolveData, ConflictView, DeviceView, LoginResponse, MaterialCreateData, RegisterResponse, ResolveConflictRequest};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{ClientError, ClientResult};
use crate::http::Http;
use crate::mutation::LocalEdit;
use crate::outbox::RejectedEdit;
use crate::replica::{LocalMaterial, Replica};
use crate::status::{Status, SyncOutcome};

/// A device: its replica and (when signed in) its session with the server.
pub struct Client {
    replica: Arc<Mutex<Replica>>,
    http: Http,
    status: watch::Sender<Option<Status>>,
}

impl Client {
    pub fn new(replica: Replica, http: Http) -> Self {
        Self { replica: Arc::new(Mutex::new(replica)), http, status: watch::channel(None).0 }
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Runs `work` on the replica on a blocking thread (SQLite calls block, and an app's async
    /// runtime must not).
    pub(crate) async fn with_replica<T, F>(&self, work: F) -> ClientResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Replica) -> ClientResult<T> + Send + 'static,
    {
        let replica = self.replica.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock rolled its transaction back; the data is consistent.
            let mut replica = replica.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut replica)
        })
        .await
        .map_err(|e| ClientError::Protocol(format!("replica task failed: {e}")))?
    }

    pub async fn materials(&self) -> ClientResult<Vec<LocalMaterial>> {
        self.with_replica(|r| r.materials()).await
    }

    pub async fn material(&self, id: Uuid) -> ClientResult<LocalMaterial> {
        self.with_replica(move |r| r.material(id)).await?.ok_or(ClientError::NotFound { what: "material", id: id.to_string() })
    }

    /// Creates a material locally (queued for the server) and returns its new id.
    pub async fn create(&self, data: MaterialCreateData) -> ClientResult<Uuid> {
        let id = Uuid::now_v7();
        self.edit(id, LocalEdit::Create(data)).await?;
        Ok(id)
    }

    /// Records an edit in the replica and the outbox in one transaction; returns its mutation id.
    /// Works offline; the edit reaches the server with the next [`Client::sync`].
    pub async fn edit(&self, id: Uuid, edit: LocalEdit) -> ClientResult<i64> {
        let edit = edit.validated()?;
        let at = shelf_core::truncate_to_micros(OffsetDateTime::now_utc());
        let mutation_id = self.with_replica(move |r| r.record_edit(id, edit, at)).await?;
        self.publish_status().await;
        Ok(mutation_id)
    }

    /// Records many edits in one local transaction (an import); each is validated first.
    pub async fn edit_many(&self, edits: Vec<(Uuid, LocalEdit)>) -> ClientResult<Vec<i64>> {
        let edits = edits.into_iter().map(|(id, edit)| Ok((id, edit.validated()?))).collect::<ClientResult<Vec<_>>>()?;
        let at = shelf_core::truncate_to_micros(OffsetDateTime::now_utc());
        let mutation_ids = self.with_replica(move |r| r.record_edits(edits, at)).await?;
        self.publish_status().await;
        Ok(mutation_ids)
    }

    pub async fn rejected(&self) -> ClientResult<Vec<RejectedEdit>> {
        self.with_replica(|r| r.rejected_edits()).await
    }

    /// The edit's fate if the server refused it (after a sync).
    pub async fn rejection(&self, mutation_id: i64) -> ClientResult<Option<RejectedEdit>> {
        Ok(self.rejected().await?.into_iter().find(|r| r.mutation_id == mutation_id))
    }

    pub async fn status(&self) -> ClientResult<Status> {
        self.with_replica(|r| r.status()).await
    }

    /// Every status change of this client (`None` until the first one).
    pub fn watch_status(&self) -> watch::Receiver<Option<Status>> {
        self.status.subscribe()
    }

    pub(crate) async fn publish_status(&self) {
        // Watchers are told of what can be read; a replica that cannot be read fails the
        // operation itself, which the caller sees.
        if let Ok(status) = self.status().await {
            self.status.send_replace(Some(status));
        }
    }

    pub(crate) async fn record_start(&self) -> ClientResult<()> {
        self.with_replica(|r| r.record_sync_start()).await?;
        self.publish_status().await;
        Ok(())
    }

    pub(crate) async fn record_outcome<T>(&self, result: &ClientResult<T>) -> ClientResult<()> {
        self.record(SyncOutcome::of(result)).await
    }

    pub(crate) async fn record_error(&self, error: &ClientError) -> ClientResult<()> {
        self.record(SyncOutcome::of_error(error)).await
    }

    async fn record(&self, outcome: SyncOutcome) -> ClientResult<()> {
        let at = OffsetDateTime::now_utc();
        self.with_replica(move |r| r.record_sync_outcome(&outcome, at)).await?;
        self.publish_status().await;
        Ok(())
    }

    /// Fails fast when the server already said this device was signed out.
    pub(crate) async fn ensure_signed_in(&self) -> ClientResult<()> {
        if !self.http.has_token() {
            return Err(ClientError::NotSignedIn);
        }
        if self.with_replica(|r| r.signed_out()).await? {
            return Err(ClientError::SignedOut);
        }
        Ok(())
    }

    /// Marks the device signed out when `result` says so, then hands `result` back.
    pub(crate) async fn note<T>(&self, result: ClientResult<T>) -> ClientResult<T> {
        if let Err(error @ ClientError::SignedOut) = &result {
            self.record_error(error).await?;
        }
        result
    }

    /// Ends this device's session on the server.
    pub async fn logout(&self) -> ClientResult<()> {
        end_session(&self.http).await
    }

    pub async fn devices(&self) -> ClientResult<Vec<DeviceView>> {
        self.ensure_signed_in().await?;
        self.note(self.http.json(self.http.request(Method::GET, "/api/devices")).await).await
    }

    pub async fn revoke_device(&self, device_id: Uuid) -> ClientResult<()> {
        self.ensure_signed_in().await?;
        let request = self.http.request(Method::DELETE, &format!("/api/devices/{device_id}"));
        self.note(self.http.send(request).await.map(drop)).await
    }

    /// The material's unresolved conflicts, fresh from the server.
    pub async fn conflicts(&self, material_id: Uuid) -> ClientResult<Vec<ConflictView>> {
        self.ensure_signed_in().await?;
        let request = self.http.request(Method::GET, &format!("/api/materials/{material_id}/conflicts"));
        self.note(self.http.json(request).await).await
    }

    /// Settles a conflict (keep the server's value, take the device's, or write a new one)
    /// through the outbox, so it works offline; returns the edit's mutation id.
    pub async fn resolve_conflict(&self, material_id: Uuid, conflict_id: Uuid, resolution: ResolveConflictRequest) -> ClientResult<i64> {
        let data = match resolution {
            ResolveConflictRequest::Server => ConflictResolveData::Server { conflict_id },
            ResolveConflictRequest::Device => ConflictResolveData::Device { conflict_id },
            ResolveConflictRequest::Custom { value } => ConflictResolveData::Custom { conflict_id, value },
        };
        self.edit(material_id, LocalEdit::ResolveConflict(data)).await
    }
}

/// Creates an account.
pub async fn register(server: &str, email: &str, password: &str) -> ClientResult<RegisterResponse> {
    let http = Http::new(server, None)?;
    let request = http.request(Method::POST, "/api/auth/register").json(&json!({"email": email, "password": password}));
    http.json(request).await
}

/// Starts a device session; the caller keeps the token.
pub async fn login(server: &str, email: &str, password: &str, device_name: Option<&str>) -> ClientResult<LoginResponse> {
    let http = Http::new(server, None)?;
    let body = json!({"email": email, "password": password, "deviceName": device_name});
    http.json(http.request(Method::POST, "/api/auth/login").json(&body)).await
}

/// Ends the session of `token` on the server.
pub async fn logout(server: &str, token: &str) -> ClientResult<()> {
    end_session(&Http::new(server, Some(token.to_owned()))?).await
}

async fn end_session(http: &Http) -> ClientResult<()> {
    match http.send(http.request(Method::POST, "/api/auth/logout")).await {
        // Already signed out: the goal is reached.
        Err(ClientError::SignedOut) => Ok(()),
        other => other.map(drop),
    }
}
