//! The accept loop: every connection goes to hyper, except an event stream opened as the first
//! request of a connection, which is served by [`lean`] (ADR 0009).
//!
//! Why not `axum::serve` alone: hyper keeps two 8 KiB buffers per HTTP/1 connection for its
//! whole life (the read buffer and the response-head buffer), which is most of what an idle
//! event stream costs. A stream sends a few hundred bytes per event and reads nothing after its
//! request, so after routing it needs neither. The stream still goes through the whole router
//! (authentication, origin checks, request id, metrics, logs); only the bytes on the wire are
//! written by [`lean`] instead of hyper.
//!
//! Shutdown works as in `axum::serve`: stop accepting, ask hyper connections to finish their
//! in-flight requests, and wait for every connection task; event streams end by themselves
//! (the stream hub's shutdown signal sends each a retry hint).

mod lean;
mod prefixed;
mod sniff;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use self::prefixed::Prefixed;
use self::sniff::Sniffed;

/// Connections the kernel holds for the accept loop (capped by `net.core.somaxconn`, 4096 by
/// default). tokio's `TcpListener::bind` asks for 1,024: when every client reconnects at once
/// (a restart, a network coming back), 10,000 connections in a second overflowed it, and each
/// dropped SYN waited for the client's one-second retransmission (`TcpExtListenDrops`; opening
/// 10,000 streams took 1.7–2.0 s in some runs and 1.0–1.2 s in others).
pub const LISTEN_BACKLOG: u32 = 8192;

/// Binds `address` (`host:port`; the first address it resolves to) with [`LISTEN_BACKLOG`].
pub async fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for address in tokio::net::lookup_host(address).await? {
        let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        // As `TcpListener::bind` does: a restarted server binds while old connections linger.
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address resolves to nothing")))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains (see the module doc).
pub async fn run(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    // Dropping `stop_rx` tells every connection to finish; each holds a `done_rx` clone, so
    // `done_tx.closed()` resolves once the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Events are small writes that must leave at once, not wait for the previous ACK.
        let _ = socket.set_nodelay(true);
        let (router, stop_tx, done_rx) = (router.clone(), stop_tx.clone(), done_rx.clone());
        tokio::spawn(async move {
            connection(socket, peer, router, stop_tx).await;
            drop(done_rx);
        });
    }
    drop(listener);
    drop(stop_rx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Accept errors are per connection (the peer went away) or a resource limit (out of file
/// descriptors): neither may stop the server; on the second kind, back off briefly.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        tracing::warn!(%error, "accept failed; retrying in a second");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn connection(mut socket: TcpStream, peer: SocketAddr, router: Router, stop: watch::Sender<()>) {
    let sniffed = tokio::select! {
        sniffed = sniff::first_request(&mut socket) => sniffed,
        // An idle connection that has sent nothing yet is simply closed at shutdown.
        () = stop.closed() => return,
    };
    match sniffed {
        Sniffed::Closed => {}
        Sniffed::EventStream(request) => lean::serve(socket, request, peer, router).await,
        Sniffed::Other(prefix) => hyper_connection(Prefixed::new(prefix, socket), peer, router, stop).await,
    }
}

/// Everything else: hyper's HTTP/1 and HTTP/2 (prior knowledge), with upgrades for WebSocket.
async fn hyper_connection(io: Prefixed, peer: SocketAddr, router: Router, stop: watch::Sender<()>) {
    let service = router.map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.map(axum::body::Body::new)
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let mut conn = std::pin::pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service)));
    let mut stopping = std::pin::pin!(stop.closed());
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
                return;
            }
            () = &mut stopping, if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A test: a failed unwrap is a failed test.

    /// `--listen` takes a host name as well as an address, and a burst of connections larger
    /// than tokio's default backlog (1,024) is held by the kernel until accepted, none refused.
    #[tokio::test]
    async fn listens_on_a_name_and_holds_a_burst_of_connections() {
        let listener = super::listen("localhost:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        assert!(address.ip().is_loopback());
        let connects = (0..1500).map(|_| tokio::net::TcpStream::connect(address));
        let connected = futures::future::join_all(connects).await;
        assert!(connected.iter().all(Result::is_ok), "every connection is held for the accept loop");
        for _ in 0..1500 {
            listener.accept().await.unwrap();
        }
        assert!(super::listen("127.0.0.1:not-a-port").await.is_err());
    }
}
