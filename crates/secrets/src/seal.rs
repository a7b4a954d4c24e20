//! Sealing: XChaCha20-Poly1305 with a random 24-byte nonce per value, under a key derived
//! from the server's `SECRET_KEY` with HKDF-SHA256; each sealed value names the key (its
//! id) and is bound to its owner, scope and name by the associated data.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The HKDF info strings. Fixed: changing one makes every stored value unreadable. The key
/// bytes that sign access tokens are never used as the sealing key itself.
const SEALING_INFO: &[u8] = b"agentbox secrets v1: sealing key";
const KEY_ID_INFO: &[u8] = b"agentbox secrets v1: key id";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The value was sealed under a key this server does not have.
    #[error(
        "the secret was sealed under key {key_id}, but this server's SECRET_KEY gives key \
         {current}: start the server with the SECRET_KEY it was sealed with, or finish the \
         rotation (`agentbox rotate-secret-key`)"
    )]
    UnknownKey { key_id: String, current: String },
    /// The stored text is not a sealed value at all.
    #[error("the sealed secret is malformed")]
    Malformed,
    /// Authentication failed: the value, its nonce or its associated data (owner, scope,
    /// name) changed since it was sealed.
    #[error("the sealed secret does not authenticate (changed, or moved to another name or owner)")]
    Tampered,
}

/// A sealed value as it is stored: the id of the key and `base64(nonce || ciphertext+tag)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub text: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The sealing key of one `SECRET_KEY`. `Debug` shows its id only.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Derive the sealing key and its id from the server's `SECRET_KEY`.
    pub fn derive(secret_key: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, secret_key);
        let mut key = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; 8];
        // Both lengths are far below HKDF-SHA256's limit (255 * 32 bytes): never an error.
        let derived =
            hkdf.expand(SEALING_INFO, key.as_mut()).and(hkdf.expand(KEY_ID_INFO, &mut id));
        debug_assert!(derived.is_ok());
        let id = id.iter().map(|b| format!("{b:02x}")).collect();
        Self { id, cipher: XChaCha20Poly1305::new(key.as_ref().into()) }
    }

    /// A key of this process only, for tests and for runners that were given none: what it
    /// seals no other process can open.
    pub fn ephemeral() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self::derive(key.as_slice())
    }

    /// Identifies the key (not secret: derived separately from the key bytes).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seal `value`, bound to `ad` (see [`associated_data`]), under a fresh random nonce.
    pub fn seal(&self, value: &[u8], ad: &[u8]) -> Sealed {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption fails only for inputs over the cipher's limit (256 GiB), far above the
        // bounded values the server accepts.
        let ciphertext =
            self.cipher.encrypt(&nonce, Payload { msg: value, aad: ad }).unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(nonce.as_slice());
        bytes.extend_from_slice(&ciphertext);
        Sealed { key_id: self.id.clone(), text: BASE64.encode(bytes) }
    }

    /// Open a value sealed under this key with the same associated data.
    pub fn open(&self, sealed: &Sealed, ad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.key_id != self.id {
            return Err(SealError::UnknownKey {
                key_id: sealed.key_id.clone(),
                current: self.id.clone(),
            });
        }
        let bytes = BASE64.decode(&sealed.text).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: ad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Tampered)
    }

    /// Open a value as UTF-8 text (the server seals only text).
    pub fn open_text(&self, sealed: &Sealed, ad: &[u8]) -> Result<Zeroizing<String>, SealError> {
        let bytes = self.open(sealed, ad)?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(Zeroizing::new(text.to_owned())),
            Err(_) => Err(SealError::Malformed),
        }
    }
}

