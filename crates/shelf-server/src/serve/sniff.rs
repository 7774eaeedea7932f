//! Reads a new connection's first bytes and tells an event-stream request from everything else.
//!
//! Only the exact shape a stream request has is taken: `GET /api/library-version-events`
//! (any query), HTTP/1.1, a complete head within [`MAX_HEAD`] bytes, no body and no upgrade.
//! Anything else — including a head that does not parse — goes to hyper with the bytes already
//! read, so hyper answers it exactly as it would have (400, 431, keep-alive, HTTP/2, WebSocket).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const STREAM_PATH: &str = "/api/library-version-events";
/// Largest request head taken off hyper; a browser's stream request is well under 2 KiB.
const MAX_HEAD: usize = 8 * 1024;
/// Most headers parsed from a stream request.
const MAX_HEADERS: usize = 64;

pub(super) enum Sniffed {
    /// The peer closed (or failed) before sending a byte.
    Closed,
    /// A stream request, parsed; the connection carries nothing after its head.
    EventStream(Request<()>),
    /// Any other request: these bytes were read already and must be replayed to hyper.
    Other(Vec<u8>),
}

pub(super) async fn first_request(socket: &mut TcpStream) -> Sniffed {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        match socket.read_buf(&mut buffer).await {
            Ok(0) | Err(_) if buffer.is_empty() => return Sniffed::Closed,
            Ok(0) | Err(_) => return Sniffed::Other(buffer),
            Ok(_) => {}
        }
        match classify(&buffer) {
            Some(Some(request)) => return Sniffed::EventStream(request),
            Some(None) => return Sniffed::Other(buffer),
            None if buffer.len() >= MAX_HEAD => return Sniffed::Other(buffer),
            None => buffer.reserve(1024.min(MAX_HEAD - buffer.len())),
        }
    }
}

/// `None`: need more bytes; `Some(None)`: not ours; `Some(Some(request))`: a stream request.
fn classify(bytes: &[u8]) -> Option<Option<Request<()>>> {
    let prefix = b"GET /api/library-version-events";
    let seen = bytes.len().min(prefix.len());
    if bytes[..seen] != prefix[..seen] {
        return Some(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    match head.parse(bytes) {
        Ok(httparse::Status::Partial) => None,
        Ok(httparse::Status::Complete(length)) => Some(to_request(&head).filter(|_| length == bytes.len())),
        Err(_) => Some(None),
    }
}

fn to_request(head: &httparse::Request<'_, '_>) -> Option<Request<()>> {
    let path = head.path?;
    if head.method != Some("GET") || head.version != Some(1) || path.split('?').next() != Some(STREAM_PATH) {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for header in head.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    let has_body = headers.contains_key("content-length") || headers.contains_key("transfer-encoding");
    if has_body || headers.contains_key("upgrade") || headers.contains_key("expect") {
        return None;
    }
    let mut request = Request::new(());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = path.parse::<Uri>().ok()?;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_complete_stream_requests() {
        let stream = b"GET /api/library-version-events?changes=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n";
        let request = classify(stream).flatten().expect("a stream request");
        assert_eq!(request.uri().query(), Some("changes=1"));
        assert_eq!(request.headers()["authorization"], "Bearer t");
        assert!(classify(&stream[..20]).is_none(), "a prefix waits for more bytes");
        assert!(classify(&stream[..60]).is_none(), "an incomplete head waits for more bytes");
        for other in [
            &b"GET /api/library/version HTTP/1.1\r\n\r\n"[..],
            b"POST /api/library-version-events HTTP/1.1\r\n\r\n",
            b"GET /api/library-version-events/ticket HTTP/1.1\r\n\r\n",
            b"GET /api/library-version-events HTTP/1.0\r\n\r\n",
            b"GET /api/library-version-events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /api/library-version-events HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/library-version-events HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET /api/library-version-events HTTP/1.1\r\nBad Header\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert!(matches!(classify(other), Some(None)), "{}", String::from_utf8_lossy(other));
        }
    }
}
