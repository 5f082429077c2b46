//! The instance's secret key (`PARCOURS_SECRET_KEY_FILE`, by default
//! `secret.key` in the data folder): 32 random bytes in hex that seal secrets at
//! rest (TOTP seeds, through `store::secrets`). Generated on first start (the
//! path is logged, never the key), readable by its owner only. Rotation writes
//! the new key beside the old one (`.next`), reseals every secret in one
//! transaction, then moves the old key to `.previous` and the new one in place;
//! every file present is loaded, so a crash at any step still opens everything.

use std::io::Write;
use std::path::{Path, PathBuf};

use store::Store;
use store::secrets::KeyRing;

/// Why the key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read or written.
    #[error("fichier de clé {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("fichier de clé {0}: 64 chiffres hexadécimaux attendus")]
    Malformed(PathBuf),
    /// The random source or the cipher failed.
    #[error("clé secrète: {0}")]
    Crypto(String),
    /// Resealing failed.
    #[error("rechiffrement des secrets: {0}")]
    Store(#[from] store::StoreError),
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn read_key(path: &Path) -> Result<Option<[u8; 32]>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Some)
        .ok_or_else(|| KeyError::Malformed(path.to_owned()))
}

fn new_key() -> Result<[u8; 32], KeyError> {
    use ring::rand::SecureRandom;
    let mut k = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| KeyError::Crypto("source d'aléa indisponible".into()))?;
    Ok(k)
}

fn write_key(path: &Path, key: &[u8; 32]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(hex::encode(key).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Creates the key at `path` unless another process just did: written aside,
/// then linked in place (which fails if the file exists), so that two starts
/// at once never read a half-written key.
fn create(path: &Path) -> Result<[u8; 32], KeyError> {
    let k = new_key()?;
    let aside = sibling(path, &format!(".new-{}", uuid::Uuid::new_v4().simple()));
    write_key(&aside, &k)?;
    let linked = std::fs::hard_link(&aside, path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => {
            tracing::warn!(path = %path.display(), "clé secrète créée: sauvegardez ce fichier à part de la base");
            Ok(k)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path)?.ok_or_else(|| KeyError::Malformed(path.to_owned()))
        }
        Err(source) => Err(KeyError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Loads the key ring from `path` (and its `.next` / `.previous` leftovers of
/// a rotation), creating the key when there is none.
pub fn load_or_create(path: &Path) -> Result<KeyRing, KeyError> {
    let next = read_key(&sibling(path, ".next"))?;
    let previous = read_key(&sibling(path, ".previous"))?;
    let current = match (read_key(path)?, next) {
        (Some(k), _) => k,
        // Stopped between the two renames of a rotation: the new key is current.
        (None, Some(n)) => {
            std::fs::rename(sibling(path, ".next"), path).map_err(|source| KeyError::Io {
                path: path.to_owned(),
                source,
            })?;
            n
        }
        (None, None) => create(path)?,
    };
    let others: Vec<[u8; 32]> = [next, previous]
        .into_iter()
        .flatten()
        .filter(|k| *k != current)
        .collect();
    KeyRing::new(&current, &others).map_err(|e| KeyError::Crypto(e.to_string()))
}

/// Loads the ring into `store` and seals what is not sealed under the current
/// key yet (seeds written before encryption or before a rotation).
pub async fn install(store: &Store, path: &Path) -> Result<(), KeyError> {
    let ring = load_or_create(path)?;
    let id = ring.current_id().to_owned();
    store.set_key_ring(ring);
    let n = store.reseal_totp_secrets().await? + store.reseal_subscription_secrets().await?;
    if n > 0 {
        tracing::info!(sealed = n, key = %id, "secrets (TOTP, abonnements) chiffrés avec la clé en vigueur");
    }
    Ok(())
}

/// Replaces the key: a new one written as `.next`, every secret resealed
/// under it, then the old key kept as `.previous` and the new one put in place.
/// Returns the new key's id.
pub async fn rotate(store: &Store, path: &Path) -> Result<String, KeyError> {
    let old = match read_key(path)? {
        Some(k) => k,
        None => return Err(KeyError::Malformed(path.to_owned())),
    };
    let new = new_key()?;
    let next = sibling(path, ".next");
    write_key(&next, &new)?;
    let ring = KeyRing::new(&new, &[old]).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let id = ring.current_id().to_owned();
    store.set_key_ring(ring);
    store.reseal_totp_secrets().await?;
    store.reseal_subscription_secrets().await?;
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::rename(path, sibling(path, ".previous")).map_err(io)?;
    std::fs::rename(&next, path).map_err(io)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn created_once_then_read_and_malformed_refused() {
        let dir = std::env::temp_dir().join(format!("parcours-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("secret.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(
            a.current_id(),
            b.current_id(),
            "the same key on the next start"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = a.seal("SEED").unwrap();
        // Stopped mid-rotation: only `.next` is there; it becomes the key and
        // the old one, kept as `.previous`, still opens.
        let old = std::fs::read_to_string(&path).unwrap();
        std::fs::write(sibling(&path, ".previous"), &old).unwrap();
        std::fs::remove_file(&path).unwrap();
        write_key(&sibling(&path, ".next"), &[7u8; 32]).unwrap();
        let c = load_or_create(&path).unwrap();
        assert_ne!(c.current_id(), a.current_id());
        assert_eq!(c.open(&sealed).unwrap(), "SEED");
        assert!(!sibling(&path, ".next").exists());
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(load_or_create(&path), Err(KeyError::Malformed(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
