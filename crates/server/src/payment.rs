//! Online payment through a Stripe-compatible provider: a Checkout Session is
//! created over the provider's HTTP API (form-encoded, bearer secret key, an
//! idempotency key so a double click opens one session), the patient pays on
//! the provider's page, and the provider confirms by a signed webhook. The
//! signature is checked as Stripe documents it: header
//! `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! (several `v1` while a secret is rolled), refused when older than five
//! minutes. Only the signed webhook settles a consultation; the return page
//! the patient's browser comes back to proves nothing.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How old a signed webhook may be (Stripe's default tolerance).
pub const TOLERANCE_SECONDS: i64 = 300;

/// The provider, as configured.
#[derive(Clone)]
pub struct Provider {
    api: String,
    secret_key: String,
    webhook_secret: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// A checkout session opened.
#[derive(Debug, Clone, Deserialize)]
pub struct Checkout {
    /// `cs_…`.
    pub id: String,
    /// Where to send the patient.
    pub url: String,
}

/// What may go wrong with the provider.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Not reachable, or no answer in time.
    #[error("prestataire de paiement injoignable : {0}")]
    Unreachable(String),
    /// It answered with an error.
    #[error("le prestataire de paiement a refusé la demande (HTTP {status}) : {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// It answered something else than a checkout session.
    #[error("réponse du prestataire de paiement illisible")]
    BadAnswer,
}

/// What one checkout asks for.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    /// Our reference (the appointment id), sent as `client_reference_id`.
    pub reference: &'a str,
    /// Amount in euro cents.
    pub amount_cents: i64,
    /// What the patient sees on the provider's page.
    pub label: &'a str,
    /// Where the provider sends the patient after paying.
    pub success_url: &'a str,
    /// Where it sends them if they give up.
    pub cancel_url: &'a str,
    /// The patient's e-mail, to prefill.
    pub email: Option<&'a str>,
    /// Makes a repeated request open the same session.
    pub idempotency_key: &'a str,
    /// The establishment's connected account (`acct_…`), sent as
    /// `Stripe-Account`: the session is opened on its behalf and the money
    /// goes to it; `None`: the platform's own account.
    pub account: Option<&'a str>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}
#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

impl Provider {
    /// A provider from the configuration, if online payment is configured; an
    /// error names what is missing when only part of it is.
    pub fn from_config(c: &crate::config::Config) -> Result<Option<Provider>, String> {
        let (api, key, hook) = (
            c.payment_api_url.as_deref(),
            c.payment_secret_key.as_deref(),
            c.payment_webhook_secret.as_deref(),
        );
        match (api, key, hook) {
            (None, None, None) => Ok(None),
            (Some(api), Some(key), Some(hook)) => {
                let api = api.trim_end_matches('/').to_owned();
                if !(api.starts_with("http://") || api.starts_with("https://")) {
                    return Err(format!(
                        "PARCOURS_PAYMENT_API_URL doit commencer par https:// : {api}"
                    ));
                }
                if api.starts_with("https://") && !cfg!(feature = "tls") {
                    return Err("PARCOURS_PAYMENT_API_URL en https:// : ce binaire est construit sans TLS (cargo build --features tls)".into());
                }
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .connect_timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| format!("client HTTP : {e}"))?;
                Ok(Some(Provider {
                    api,
                    secret_key: key.to_owned(),
                    webhook_secret: hook.to_owned(),
                    http,
                }))
            }
            _ => Err("paiement en ligne : PARCOURS_PAYMENT_API_URL, PARCOURS_PAYMENT_SECRET_KEY et PARCOURS_PAYMENT_WEBHOOK_SECRET vont ensemble".into()),
        }
    }

    /// The secret webhooks are signed with.
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// Opens a Checkout Session (`POST /v1/checkout/sessions`).
    pub async fn create_checkout(&self, r: &CheckoutRequest<'_>) -> Result<Checkout, PaymentError> {
        let amount = r.amount_cents.to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("mode", "payment"),
            ("client_reference_id", r.reference),
            ("metadata[appointment]", r.reference),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "eur"),
            ("line_items[0][price_data][unit_amount]", &amount),
            ("line_items[0][price_data][product_data][name]", r.label),
            ("success_url", r.success_url),
            ("cancel_url", r.cancel_url),
            ("locale", "fr"),
        ];
        if let Some(e) = r.email {
            form.push(("customer_email", e));
        }
        let mut req = self
            .http
            .post(format!("{}/v1/checkout/sessions", self.api))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", r.idempotency_key);
        if let Some(account) = r.account {
            req = req.header("Stripe-Account", account);
        }
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| PaymentError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PaymentError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.error.message)
                .unwrap_or_default();
            return Err(PaymentError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        let c: Checkout = serde_json::from_slice(&body).map_err(|_| PaymentError::BadAnswer)?;
        if !c.id.starts_with("cs_")
            || !(c.url.starts_with("https://") || c.url.starts_with("http://"))
        {
            return Err(PaymentError::BadAnswer);
        }
        Ok(c)
    }
}

