//! Fan-out through Redis pub/sub.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use shelf_bus::{decode, encode, BusError, BusHealth, LocalChannels, Outbox, Recovery, RemoteBus, SharedVersionSource};

/// The pub/sub channel every instance subscribes to; payloads as `shelf_bus::encode` writes them
/// (`"<user uuid> <version>"` or `"revoked <device uuid>"`).
pub const CHANNEL: &str = "shelf:library-version";
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// Fan-out through Redis pub/sub.
pub struct RedisBus;

impl RedisBus {
    /// Connects the publisher and the subscriber; fails if Redis cannot be reached now. Later
    /// outages degrade to polling the database until Redis is back.
    pub async fn connect(url: &str, source: SharedVersionSource, poll_interval: Duration) -> Result<RemoteBus, BusError> {
        let failed = |e: redis::RedisError| BusError::Connection(e.to_string());
        let client = redis::Client::open(url).map_err(failed)?;
        let subscriber = subscribe(&client).await.map_err(failed)?;
        let publisher = redis::aio::ConnectionManager::new(client.clone()).await.map_err(failed)?;
        let recovery = Recovery::new(Arc::new(LocalChannels::default()), source, poll_interval);
        let subscriber = subscribe_loop(client, subscriber, recovery.clone());
        Ok(RemoteBus::start("redis", recovery, |pending| publish_loop(publisher, pending), subscriber))
    }
}

async fn subscribe(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    Ok(pubsub)
}

async fn publish_loop(mut connection: redis::aio::ConnectionManager, mut pending: Outbox) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, 512).await > 0 {
        let mut pipe = redis::pipe();
        for announcement in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(CHANNEL).arg(encode(&announcement)).ignore();
        }
        match tokio::time::timeout(PUBLISH_TIMEOUT, pipe.query_async::<()>(&mut connection)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "PUBLISH failed"),
            Err(_) => tracing::warn!("PUBLISH timed out"),
        }
    }
}

async fn subscribe_loop(client: redis::Client, mut subscriber: redis::aio::PubSub, recovery: Arc<Recovery>) {
    loop {
        {
            let mut messages = subscriber.on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else { continue };
                if let Some(announcement) = decode(&payload) {
                    recovery.receive(announcement);
                }
            }
        }
        recovery.set_health(BusHealth::Degraded("Redis subscription lost".into()));
        subscriber = recovery.poll_until(reconnect(&client, &recovery)).await;
        recovery.set_health(BusHealth::Healthy);
        recovery.catch_up().await;
    }
}

async fn reconnect(client: &redis::Client, recovery: &Recovery) -> redis::aio::PubSub {
    let mut backoff = Duration::from_millis(100);
    loop {
        match subscribe(client).await {
            Ok(subscriber) => return subscriber,
            Err(error) => {
                recovery.set_health(BusHealth::Degraded(format!("Redis unavailable: {error}")));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Duration;

    use shelf_bus::contract::NoVersions;
    use shelf_bus::ChangeBus;

    /// A private redis-server on a free port, stopped with the test.
    struct PrivateRedis(Child);

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            // Best effort: the process may already be gone; the test's result is what matters.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn two_instances() -> (Arc<dyn ChangeBus>, Arc<dyn ChangeBus>, PrivateRedis) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services installs it)");
        let guard = PrivateRedis(child);
        let url = format!("redis://127.0.0.1:{port}");
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let open = || super::RedisBus::connect(&url, Arc::new(NoVersions), Duration::from_millis(100));
        let (one, two) = (open().await.expect("redis-server reachable"), open().await.expect("redis-server reachable"));
        (Arc::new(one), Arc::new(two), guard)
    }

    shelf_bus::bus_contract_tests!(two_instances);
}
