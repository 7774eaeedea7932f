//! Identifiers and the library version counter.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7), so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A registered account.
    UserId
);
uuid_id!(
    /// One login session; each login is a device.
    DeviceId
);
uuid_id!(
    /// A study material. Clients may choose it (offline creation), so it is only unique per user.
    MaterialId
);

/// The per-user library version: 1 at registration, +1 for every committed library change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LibraryVersion(pub i64);

impl LibraryVersion {
    /// The version every new user starts at.
    pub const INITIAL: LibraryVersion = LibraryVersion(1);

    /// The version the next committed change will get.
    pub fn next(self) -> LibraryVersion {
        LibraryVersion(self.0 + 1)
    }
}

impl std::fmt::Display for LibraryVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A random id fixed when a database is created. A client whose cached cursor carries another
/// epoch knows the database was restored or replaced and must start again from version 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub String);