/// Why a webhook is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No usable `t=` and `v1=` in the header.
    #[error("en-tête Stripe-Signature illisible")]
    Malformed,
    /// Signed too long ago (or in the future): a replay.
    #[error("signature hors délai")]
    Stale,
    /// No `v1` matches.
    #[error("signature invalide")]
    Mismatch,
}

/// The `v1` signature of `payload` signed at `t` with `secret`, in hex.
pub fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a `Stripe-Signature` header for `payload` at `now_s` (Unix seconds).
pub fn verify(
    secret: &str,
    header: &str,
    payload: &[u8],
    now_s: i64,
) -> Result<(), SignatureError> {
    let mut t: Option<i64> = None;
    let mut v1: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => {
                if let Ok(b) = hex::decode(v) {
                    v1.push(b);
                }
            }
            _ => {}
        }
    }
    let (Some(t), false) = (t, v1.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    if (now_s - t).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let matches = v1.iter().any(|sig| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // Constant-time comparison.
        mac.verify_slice(sig).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The part of an event the platform acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// e.g. `checkout.session.completed`.
    pub kind: String,
    /// The connected account it happened on (`acct_…`), absent for the
    /// platform's own.
    pub account: Option<String>,
    /// The checkout session (for checkout events).
    pub session: Option<SessionObject>,
}

/// A checkout session as the event carries it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionObject {
    /// `cs_…`.
    pub id: String,
    /// Our reference.
    pub client_reference_id: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// Amount, in the currency's smallest unit.
    pub amount_total: Option<i64>,
    /// e.g. `eur`.
    pub currency: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    account: Option<String>,
    data: RawData,
}
#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
}

/// Reads an event (after its signature was checked).
pub fn parse_event(payload: &[u8]) -> Result<Event, String> {
    let raw: RawEvent =
        serde_json::from_slice(payload).map_err(|e| format!("événement illisible : {e}"))?;
    let session = if raw.kind.starts_with("checkout.session.") {
        Some(
            serde_json::from_value::<SessionObject>(raw.data.object)
                .map_err(|e| format!("session illisible : {e}"))?,
        )
    } else {
        None
    };
    Ok(Event {
        id: raw.id,
        kind: raw.kind,
        account: raw.account,
        session,
    })
}

