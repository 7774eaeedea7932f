//! What can go wrong in the client, named by what the caller does about it.

use shelf_core::ValidationError;

/// The message a signed-out device shows. Also the CLI's exact error line.
pub const SIGNED_OUT_MESSAGE: &str = "this device was signed out; run shelf login";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered 401 to a session that used to work (revoked or expired). Sync stops;
    /// local reads and edits keep working and the outbox is kept for the next login.
    #[error("{SIGNED_OUT_MESSAGE}")]
    SignedOut,
    /// No session in this replica yet.
    #[error("not signed in; run shelf login")]
    NotSignedIn,
    /// The server could not be reached (connection refused, DNS, timeout). Edits stay queued.
    #[error("cannot reach the server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The server answered with an error body (`{code, message}`).
    #[error("{message}")]
    Api { status: u16, code: String, message: String },
    /// The input was refused before anything was written or sent.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// No material (or attachment, conflict…) with this id in the local library.
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    /// The local replica (SQLite) failed.
    #[error("local replica: {0}")]
    Replica(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Something this client wrote to its replica does not read back (a damaged file).
    #[error("the local replica is damaged: {0}")]
    Damaged(String),
    /// The server sent something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The stable error code when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when retrying later may succeed (network trouble or a server error).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl From<serde_json::Error> for ClientError {
    fn from(error: serde_json::Error) -> Self {
        ClientError::Protocol(error.to_string())
    }
}

pub type ClientResult<T> = Result<T, ClientError>;
