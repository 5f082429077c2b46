//! Credentials: argon2id password and secret hashing (off the async runtime),
//! random tokens stored only as SHA-256, TOTP (RFC 6238) second factor.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

/// Hashes a password or client secret with argon2id (OWASP parameters: 19 MiB, 2
/// passes), on a blocking thread.
pub async fn hash_secret(secret: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_secret_blocking(&secret)).await?
}

/// Same, for synchronous callers (the CLI before the runtime matters).
pub fn hash_secret_blocking(secret: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hachage argon2: {e}"))
}

/// Checks a secret against a stored hash, on a blocking thread. A malformed hash
/// never matches.
pub async fn verify_secret(hash: String, secret: String) -> bool {
    tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that a wrong login
/// name takes as long as a wrong password.
pub fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_secret_blocking("parcours-dummy").unwrap_or_default())
        .clone()
}

/// 32 random bytes, hex: session and access tokens, CSRF tokens.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A second-factor recovery code: ten characters without look-alikes
/// (`k7m2p-x9c4r`, about 50 bits), shown once, kept as its SHA-256.
pub fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut chars = String::with_capacity(11);
    let mut b = [0u8; 1];
    while chars.len() < 11 {
        OsRng.fill_bytes(&mut b);
        // Rejection sampling: 248 = 31 × 8, so every character is equally likely.
        if b[0] < 248
            && let Some(c) = ALPHABET.get(usize::from(b[0]) % ALPHABET.len())
        {
            chars.push(char::from(*c));
            if chars.len() == 5 {
                chars.push('-');
            }
        }
    }
    chars
}

/// A recovery code as typed (spaces, case and a missing dash forgiven), in
/// the form it was made, if it has that shape.
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    let c: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (c.len() == 10).then(|| {
        let (a, b) = c.split_at(5);
        format!("{a}-{b}")
    })
}

/// An inline SVG of a QR code for `text` (the TOTP enrolment), black on
/// white with its quiet zone; `None` when the text does not fit a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    use std::fmt::Write as _;
    let modules = interop::ordonnance::qr_modules(text)?;
    let n = modules.len() + 8;
    let mut path = String::new();
    for (y, row) in modules.iter().enumerate() {
        for (x, on) in row.iter().enumerate() {
            if *on {
                let _ = write!(path, "M{},{}h1v1h-1z", x + 4, y + 4);
            }
        }
    }
    Some(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" width="240" height="240" role="img" aria-label="QR code à scanner avec l'application d'authentification" shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    ))
}

/// SHA-256, hex: what the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// TOTP time step length.
pub const TOTP_STEP: u64 = 30;

fn totp(secret_b32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, 6, 1, TOTP_STEP, bytes).ok()
}

/// A new TOTP secret (160 bits), base32 as authenticator apps expect.
pub fn new_totp_secret() -> String {
    let mut b = [0u8; 20];
    OsRng.fill_bytes(&mut b);
    match Secret::Raw(b.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => String::new(),
    }
}

/// The code for `unix_secs` (tests and the demo's README helper).
pub fn totp_code(secret_b32: &str, unix_secs: u64) -> Option<String> {
    totp(secret_b32).map(|t| t.generate(unix_secs))
}

/// The time step whose code matches `code`, allowing one step of clock drift either
/// way. The caller refuses a step already used (replay).
pub fn totp_matching_step(secret_b32: &str, code: &str, unix_secs: u64) -> Option<i64> {
    let t = totp(secret_b32)?;
    let code = code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let step = unix_secs / TOTP_STEP;
    [step, step.saturating_sub(1), step + 1]
        .into_iter()
        .find_map(|s| {
            let expected = t.generate(s * TOTP_STEP);
            constant_time_eq(&expected, code).then_some(s as i64)
        })
}

/// The `otpauth://` URI to enrol an authenticator app.
pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let enc: String = account
        .bytes()
        .map(|b| {
            if unreserved(b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/Parcours:{enc}?secret={secret_b32}&issuer=Parcours&algorithm=SHA1&digits=6&period=30"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_hash_and_verify() {
        let h = hash_secret("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret(h.clone(), "correct horse".into()).await);
        assert!(!verify_secret(h, "wrong".into()).await);
        assert!(!verify_secret("not a hash".into(), "x".into()).await);
        assert!(dummy_hash().starts_with("$argon2id$"));
        assert!(!verify_secret(dummy_hash(), "x".into()).await);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }

    #[test]
    fn totp_rfc6238_vector_and_drift() {
        // RFC 6238 test secret "12345678901234567890" (SHA-1), base32-encoded.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(secret, 59).as_deref(), Some("287082"));
        assert_eq!(totp_code(secret, 1_111_111_109).as_deref(), Some("081804"));
        let now = 1_111_111_109;
        let code = totp_code(secret, now).unwrap();
        assert_eq!(
            totp_matching_step(secret, &code, now),
            Some((now / 30) as i64)
        );
        assert_eq!(
            totp_matching_step(secret, &code, now + 30),
            Some((now / 30) as i64),
            "one step late is fine"
        );
        assert_eq!(
            totp_matching_step(secret, &code, now + 90),
            None,
            "three steps late is not"
        );
        assert_eq!(totp_matching_step(secret, "12345", now), None);
        assert_eq!(totp_matching_step(secret, "abcdef", now), None);
        assert_eq!(totp_matching_step("not base32!", &code, now), None);
        let fresh = new_totp_secret();
        assert_eq!(fresh.len(), 32);
        assert!(totp_code(&fresh, 0).is_some());
        assert!(otpauth_uri(&fresh, "dr.martin@x").contains("Parcours:dr.martin%40x?secret="));
    }

    #[test]
    fn recovery_codes_have_one_shape_and_are_forgiving_to_type() {
        let codes: Vec<String> = (0..50).map(|_| recovery_code()).collect();
        for c in &codes {
            assert_eq!(c.len(), 11, "{c}");
            assert_eq!(c.chars().nth(5), Some('-'), "{c}");
            assert!(
                !c.contains(['0', '1', 'i', 'l', 'o']),
                "no look-alikes: {c}"
            );
            assert_eq!(normalize_recovery_code(c).as_deref(), Some(c.as_str()));
            let typed = c.replace('-', " ").to_uppercase();
            assert_eq!(normalize_recovery_code(&typed).as_deref(), Some(c.as_str()));
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code("abcde-fghij-k"), None);
    }

    #[test]
    fn the_enrolment_qr_code_decodes_to_the_otpauth_uri() {
        let uri = otpauth_uri(&new_totp_secret(), "dr.nouvelle");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("aria-label"));
        // Read it back as a scanner would: redraw the modules, decode with rqrr.
        let modules = interop::ordonnance::qr_modules(&uri).unwrap();
        let n = modules.len();
        let scale = 4;
        let side = (n + 8) * scale;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = ((x / scale).wrapping_sub(4), (y / scale).wrapping_sub(4));
            let dark = modules
                .get(my)
                .and_then(|row| row.get(mx))
                .copied()
                .unwrap_or(false);
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, text) = grids[0].decode().unwrap();
        assert_eq!(text, uri);
        // The SVG draws exactly the dark modules.
        let dark = modules.iter().flatten().filter(|d| **d).count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
    }
}