/// What a sealed value is bound to: its owner, its scope (a chat's override, or the user's
/// own when `chat` is `None`) and its name. A value copied to another row does not open.
pub fn associated_data(owner: &str, chat: Option<&str>, name: &str) -> Vec<u8> {
    // Neither ids nor names contain NUL, so the parts cannot run into each other.
    format!("agentbox-secret/v1\0{owner}\0{}\0{name}", chat.unwrap_or("")).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn ad(name: &str) -> Vec<u8> {
        associated_data("user-1", None, name)
    }

    #[test]
    fn a_value_round_trips_and_is_not_stored_in_clear() {
        let key = SealingKey::derive(KEY);
        let sealed = key.seal(b"sk-ant-marker-value", &ad("ANTHROPIC_API_KEY"));
        assert_eq!(sealed.key_id, key.id());
        assert!(!sealed.text.contains("marker"));
        let opened = key.open_text(&sealed, &ad("ANTHROPIC_API_KEY")).unwrap();
        assert_eq!(opened.as_str(), "sk-ant-marker-value");
        // A fresh nonce each time: the same value seals differently.
        assert_ne!(key.seal(b"v", &ad("A")).text, key.seal(b"v", &ad("A")).text);
    }

    #[test]
    fn the_key_and_its_id_come_from_the_secret_key_only() {
        let (a, b) = (SealingKey::derive(KEY), SealingKey::derive(KEY));
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        let sealed = a.seal(b"value", &ad("X"));
        assert_eq!(b.open(&sealed, &ad("X")).unwrap().as_slice(), b"value");
        assert!(!format!("{a:?}").contains("cipher"));
    }

    #[test]
    fn a_changed_value_does_not_open() {
        let key = SealingKey::derive(KEY);
        let sealed = key.seal(b"value", &ad("X"));
        let mut bytes = BASE64.decode(&sealed.text).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = Sealed { key_id: sealed.key_id.clone(), text: BASE64.encode(&bytes) };
        assert_eq!(key.open(&tampered, &ad("X")).unwrap_err(), SealError::Tampered);
        bytes[last] ^= 1;
        bytes[0] ^= 1; // the nonce
        let tampered = Sealed { key_id: sealed.key_id.clone(), text: BASE64.encode(&bytes) };
        assert_eq!(key.open(&tampered, &ad("X")).unwrap_err(), SealError::Tampered);
        let garbage = Sealed { key_id: sealed.key_id.clone(), text: "not base64!".into() };
        assert_eq!(key.open(&garbage, &ad("X")).unwrap_err(), SealError::Malformed);
        let short = Sealed { key_id: sealed.key_id, text: BASE64.encode([0u8; 10]) };
        assert_eq!(key.open(&short, &ad("X")).unwrap_err(), SealError::Malformed);
    }

    #[test]
    fn another_key_does_not_open_it() {
        let key = SealingKey::derive(KEY);
        let other = SealingKey::derive(b"another secret key, also 32 bytes long");
        assert_ne!(key.id(), other.id());
        let sealed = key.seal(b"value", &ad("X"));
        let err = other.open(&sealed, &ad("X")).unwrap_err();
        assert!(
            matches!(&err, SealError::UnknownKey { key_id, .. } if key_id == key.id()),
            "{err}"
        );
        assert!(err.to_string().contains("rotate-secret-key"));
        // Under a forged key id, the other key still cannot authenticate it.
        let forged = Sealed { key_id: other.id().to_owned(), text: sealed.text };
        assert_eq!(other.open(&forged, &ad("X")).unwrap_err(), SealError::Tampered);
    }

    #[test]
    fn another_name_owner_or_scope_does_not_open_it() {
        let key = SealingKey::derive(KEY);
        let sealed = key.seal(b"value", &associated_data("user-1", None, "TOKEN"));
        for ad in [
            associated_data("user-1", None, "OTHER"),
            associated_data("user-2", None, "TOKEN"),
            associated_data("user-1", Some("chat-1"), "TOKEN"),
        ] {
            assert_eq!(key.open(&sealed, &ad).unwrap_err(), SealError::Tampered);
        }
    }

    #[test]
    fn debug_shows_no_sealed_text() {
        let sealed = SealingKey::derive(KEY).seal(b"value", &ad("X"));
        let text = format!("{sealed:?}");
        assert!(!text.contains(&sealed.text), "{text}");
    }
}
