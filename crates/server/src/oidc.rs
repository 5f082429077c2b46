//! OpenID Connect relying party, for Pro Santé Connect and a GHT's own
//! provider (Keycloak, ADFS, LemonLDAP::NG), several at once: the discovery
//! document and the provider's keys (JWKS) fetched and kept an hour, fetched
//! again when a token names a key we do not know (rotation); the
//! authorization code flow with PKCE (S256), `state` and `nonce`; the ID
//! token's signature checked against those keys, its issuer, audience,
//! expiry (on the application's clock), nonce and — when the provider
//! requires one — its `acr` (PSC: `eidas1`); userinfo read as JSON or as a
//! signed JWT. Client secrets are read from files; nothing here logs a token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A provider as the configuration (`[[oidc]]` in `parcours.toml`) names it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// In URLs (`/connexion/oidc/{id}`): lower-case letters, digits, `-`.
    pub id: String,
    /// What the login button says (« Pro Santé Connect »).
    pub label: String,
    /// The issuer; its `/.well-known/openid-configuration` is read.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// A file holding our client secret (never the secret itself).
    pub client_secret_file: PathBuf,
    /// Scopes asked for (`openid` always).
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The authentication level required (`eidas1` for PSC): sent as
    /// `acr_values` and checked in the ID token. Without it, the provider's
    /// own policy is trusted.
    #[serde(default)]
    pub acr: Option<String>,
    /// The claim carrying the national professional id (PSC: `SubjectNameID`).
    #[serde(default = "default_national_id_claim")]
    pub national_id_claim: String,
    /// For patients (matched only by a subject they linked) rather than
    /// professionals.
    #[serde(default)]
    pub for_patients: bool,
}

fn default_scopes() -> String {
    "openid".into()
}

fn default_national_id_claim() -> String {
    "SubjectNameID".into()
}

impl ProviderConfig {
    /// Checks what can be checked before any network: a clear error otherwise.
    pub fn check(&self) -> Result<String, String> {
        let what = format!("fournisseur OIDC {:?}", self.id);
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "{what} : l'id ne prend que des minuscules, des chiffres et « - »"
            ));
        }
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            return Err(format!("{what} : issuer http(s):// attendu"));
        }
        if self.client_id.trim().is_empty() {
            return Err(format!("{what} : client_id manque"));
        }
        let secret = std::fs::read_to_string(&self.client_secret_file).map_err(|e| {
            format!(
                "{what} : client_secret_file ({}) illisible : {e}",
                self.client_secret_file.display()
            )
        })?;
        let secret = secret.trim().to_owned();
        if secret.is_empty() {
            return Err(format!("{what} : client_secret_file est vide"));
        }
        Ok(secret)
    }
}

/// What the provider publishes.
#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

/// A provider ready to use.
pub struct Provider {
    /// Its configuration.
    pub config: ProviderConfig,
    secret: String,
    known: tokio::sync::Mutex<Option<Known>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.config.id)
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// The discovery document and keys, when they were read, and when the keys
/// were last read again for an unknown `kid`.
struct Known {
    discovery: Discovery,
    keys: JwkSet,
    fetched: Instant,
    refetched: Option<Instant>,
}

/// How long the discovery document and keys are kept.
const KEEP: Duration = Duration::from_secs(3600);
/// Keys are fetched again for an unknown `kid` at once the first time, then
/// at most this often (a token naming keys that do not exist costs us little).
const REFETCH: Duration = Duration::from_secs(60);
/// Clock skew tolerated on `exp`, `iat` and `nbf`.
const LEEWAY_SECS: i64 = 60;

/// Why a sign-in by a provider failed: said on the page (French) and audited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered something unusable.
    #[error("le fournisseur d'identité ne répond pas correctement : {0}")]
    Provider(String),
    /// The provider refused the code (used already, expired…).
    #[error("le fournisseur d'identité a refusé la demande : {0}")]
    Refused(String),
    /// The ID token's signature does not check against the provider's keys.
    #[error("jeton d'identité : signature invalide")]
    Signature,
    /// Expired, not yet valid, or issued too long ago.
    #[error("jeton d'identité expiré")]
    Expired,
    /// Not for us.
    #[error("jeton d'identité destiné à une autre application")]
    Audience,
    /// Not from this provider.
    #[error("jeton d'identité d'un autre émetteur")]
    Issuer,
    /// Not the answer to our request.
    #[error("jeton d'identité sans le nonce de la demande")]
    Nonce,
    /// A lower authentication level than required.
    #[error(
        "niveau d'authentification insuffisant ({got}) : {required} est exigé (carte CPS ou e-CPS)"
    )]
    Level {
        /// Required.
        required: String,
        /// Given.
        got: String,
    },
    /// Something else unusable in the token.
    #[error("jeton d'identité illisible : {0}")]
    Malformed(String),
}