/// Whether this event says the session is paid.
pub fn is_payment(e: &Event) -> Option<&SessionObject> {
    let paid_kind = matches!(
        e.kind.as_str(),
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
    );
    e.session
        .as_ref()
        .filter(|s| paid_kind && s.payment_status == "paid")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = br#"{"id":"evt_1"}"#;
    // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",b"1700000000.{\"id\":\"evt_1\"}",hashlib.sha256).hexdigest())'
    const PYTHON_SIG: &str = "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925";

    #[test]
    fn the_provider_is_configured_whole_or_not_at_all() {
        let mut c = crate::config::Config::default();
        assert!(Provider::from_config(&c).unwrap().is_none());
        c.payment_api_url = Some("http://127.0.0.1:9/".into());
        let e = Provider::from_config(&c).unwrap_err();
        assert!(e.contains("vont ensemble"), "{e}");
        c.payment_secret_key = Some("sk_test_x".into());
        c.payment_webhook_secret = Some("whsec_x".into());
        let p = Provider::from_config(&c).unwrap().unwrap();
        assert_eq!(p.api, "http://127.0.0.1:9");
        assert!(!format!("{p:?}").contains("sk_test_x"), "no secret in logs");
        c.payment_api_url = Some("ftp://pay".into());
        assert!(Provider::from_config(&c).is_err());
        if !cfg!(feature = "tls") {
            c.payment_api_url = Some("https://api.stripe.com".into());
            assert!(Provider::from_config(&c).unwrap_err().contains("sans TLS"));
        }
    }

    #[test]
    fn signatures_match_an_independent_hmac() {
        assert_eq!(sign("whsec_test", 1_700_000_000, PAYLOAD), PYTHON_SIG);
    }

    #[test]
    fn a_header_is_accepted_within_tolerance_with_any_matching_v1() {
        let h = format!("t=1700000000,v1={PYTHON_SIG}");
        assert_eq!(
            verify("whsec_test", &h, PAYLOAD, 1_700_000_000 + 300),
            Ok(())
        );
        assert_eq!(
            verify("whsec_test", &h, PAYLOAD, 1_700_000_000 - 300),
            Ok(())
        );
        // While a secret is rolled the header carries two v1; a v0 is ignored.
        let rolled = format!(
            "t=1700000000, v1={}, v1={PYTHON_SIG}, v0=abcd",
            "00".repeat(32)
        );
        assert_eq!(
            verify("whsec_test", &rolled, PAYLOAD, 1_700_000_000),
            Ok(())
        );
    }

    #[test]
    fn stale_tampered_wrong_secret_and_malformed_headers_are_refused() {
        let h = format!("t=1700000000,v1={PYTHON_SIG}");
        assert_eq!(
            verify("whsec_test", &h, PAYLOAD, 1_700_000_000 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("whsec_test", &h, br#"{"id":"evt_2"}"#, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_other", &h, PAYLOAD, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = format!("t=1700000001,v1={PYTHON_SIG}");
        assert_eq!(
            verify("whsec_test", &moved, PAYLOAD, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "t=1700000000",
            &format!("v1={PYTHON_SIG}"),
            "t=soon,v1=00",
            "t=1700000000,v1=zz",
        ] {
            assert_eq!(
                verify("whsec_test", bad, PAYLOAD, 1_700_000_000),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn events_are_read_and_only_paid_sessions_count() {
        let e = parse_event(
            br#"{"id":"evt_9","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_1","object":"checkout.session","client_reference_id":"apt-1","payment_status":"paid","amount_total":3000,"currency":"eur","extra":1}}}"#,
        )
        .unwrap();
        let s = is_payment(&e).unwrap();
        assert_eq!(
            (
                s.id.as_str(),
                s.client_reference_id.as_deref(),
                s.amount_total,
                s.currency.as_deref()
            ),
            ("cs_test_1", Some("apt-1"), Some(3000), Some("eur"))
        );
        let unpaid = parse_event(
            br#"{"id":"evt_10","type":"checkout.session.completed","data":{"object":{"id":"cs_test_2","payment_status":"unpaid"}}}"#,
        )
        .unwrap();
        assert_eq!(is_payment(&unpaid), None);
        assert_eq!(e.account, None, "the platform's own account");
        let connected = parse_event(
            br#"{"id":"evt_13","type":"checkout.session.completed","account":"acct_1","data":{"object":{"id":"cs_test_3","payment_status":"paid"}}}"#,
        )
        .unwrap();
        assert_eq!(connected.account.as_deref(), Some("acct_1"));
        let other = parse_event(
            br#"{"id":"evt_11","type":"charge.refunded","data":{"object":{"id":"ch_1"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (other.session, other.kind.as_str()),
            (None, "charge.refunded")
        );
        assert!(parse_event(b"not json").is_err());
        assert!(parse_event(br#"{"id":"evt_12","type":"checkout.session.completed","data":{"object":{"id":"cs_3"}}}"#).is_err());
    }
}
