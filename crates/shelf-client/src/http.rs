//! The HTTP side: one reqwest client per server, bearer authentication, and the mapping of
//! transport failures and `{code, message}` error bodies to [`ClientError`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ClientError, ClientResult};

/// How long to wait for a TCP/TLS connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Ordinary requests (not event streams or file transfers) give up after this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one Shelf server, optionally with a device's session token.
#[derive(Clone)]
pub struct Http {
    server: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("server", &self.server).field("token", &self.token.as_ref().map(|_| "***")).finish()
    }
}

/// Checks and normalises a server URL (`http(s)://host[:port]`, no trailing slash).
pub fn normalize_server(raw: &str) -> ClientResult<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let valid = (trimmed.starts_with("http://") || trimmed.starts_with("https://")) && trimmed.split("://").nth(1).is_some_and(|h| !h.is_empty());
    if !valid {
        return Err(shelf_core::ValidationError::new("server", format!("{raw:?} is not a URL such as http://127.0.0.1:8787")).into());
    }
    Ok(trimmed.to_owned())
}

impl Http {
    pub fn new(server: &str, token: Option<String>) -> ClientResult<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("shelf-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { server: normalize_server(server)?, token, client })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    /// A request to `path` with the session token, without a total timeout (streams, files).
    pub fn streaming(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// An ordinary request to `path` with the session token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.streaming(method, path).timeout(REQUEST_TIMEOUT)
    }

    /// Sends and turns every failure into a [`ClientError`]; returns only 2xx responses.
    pub async fn send(&self, request: RequestBuilder) -> ClientResult<Response> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.error_response(response).await)
    }

    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> ClientResult<T> {
        let response = self.send(request).await?;
        let bytes = response.bytes().await.map_err(|e| self.transport_error(&e))?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A failure below HTTP: refused, reset, timed out, name not resolved.
    pub fn transport_error(&self, error: &reqwest::Error) -> ClientError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            reason = cause.to_string();
            source = cause.source();
        }
        if error.is_timeout() {
            reason = "timed out".into();
        }
        ClientError::Unreachable { server: self.server.clone(), reason }
    }

    /// Reads an error body; a 401 on a session that was sent means the device was signed out.
    pub async fn error_response(&self, response: Response) -> ClientError {
        let status = response.status();
        // Not every error comes from Shelf (a proxy's HTML page, a cut connection): without a JSON
        // body the status alone is reported.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let code = body["code"].as_str().unwrap_or("").to_owned();
        if status == StatusCode::UNAUTHORIZED && code != "invalid_credentials" && self.token.is_some() {
            return ClientError::SignedOut;
        }
        let message = match body["message"].as_str() {
            Some(message) => message.to_owned(),
            None => format!("the server answered {status}"),
        };
        ClientError::Api { status: status.as_u16(), code, message }
    }
}
