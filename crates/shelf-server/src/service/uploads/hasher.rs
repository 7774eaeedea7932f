//! SHA-256 over an upload as its bytes arrive, resumable by any writer on any instance.
//!
//! The hasher's state (the 32-byte chaining value, the block count and the unprocessed tail of
//! under 64 bytes) is recorded with the offset it covers, so the last byte needs only a
//! finalisation instead of re-reading the whole staged file. The state is sha2 0.11's own
//! serialisation (`SerializableState`); sha2 0.10, which the rest of the workspace uses, does
//! not expose it. A state that does not parse is an error, never a fresh hasher.

use sha2_v011::digest::common::hazmat::{SerializableState, SerializedState};
use sha2_v011::{Digest, Sha256};

pub(super) struct UploadHasher(Sha256);

/// A recorded state that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("unreadable upload hash state ({0} bytes)")]
pub(super) struct BadState(usize);

impl UploadHasher {
    /// The hasher as recorded over the first `offset` bytes; `None` only for `offset` 0.
    pub(super) fn resume(state: Option<&[u8]>, offset: u64) -> Result<Self, BadState> {
        let Some(bytes) = state else {
            return if offset == 0 { Ok(Self(Sha256::new())) } else { Err(BadState(0)) };
        };
        let serialized = SerializedState::<Sha256>::try_from(bytes).map_err(|_| BadState(bytes.len()))?;
        Sha256::deserialize(&serialized).map(Self).map_err(|_| BadState(bytes.len()))
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// What to record with the offset.
    pub(super) fn state(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// The lower-case hex digest of everything hashed so far.
    pub(super) fn hex(&self) -> String {
        self.0.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// AT10: a hash resumed from recorded states at arbitrary cuts equals the one-pass hash.
    #[test]
    fn at10_a_resumed_hash_equals_the_one_pass_hash() {
        let content: Vec<u8> = (0..200_003u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let expected: String = <sha2::Sha256 as sha2::Digest>::digest(&content).iter().map(|b| format!("{b:02x}")).collect();
        for cuts in [vec![0, 1, 63, 64, 65, 1000, 200_003], vec![0, 7, 4096, 199_999, 200_003], vec![0, 200_003]] {
            let (mut state, mut offset) = (None::<Vec<u8>>, 0u64);
            for end in cuts.into_iter().skip(1) {
                let mut hasher = UploadHasher::resume(state.as_deref(), offset).unwrap();
                hasher.update(&content[offset as usize..end]);
                state = Some(hasher.state());
                offset = end as u64;
            }
            assert_eq!(UploadHasher::resume(state.as_deref(), offset).unwrap().hex(), expected);
        }
        assert!(UploadHasher::resume(None, 5).is_err(), "bytes without a hash state");
        assert!(UploadHasher::resume(Some(&[1, 2, 3]), 5).is_err(), "a state that does not parse");
    }
}
