//! Shelf's wire format: every JSON body the server accepts or returns, and the error codes.
//!
//! API boundary: these types are the public contract that the web SDK, the Rust client and
//! outside checks are written against. Field names are camelCase; times are RFC 3339 strings.
//! Conversions from `shelf-core` live here so the server never builds JSON by hand.

mod accounts;
mod attachments;
mod error;
mod int;
mod library;
mod push;
mod sync;

pub use accounts::{DeviceView, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse};
pub use accounts::{ChangePasswordRequest, DeleteAccountRequest};
pub use error::{ErrorBody, ErrorCode};
pub use push::{PushPayload, PushSubscriptionKeys, PushSubscriptionRequest, VapidPublicKeyResponse};
pub use library::{
    ChangeView, ChangesQuery, ChangesResponse, CreateMaterialRequest, DeletedResponse, LibraryVersionResponse,
    ListMaterialsQuery, MaterialFields, MaterialMutationResponse, MaterialView, MaterialsPage, ProgressInput,
    ProgressMutationResponse, ProgressView, UpdateMaterialRequest,
};
pub use sync::{
    AttachmentAddData, AttachmentRemoveData, BareEnvelope, ConflictFieldView, ConflictResolveData, ConflictSummaryView,
    ConflictView, Envelope, MaterialCreateData, MutationBatchRequest, MutationBatchResponse, MutationInput, MutationResultView,
    MutationStatus, MutationType, NoData, RejectedPage, RejectedQueryParams, RejectedView, ResolveConflictRequest, TagsInput,
    PROTOCOL_VERSION,
};
pub use attachments::{AttachRequest, AttachResponse, AttachmentView};
