//! Serves one event stream on a connection that hyper never saw (see the module doc of
//! `serve`): the request goes through the router like any other, and the response is written
//! here — the head with the first event, then each event as an HTTP/1.1 chunk, straight to the
//! socket.
//!
//! What a stream holds while idle is its response body (the stream state machine), the socket,
//! and 16 bytes to notice the client closing; no read or write buffer lives between events.
//! Every response here says `connection: close`: the connection ends with its one response.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, response, Request};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

pub(super) async fn serve(mut socket: TcpStream, request: Request<()>, peer: SocketAddr, router: Router) {
    let mut request = request.map(|()| Body::empty());
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, mut body) = response.into_parts();
    let length = http_body::Body::size_hint(&body).exact();
    let mut head = response_head(&parts, length).into_bytes();
    match length {
        Some(_) => {
            if socket.write_all(&head).await.is_err() {
                return;
            }
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    if socket.write_all(&data).await.is_err() {
                        return;
                    }
                }
            }
        }
        None => {
            // A stream's first event (the current version) is made at once: it leaves with the
            // head in one write, which saves a send and a wake-up of the client per stream.
            let first = body.frame().await;
            let ended = match first {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref().filter(|data| !data.is_empty()) {
                        push_chunk(&mut head, data);
                    }
                    false
                }
                // The head goes out, then the connection ends without the last chunk.
                Some(Err(_)) => true,
                None => {
                    head.extend_from_slice(LAST_CHUNK);
                    true
                }
            };
            if socket.write_all(&head).await.is_err() {
                return;
            }
            drop(head); // not held for the stream's life
            if !ended {
                stream_chunks(&mut socket, body).await;
            }
        }
    }
    let _ = socket.shutdown().await; // a peer already gone needs no goodbye
}

/// The chunk that ends a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes each body frame as a chunk until the body ends or the client goes away.
async fn stream_chunks(socket: &mut TcpStream, mut body: Body) {
    let (mut reader, mut writer) = socket.split();
    // The client sends nothing after its request; a read returning means it closed (or is
    // sending bytes nobody asked for, which are dropped).
    let mut scratch = [0u8; 16];
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    if !data.is_empty() && write_chunk(&mut writer, &data).await.is_err() {
                        return;
                    }
                }
                // Ended without the last chunk: the client sees a broken stream, as with hyper.
                Some(Err(_)) => return,
                None => {
                    let _ = writer.write_all(LAST_CHUNK).await; // a client gone has it all
                    return;
                }
            },
            read = reader.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// One chunk in one write: size line, data, CRLF.
async fn write_chunk(writer: &mut (impl AsyncWrite + Unpin), data: &Bytes) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(data.len() + 12);
    push_chunk(&mut chunk, data);
    writer.write_all(&chunk).await
}

/// Appends `data` as one chunk: its size in hex, CRLF, the data, CRLF.
fn push_chunk(buffer: &mut Vec<u8>, data: &[u8]) {
    let _ = write!(buffer, "{:x}\r\n", data.len()); // a Vec: infallible
    buffer.extend_from_slice(data);
    buffer.extend_from_slice(b"\r\n");
}

/// The status line and headers, with the framing this writer uses.
fn response_head(parts: &response::Parts, length: Option<u64>) -> String {
    let status = parts.status;
    let mut head = String::with_capacity(512);
    let _ = write!(head, "HTTP/1.1 {} {}\r\n", status.as_str(), status.canonical_reason().unwrap_or("")); // String: infallible
    for (name, value) in &parts.headers {
        if matches!(*name, header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::CONNECTION | header::DATE) {
            continue;
        }
        // Header values from the router are visible ASCII (they came from `HeaderValue`s this
        // server made or copied); anything else is left out rather than sent garbled.
        let Ok(value) = value.to_str() else { continue };
        let _ = write!(head, "{name}: {value}\r\n"); // String: infallible
    }
    // Writing to a String cannot fail.
    let _ = write!(head, "date: {}\r\nconnection: close\r\n", httpdate::fmt_http_date(std::time::SystemTime::now()));
    match length {
        Some(length) => {
            let _ = write!(head, "content-length: {length}\r\n\r\n"); // String: infallible
        }
        None => head.push_str("transfer-encoding: chunked\r\n\r\n"),
    }
    head
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A test: a failed unwrap is a failed test.

    use std::convert::Infallible;

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    /// Serves `body` as the one response of a lean connection and returns every byte the client
    /// read until the server closed the connection.
    async fn served(body: fn() -> Body) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (socket, peer) = listener.accept().await.unwrap();
        let router = Router::new().route("/events", get(move || async move { body() }));
        let request = axum::http::Request::get("/events").body(()).unwrap();
        super::serve(socket, request, peer, router).await;
        let mut read = String::new();
        client.read_to_string(&mut read).await.unwrap();
        read
    }

    /// The head (written with the first frame), one chunk per frame, and the body's end as the last
    /// chunk before the connection closes.
    #[tokio::test]
    async fn a_stream_is_its_head_then_one_chunk_per_frame_then_the_last_chunk() {
        let two = || Body::from_stream(futures::stream::iter(["first", "second"].map(|s| Ok::<_, Infallible>(Bytes::from(s)))));
        let read = served(two).await;
        let (head, body) = read.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("transfer-encoding: chunked"), "{head}");
        assert_eq!(body, "5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n");

        let none = || Body::from_stream(futures::stream::empty::<Result<Bytes, Infallible>>());
        let read = served(none).await;
        assert!(read.ends_with("transfer-encoding: chunked\r\n\r\n0\r\n\r\n"), "an empty body is the last chunk alone: {read}");
    }
}