impl OidcError {
    /// A short code for the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::Provider(_) => "provider",
            OidcError::Refused(_) => "code-refused",
            OidcError::Signature => "signature",
            OidcError::Expired => "expired",
            OidcError::Audience => "audience",
            OidcError::Issuer => "issuer",
            OidcError::Nonce => "nonce",
            OidcError::Level { .. } => "acr",
            OidcError::Malformed(_) => "malformed",
        }
    }
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// The national id claim, when given.
    pub national_id: Option<String>,
    /// `acr`, when given.
    pub acr: Option<String>,
    /// The ID token (for the provider's logout).
    pub id_token: String,
}

fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, OidcError> {
    let p = |e: String| OidcError::Provider(e);
    let r = http()
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| p(e.without_url().to_string()))?;
    if !r.status().is_success() {
        return Err(p(format!("HTTP {} pour {url}", r.status().as_u16())));
    }
    r.json().await.map_err(|e| p(format!("{url} : {e}")))
}

/// A document fetched over HTTP (https://, or http:// on this machine), at
/// most 64 KiB: an API client's JWKS.
pub async fn get_text(url: &str) -> Result<String, String> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    if !(url.starts_with("https://") || loopback) {
        return Err("adresse https:// attendue".into());
    }
    let r = http()
        .get(url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status().as_u16()));
    }
    let bytes = r.bytes().await.map_err(|e| e.without_url().to_string())?;
    if bytes.len() > 64 * 1024 {
        return Err("document trop volumineux".into());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| "document illisible".into())
}

/// An S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

impl Provider {
    /// A provider from its configuration, its secret read (and checked) now.
    pub fn new(config: ProviderConfig) -> Result<Provider, String> {
        let secret = config.check()?;
        Ok(Provider {
            config,
            secret,
            known: tokio::sync::Mutex::new(None),
        })
    }

