//! Fan-out through PostgreSQL LISTEN/NOTIFY: no extra service when PostgreSQL is already there.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;

use shelf_bus::{decode, encode, BusError, BusHealth, LocalChannels, Outbox, Recovery, RemoteBus, SharedVersionSource};

/// The NOTIFY channel every instance listens on; payloads as `shelf_bus::encode` writes them
/// (`"<user uuid> <version>"` or `"revoked <device uuid>"`).
pub const CHANNEL: &str = "shelf_library_version";
/// `application_name` of the LISTEN connection, so operators (and tests) can find it.
pub const LISTENER_APPLICATION_NAME: &str = "shelf-bus-listener";

/// Fan-out through PostgreSQL LISTEN/NOTIFY.
pub struct PostgresBus;

impl PostgresBus {
    /// Connects the publisher and the listener; fails if PostgreSQL cannot be reached now.
    /// Later connection losses are recovered from in the background.
    pub async fn connect(url: &str, source: SharedVersionSource, poll_interval: Duration) -> Result<RemoteBus, BusError> {
        let failed = |e: sqlx::Error| BusError::Connection(e.to_string());
        let options = PgConnectOptions::from_str(url).map_err(failed)?;
        let publisher = PgPoolOptions::new().max_connections(2).connect_with(options.clone()).await.map_err(failed)?;
        let listener = listen(&options).await.map_err(failed)?;
        let recovery = Recovery::new(Arc::new(LocalChannels::default()), source, poll_interval);
        let subscriber = listen_loop(options, listener, recovery.clone());
        Ok(RemoteBus::start("postgres", recovery, |pending| publish_loop(publisher, pending), subscriber))
    }
}

async fn listen(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone().application_name(LISTENER_APPLICATION_NAME))
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Sends queued announcements, several per round trip when they pile up.
async fn publish_loop(pool: PgPool, mut pending: Outbox) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, 512).await > 0 {
        let payloads: Vec<String> = batch.drain(..).map(|announcement| encode(&announcement)).collect();
        let sent = sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            // Other instances recover by polling/catching up once their connection is back.
            tracing::warn!(%error, lost = payloads.len(), "NOTIFY failed");
        }
    }
}

async fn listen_loop(options: PgConnectOptions, mut listener: PgListener, recovery: Arc<Recovery>) {
    loop {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(announcement) = decode(notification.payload()) {
                        recovery.receive(announcement);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection failed");
                    break;
                }
            }
        }
        recovery.set_health(BusHealth::Degraded("PostgreSQL LISTEN connection lost".into()));
        listener = recovery.poll_until(reconnect(&options, &recovery)).await;
        recovery.set_health(BusHealth::Healthy);
        // Announcements made while we were away are lost; read what they would have said.
        recovery.catch_up().await;
    }
}

async fn reconnect(options: &PgConnectOptions, recovery: &Recovery) -> PgListener {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen(options).await {
            Ok(listener) => return listener,
            Err(error) => {
                recovery.set_health(BusHealth::Degraded(format!("PostgreSQL LISTEN unavailable: {error}")));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use shelf_bus::contract::NoVersions;
    use shelf_bus::ChangeBus;

    /// Two buses on one database, as two server instances would have them. NOTIFY is per
    /// database; tests use random user ids, so they do not hear each other.
    async fn two_instances() -> (Arc<dyn ChangeBus>, Arc<dyn ChangeBus>, ()) {
        let url = std::env::var("SHELF_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let open = || super::PostgresBus::connect(&url, Arc::new(NoVersions), Duration::from_millis(100));
        let (one, two) = (open().await.expect("PostgreSQL reachable"), open().await.expect("PostgreSQL reachable"));
        (Arc::new(one), Arc::new(two), ())
    }

    shelf_bus::bus_contract_tests!(two_instances);
}
