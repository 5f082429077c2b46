//! Secrets at rest: TOTP seeds are sealed with AES-256-GCM under the instance's
//! key (the file `PARCOURS_SECRET_KEY_FILE`, read by the server) before they reach
//! the database, and opened when read. A sealed value names the key that sealed
//! it (`enc1:<key id>:<nonce>:<ciphertext>`, hex), so a key ring of the current
//! key and the one before it reads everything during a rotation.
//!
//! Not here: reading or writing key files (the server's `secrets` module).

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc1:";

/// Why a secret cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The value was sealed under a key the ring does not hold.
    #[error("secret chiffré avec une clé inconnue ({0}): le fichier de clé n'est pas le bon")]
    UnknownKey(String),
    /// The value is damaged (or was edited).
    #[error("secret chiffré illisible")]
    Damaged,
    /// A sealed value was read but no key is loaded.
    #[error("secret chiffré mais aucune clé chargée")]
    NoKey,
    /// The system's random source failed.
    #[error("source d'aléa indisponible")]
    Random,
}

/// One 256-bit key and its id (the first 4 bytes of its SHA-256, hex).
struct Key {
    id: String,
    key: LessSafeKey,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Result<Key, SecretError> {
        let id = hex::encode(Sha256::digest(bytes).get(..4).unwrap_or_default());
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::Damaged)?;
        Ok(Key {
            id,
            key: LessSafeKey::new(unbound),
        })
    }
}

/// The keys in force: the one that seals, and others that still open.
pub struct KeyRing {
    current: Key,
    others: Vec<Key>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.id)
            .field(
                "others",
                &self.others.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// A ring sealing with `current` and opening with it and `others`.
    pub fn new(current: &[u8; 32], others: &[[u8; 32]]) -> Result<KeyRing, SecretError> {
        Ok(KeyRing {
            current: Key::new(current)?,
            others: others.iter().map(Key::new).collect::<Result<_, _>>()?,
        })
    }

    /// The id of the sealing key (safe to log).
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plain` under the current key.
    pub fn seal(&self, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut buf = plain.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.current.id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Damaged)?;
        Ok(format!(
            "{PREFIX}{}:{}:{}",
            self.current.id,
            hex::encode(nonce),
            hex::encode(buf)
        ))
    }

    /// Opens a stored value: a sealed one with the key it names; a value that
    /// is not sealed (written before encryption) is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(id), Some(nonce), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Damaged);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.others)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_owned()))?;
        let nonce: [u8; 12] = hex::decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SecretError::Damaged)?;
        let mut buf = hex::decode(body).map_err(|_| SecretError::Damaged)?;
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Damaged)
    }

    /// Whether `stored` is sealed under the current key (nothing to redo).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split(':').next())
            .is_some_and(|id| id == self.current.id)
    }
}

/// Whether a stored value is sealed (by any key).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_and_rotation() {
        let a = KeyRing::new(&[1u8; 32], &[]).unwrap();
        let sealed = a.seal("KRSXG5CT").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("KRSXG5CT"));
        assert_ne!(
            sealed,
            a.seal("KRSXG5CT").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(a.open(&sealed).unwrap(), "KRSXG5CT");
        assert!(a.is_current(&sealed));
        // Not sealed yet (written before encryption): read as it is.
        assert_eq!(a.open("PLAIN").unwrap(), "PLAIN");
        assert!(!a.is_current("PLAIN"));
        // Another key alone cannot open it; a ring holding the old one can.
        let b = KeyRing::new(&[2u8; 32], &[]).unwrap();
        assert!(matches!(b.open(&sealed), Err(SecretError::UnknownKey(_))));
        let ring = KeyRing::new(&[2u8; 32], &[[1u8; 32]]).unwrap();
        assert_eq!(ring.open(&sealed).unwrap(), "KRSXG5CT");
        assert!(!ring.is_current(&sealed));
        // Tampering is found.
        let mut bad = sealed.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(a.open(&bad), Err(SecretError::Damaged));
        assert_eq!(a.open("enc1:zz"), Err(SecretError::Damaged));
        assert!(!format!("{a:?}").contains("KRSX"));
    }
}