    /// The discovery document and keys, read when older than an hour (or
    /// `refresh_keys` and not read in the last minute).
    async fn known(&self, refresh_keys: bool) -> Result<(Discovery, JwkSet), OidcError> {
        let mut known = self.known.lock().await;
        if let Some(k) = known.as_mut() {
            let fresh = k.fetched.elapsed() < KEEP;
            let may_refetch = k.refetched.is_none_or(|t| t.elapsed() >= REFETCH);
            if fresh && refresh_keys && may_refetch {
                // The provider rotated its keys: only the keys are read again.
                k.keys = get_json(&k.discovery.jwks_uri).await?;
                k.refetched = Some(Instant::now());
                return Ok((k.discovery.clone(), k.keys.clone()));
            }
            if fresh {
                return Ok((k.discovery.clone(), k.keys.clone()));
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = get_json(&url).await?;
        if discovery.issuer != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "le document de découverte annonce l'émetteur {}",
                discovery.issuer
            )));
        }
        let keys: JwkSet = get_json(&discovery.jwks_uri).await?;
        *known = Some(Known {
            discovery: discovery.clone(),
            keys: keys.clone(),
            fetched: Instant::now(),
            refetched: None,
        });
        Ok((discovery, keys))
    }

    /// Where to send the browser: the authorization endpoint with our
    /// request (code flow, PKCE S256, state, nonce, the required level).
    pub async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        let (d, _) = self.known(false).await?;
        let challenge = pkce_challenge(verifier);
        let mut q: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.config.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", &self.config.scopes),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(acr) = &self.config.acr {
            q.push(("acr_values", acr));
        }
        let query = serde_urlencoded::to_string(&q)
            .map_err(|e| OidcError::Provider(format!("requête : {e}")))?;
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Exchanges the code (with the PKCE verifier) for tokens, checks the ID
    /// token and reads userinfo; who signed in.
    pub async fn finish(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
        now_secs: i64,
    ) -> Result<Identity, OidcError> {
        use base64::Engine as _;
        let (d, _) = self.known(false).await?;
        let enc = |s: &str| serde_urlencoded::to_string([("", s)]).map(|v| v[1..].to_owned());
        let basic = match (enc(&self.config.client_id), enc(&self.secret)) {
            (Ok(id), Ok(secret)) => {
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            }
            _ => {
                return Err(OidcError::Provider(
                    "identifiants du client illisibles".into(),
                ));
            }
        };
        let r = http()
            .post(&d.token_endpoint)
            .header("authorization", format!("Basic {basic}"))
            .header("accept", "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Provider(e.without_url().to_string()))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or_default();
        if !status.is_success() {
            let why = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Err(OidcError::Refused(format!(
                "HTTP {} : {why}",
                status.as_u16()
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Malformed("pas de id_token dans la réponse".into()))?
            .to_owned();
        let claims = self.verify(&id_token, now_secs).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(OidcError::Nonce);
        }
        let acr = claims.get("acr").and_then(Value::as_str).map(str::to_owned);
        if let Some(required) = &self.config.acr
            && acr.as_deref() != Some(required.as_str())
        {
            return Err(OidcError::Level {
                required: required.clone(),
                got: acr.unwrap_or_else(|| "aucun".into()),
            });
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Malformed("pas de sub".into()))?
            .to_owned();
        let claim = &self.config.national_id_claim;
        let mut national_id = claims.get(claim).and_then(Value::as_str).map(str::to_owned);
        if national_id.is_none()
            && let (Some(url), Some(access)) = (
                d.userinfo_endpoint.as_deref(),
                body.get("access_token").and_then(Value::as_str),
            )
        {
            let info = self.userinfo(url, access, now_secs).await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(OidcError::Malformed(
                    "userinfo d'un autre sujet que le jeton".into(),
                ));
            }
            national_id = info.get(claim).and_then(Value::as_str).map(str::to_owned);
        }
        Ok(Identity {
            subject,
            national_id,
            acr,
            id_token,
        })
    }

    /// Userinfo, as JSON or as a JWT signed by the provider.
    async fn userinfo(&self, url: &str, access: &str, now_secs: i64) -> Result<Value, OidcError> {
        let r = http()
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| OidcError::Provider(e.without_url().to_string()))?;
        if !r.status().is_success() {
            return Err(OidcError::Provider(format!(
                "userinfo : HTTP {}",
                r.status().as_u16()
            )));
        }
        let jwt = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/jwt"));
        let text = r
            .text()
            .await
            .map_err(|e| OidcError::Provider(e.without_url().to_string()))?;
        if jwt {
            self.verify(text.trim(), now_secs).await
        } else {
            serde_json::from_str(&text).map_err(|e| OidcError::Malformed(format!("userinfo : {e}")))
        }
    }

    /// Checks a JWT of the provider: its signature against the provider's
    /// keys (fetched again once for an unknown key), its issuer, audience and
    /// times on our clock. Its claims.
    pub async fn verify(&self, jwt: &str, now_secs: i64) -> Result<Value, OidcError> {
        let header =
            jsonwebtoken::decode_header(jwt).map_err(|e| OidcError::Malformed(e.to_string()))?;
        let allowed = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
        ];
        if !allowed.contains(&header.alg) {
            return Err(OidcError::Signature);
        }
        let (_, keys) = self.known(false).await?;
        let jwk = match find_key(&keys, header.kid.as_deref()) {
            Some(k) => k,
            None => {
                let (_, keys) = self.known(true).await?;
                find_key(&keys, header.kid.as_deref()).ok_or(OidcError::Signature)?
            }
        };
        let c = signed_claims(jwt, &jwk, header.alg).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e {
                Unsigned::Key => OidcError::Signature,
                Unsigned::Token(e) => match e.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        OidcError::Signature
                    }
                    _ => OidcError::Malformed(e.to_string()),
                },
            }
        })?;
        if c.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(OidcError::Issuer);
        }
        if !names_audience(&c, &self.config.client_id) {
            return Err(OidcError::Audience);
        }
        let exp = c
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(OidcError::Expired)?;
        if exp + LEEWAY_SECS <= now_secs {
            return Err(OidcError::Expired);
        }
        if c.get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf - LEEWAY_SECS > now_secs)
            || c.get("iat")
                .and_then(Value::as_i64)
                .is_some_and(|iat| iat - LEEWAY_SECS > now_secs)
        {
            return Err(OidcError::Expired);
        }
        Ok(c)
    }

    /// The provider's logout URL for a session opened with `id_token`, back
    /// to `after`.
    pub async fn logout_url(&self, id_token: &str, after: &str) -> Option<String> {
        let (d, _) = self.known(false).await.ok()?;
        let end = d.end_session_endpoint?;
        let q = serde_urlencoded::to_string([
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", after),
            ("client_id", self.config.client_id.as_str()),
        ])
        .ok()?;
        let sep = if end.contains('?') { '&' } else { '?' };
        Some(format!("{end}{sep}{q}"))
    }
}

