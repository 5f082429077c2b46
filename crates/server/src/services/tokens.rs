//! OAuth2 client credentials for API clients: a shared secret (checked with
//! the same cost whether the client exists or not), or — SMART Backend
//! Services — a signed client assertion (`private_key_jwt`, RS384 or ES384)
//! checked against the client's registered keys or its JWKS URL, its
//! audience (our token endpoint), lifetime (five minutes at most) and `jti`
//! (never twice). Scopes asked in SMART form are granted when the client's
//! allowed scopes cover them, recorded with the token and enforced on every
//! FHIR call on top of the establishment policy.

use domain::smart::Scopes;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::auth::{dummy_hash, random_token, token_hash, verify_secret};
use crate::services::ctx::Ctx;

/// The assertion type of RFC 7523 client authentication.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How a client proves who it is.
#[derive(Debug)]
pub enum Proof {
    /// Its shared secret.
    Secret(String),
    /// A JWT it signed with its private key.
    Assertion(String),
}

/// Why no token was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Unknown client, wrong secret or disabled client (one answer for all).
    InvalidClient,
    /// A client assertion that does not hold, and why (safe to tell).
    BadAssertion(String),
    /// A scope the client may not have, or not a SMART system scope.
    InvalidScope(String),
    /// The store failed.
    Unavailable,
}

/// A token issued: the bearer token, its life in seconds and the scopes granted.
#[derive(Debug)]
pub struct Issued {
    /// The token (only its hash is stored).
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The scopes granted, when some were asked.
    pub scope: Option<String>,
}

fn unavailable(e: store::StoreError) -> Refused {
    tracing::error!(error = %e, "token: store error");
    Refused::Unavailable
}

/// The claims of a JWT, unverified: only to learn who claims to have signed.
fn unverified_claims(jwt: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Issues a token to `client_id` (or, for an assertion without it, its
/// issuer) if the proof holds and the scopes asked are allowed.
/// `token_url` is our token endpoint, the audience assertions must name.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn issue(
    ctx: Ctx<'_>,
    client_id: Option<&str>,
    proof: Proof,
    scope: Option<&str>,
    token_url: &str,
) -> Result<Issued, Refused> {
    let claimed = match (&proof, client_id) {
        (_, Some(c)) => Some(c.to_owned()),
        (Proof::Assertion(jwt), None) => unverified_claims(jwt)
            .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned)),
        (Proof::Secret(_), None) => None,
    };
    let client = match &claimed {
        Some(c) => ctx
            .store
            .client_by_client_id(c)
            .await
            .map_err(unavailable)?,
        None => None,
    };
    let client = match proof {
        Proof::Secret(secret) => {
            let hash = client
                .as_ref()
                .map(|c| c.secret_hash.clone())
                .unwrap_or_else(dummy_hash);
            let ok = verify_secret(hash, secret).await;
            match client {
                Some(c) if ok && c.active => c,
                _ => return Err(Refused::InvalidClient),
            }
        }
        Proof::Assertion(jwt) => {
            let Some(c) = client.filter(|c| c.active) else {
                return Err(Refused::InvalidClient);
            };
            check_assertion(ctx, &c, &jwt, token_url).await?;
            c
        }
    };
    let keys = ctx
        .store
        .client_keys(client.id)
        .await
        .map_err(unavailable)?;
    let granted = match scope.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(asked) => {
            let asked = Scopes::parse(asked).map_err(Refused::InvalidScope)?;
            let allowed = match keys.scopes.as_deref() {
                Some(s) => Scopes::parse(s).map_err(Refused::InvalidScope)?,
                None => Scopes::parse("system/*.cruds").map_err(Refused::InvalidScope)?,
            };
            let g = allowed.grant(&asked).map_err(|s| {
                Refused::InvalidScope(format!("portée non accordée à ce client : {s}"))
            })?;
            Some(g.to_string())
        }
    };
    let token = random_token();
    let now = ctx.now_ms();
    let ttl = ctx.config.token_ttl_seconds;
    ctx.store
        .create_access_token(
            &token_hash(&token),
            client.id,
            now,
            now + ttl * 1000,
            granted.as_deref(),
        )
        .await
        .map_err(unavailable)?;
    Ok(Issued {
        token,
        expires_in: ttl,
        scope: granted,
    })
}

