//! The server's VAPID identity (RFC 8292): a P-256 key pair that signs every push request, so
//! push services accept only this server's pushes for the subscriptions made with its key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};

/// The key pair and its public half as browsers want it.
pub struct VapidKey {
    pub pair: ES256KeyPair,
    /// Base64url (unpadded) of the uncompressed public point: `applicationServerKey`.
    pub public_key: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey").field("public_key", &self.public_key).finish_non_exhaustive()
    }
}

impl VapidKey {
    /// From the 32-byte private scalar.
    pub fn from_private_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let pair = ES256KeyPair::from_bytes(bytes).map_err(|e| anyhow::anyhow!("not a P-256 private key: {e}"))?;
        let public_key = URL_SAFE_NO_PAD.encode(pair.public_key().public_key().to_bytes_uncompressed());
        Ok(Self { pair, public_key })
    }

    /// A fresh random key's private scalar (a candidate for the database at first start).
    pub fn generate_private_bytes() -> Vec<u8> {
        ES256KeyPair::generate().to_bytes()
    }

    /// The private scalar, to compare or store.
    pub fn private_bytes(&self) -> Vec<u8> {
        self.pair.to_bytes()
    }
}

/// Reads `--vapid-private-key`: a PEM file (PKCS#8 or SEC1, as `openssl ecparam -genkey`
/// writes), or base64url of the 32-byte private scalar (as web-push tools print it). Returns
/// the scalar; errors say what was expected, never echo the key.
pub fn parse_private_key(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let pair = if text.starts_with("-----BEGIN") {
        ES256KeyPair::from_pem(text).map_err(|e| anyhow::anyhow!("the PEM is not a P-256 private key: {e}"))?
    } else {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| anyhow::anyhow!("expected a PEM private key or base64url of a 32-byte P-256 private key"))?;
        anyhow::ensure!(bytes.len() == 32, "expected 32 bytes of P-256 private key, got {}", bytes.len());
        ES256KeyPair::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("not a P-256 private key: {e}"))?
    };
    Ok(pair.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pu1_keys_round_trip_through_base64url_and_pem() {
        let bytes = VapidKey::generate_private_bytes();
        let key = VapidKey::from_private_bytes(&bytes).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&key.public_key).unwrap().len(), 65);
        assert_eq!(parse_private_key(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap(), bytes);
        let pem = key.pair.to_pem().unwrap();
        assert_eq!(parse_private_key(&pem).unwrap(), bytes);
        assert!(parse_private_key("not a key").is_err());
        assert!(parse_private_key(&URL_SAFE_NO_PAD.encode([1u8; 31])).is_err());
    }
}