/// The key of `keys` a JWT names by `kid`; without a kid, the only key of a
/// set of one (with several, none can be chosen without doubt).
pub(crate) fn find_key(keys: &JwkSet, kid: Option<&str>) -> Option<jsonwebtoken::jwk::Jwk> {
    match kid {
        Some(kid) => keys.find(kid).cloned(),
        None => match keys.keys.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        },
    }
}

/// Why [`signed_claims`] read nothing.
#[derive(Debug)]
pub(crate) enum Unsigned {
    /// The key itself cannot be used.
    Key,
    /// The token does not check with it (or cannot be read).
    Token(jsonwebtoken::errors::Error),
}

/// The claims of `jwt` once its signature checks with `jwk` under `alg`;
/// times, issuer and audience are the caller's to check (on its clock).
pub(crate) fn signed_claims(
    jwt: &str,
    jwk: &jsonwebtoken::jwk::Jwk,
    alg: Algorithm,
) -> Result<Value, Unsigned> {
    let key = DecodingKey::from_jwk(jwk).map_err(|_| Unsigned::Key)?;
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .map(|d| d.claims)
        .map_err(Unsigned::Token)
}

/// Whether a JWT's `aud` (one value or a list) names `audience`.
pub(crate) fn names_audience(claims: &Value, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// The configured providers, by id.
#[derive(Debug, Default)]
pub struct Providers(HashMap<String, Provider>);

impl Providers {
    /// From the configuration; a clear error for the first unusable one.
    pub fn from_config(c: &[ProviderConfig]) -> Result<Providers, String> {
        let mut all = HashMap::new();
        for p in c {
            let id = p.id.clone();
            if all.insert(id.clone(), Provider::new(p.clone())?).is_some() {
                return Err(format!("fournisseur OIDC {id:?} déclaré deux fois"));
            }
        }
        Ok(Providers(all))
    }

    /// A provider by id.
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.0.get(id)
    }

    /// (id, label) of the providers for patients' accounts or for
    /// professionals', by label.
    pub fn for_accounts(&self, patients: bool) -> Vec<(String, String)> {
        self.buttons()
            .into_iter()
            .filter(|(_, _, for_patients)| *for_patients == patients)
            .map(|(id, label, _)| (id, label))
            .collect()
    }

    /// The login buttons: (id, label, for patients), by label.
    pub fn buttons(&self) -> Vec<(String, String, bool)> {
        let mut v: Vec<(String, String, bool)> = self
            .0
            .values()
            .map(|p| {
                (
                    p.config.id.clone(),
                    p.config.label.clone(),
                    p.config.for_patients,
                )
            })
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }
}

/// The RPPS in a national professional id: PSC's `SubjectNameID` is `8`
/// followed by the RPPS (11 digits); an RPPS alone is taken as is.
pub fn rpps_of(national_id: &str) -> Option<&str> {
    let digits = |s: &str| s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit());
    match national_id.strip_prefix('8') {
        Some(r) if digits(r) => Some(r),
        _ if digits(national_id) => Some(national_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_national_id_gives_the_rpps() {
        assert_eq!(rpps_of("810100000001"), Some("10100000001"));
        assert_eq!(rpps_of("10100000001"), Some("10100000001"));
        // ADELI (prefix 0) or anything else: no RPPS.
        assert_eq!(rpps_of("0751234567"), None);
        assert_eq!(rpps_of("8101000000x1"), None);
        assert_eq!(rpps_of(""), None);
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_provider_is_refused_at_start_with_why() {
        let dir = std::env::temp_dir().join(format!("oidc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let good = ProviderConfig {
            id: "psc".into(),
            label: "Pro Santé Connect".into(),
            issuer: "https://auth.example/realms/psc".into(),
            client_id: "parcours".into(),
            client_secret_file: secret.clone(),
            scopes: default_scopes(),
            acr: Some("eidas1".into()),
            national_id_claim: default_national_id_claim(),
            for_patients: false,
        };
        assert_eq!(good.check().unwrap(), "s3cret");
        let bad = |f: &dyn Fn(&mut ProviderConfig)| {
            let mut c = good.clone();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(bad(&|c| c.id = "PSC!".into()).contains("minuscules"));
        assert!(bad(&|c| c.issuer = "auth.example".into()).contains("issuer"));
        assert!(bad(&|c| c.client_id = " ".into()).contains("client_id"));
        assert!(bad(&|c| c.client_secret_file = dir.join("none")).contains("illisible"));
        std::fs::write(&secret, "\n").unwrap();
        assert!(good.check().unwrap_err().contains("vide"));
        let twice = Providers::from_config(&[good.clone(), good.clone()]);
        assert!(twice.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