/// The longest an assertion may live (SMART: five minutes).
const MAX_ASSERTION_SECS: i64 = 300;
/// Clock skew tolerated.
const LEEWAY_SECS: i64 = 60;

async fn client_jwks(ctx: Ctx<'_>, client: &store::users::ApiClient) -> Result<JwkSet, Refused> {
    let bad = |s: &str| Refused::BadAssertion(s.to_owned());
    let keys = ctx
        .store
        .client_keys(client.id)
        .await
        .map_err(unavailable)?;
    let text = match (keys.jwks, keys.jwks_url) {
        (Some(jwks), _) => jwks,
        (None, Some(url)) => crate::oidc::get_text(&url)
            .await
            .map_err(|e| Refused::BadAssertion(format!("clés du client ({url}) : {e}")))?,
        (None, None) => return Err(bad("aucune clé publique enregistrée pour ce client")),
    };
    serde_json::from_str(&text).map_err(|_| bad("clés du client illisibles (JWKS attendu)"))
}

/// Checks a client assertion (RFC 7523, SMART Backend Services).
async fn check_assertion(
    ctx: Ctx<'_>,
    client: &store::users::ApiClient,
    jwt: &str,
    token_url: &str,
) -> Result<(), Refused> {
    let bad = |s: &str| Refused::BadAssertion(s.to_owned());
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| bad("assertion illisible"))?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(bad("assertion : RS384 ou ES384 attendu"));
    }
    let set = client_jwks(ctx, client).await?;
    let jwk = crate::oidc::find_key(&set, header.kid.as_deref())
        .ok_or_else(|| bad("assertion : clé inconnue (kid)"))?;
    let claims = crate::oidc::signed_claims(jwt, &jwk, header.alg).map_err(|e| match e {
        crate::oidc::Unsigned::Key => bad("clé du client inutilisable"),
        crate::oidc::Unsigned::Token(_) => bad("assertion : signature invalide"),
    })?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("iss") != Some(client.client_id.as_str())
        || text("sub") != Some(client.client_id.as_str())
    {
        return Err(bad("assertion : iss et sub doivent être le client_id"));
    }
    if !crate::oidc::names_audience(&claims, token_url) {
        return Err(Refused::BadAssertion(format!(
            "assertion : aud doit être {token_url}"
        )));
    }
    let now = ctx.now_ms() / 1000;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("assertion : exp manque"))?;
    if exp + LEEWAY_SECS <= now {
        return Err(bad("assertion expirée"));
    }
    if exp > now + MAX_ASSERTION_SECS + LEEWAY_SECS {
        return Err(bad("assertion : exp à plus de cinq minutes"));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| bad("assertion : jti manque"))?;
    if !ctx
        .store
        .use_client_assertion(client.id, jti, (exp + LEEWAY_SECS) * 1000, ctx.now_ms())
        .await
        .map_err(unavailable)?
    {
        return Err(bad("assertion déjà utilisée (jti)"));
    }
    Ok(())
}

/// An API client's keys and scopes checked before they are stored: a JWKS
/// with at least one RSA or EC public key (never a private one), or an
/// https:// URL to fetch it from; scopes in SMART system form.
pub fn checked_keys(
    jwks: Option<String>,
    jwks_url: Option<String>,
    scopes: Option<String>,
) -> Result<store::sso::ClientKeys, String> {
    if let Some(text) = &jwks {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| format!("JWKS illisible : {e}"))?;
        if set.keys.is_empty() {
            return Err("JWKS sans clé".into());
        }
        let raw: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let private = raw
            .get("keys")
            .and_then(Value::as_array)
            .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
        if private {
            return Err(
                "ce JWKS contient une clé privée : n'enregistrez que la partie publique".into(),
            );
        }
        for k in &set.keys {
            DecodingKey::from_jwk(k).map_err(|e| format!("clé inutilisable : {e}"))?;
        }
    }
    if let Some(url) = &jwks_url
        && !url.starts_with("https://")
    {
        return Err("jwks_url : adresse https:// attendue".into());
    }
    if jwks.is_some() && jwks_url.is_some() {
        return Err("JWKS enregistré ou adresse des clés : l'un ou l'autre".into());
    }
    if let Some(s) = &scopes {
        Scopes::parse(s)?;
    }
    Ok(store::sso::ClientKeys {
        jwks,
        jwks_url,
        scopes,
    })
}
