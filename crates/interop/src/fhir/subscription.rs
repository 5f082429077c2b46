//! FHIR R4 Subscription: what a client posts (read strictly: an element
//! Parcours would not honour is refused) and what it reads back. The signing
//! secret travels in an extension, only in the client's POST and in the 201
//! that answers it; header values are never shown again (they may hold
//! credentials).

use serde_json::{Value, json};

use super::FhirInputError;
use super::output::instant;

/// The extension carrying the rest-hook signing secret (HMAC-SHA256).
pub const EXT_SECRET: &str = "urn:parcours:fhir:subscription-secret";

/// Headers a client may not set on its notifications (Parcours sets them).
const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-parcours-signature",
    "x-parcours-subscription",
];

/// A Subscription as posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSubscription {
    /// `status` (`requested`, `active` or `off`).
    pub status: String,
    /// `reason`.
    pub reason: String,
    /// `criteria`.
    pub criteria: String,
    /// `channel.type`.
    pub channel: String,
    /// `channel.endpoint` (rest-hook).
    pub endpoint: Option<String>,
    /// `channel.payload`: `application/fhir+json`, or none.
    pub payload: Option<String>,
    /// `channel.header`, each `Name: value`.
    pub headers: Vec<String>,
    /// `end` (Unix ms).
    pub end_ms: Option<i64>,
    /// The signing secret, when the client chose it.
    pub secret: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SubscriptionIn {
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    extension: Vec<ExtensionIn>,
    status: String,
    #[serde(default)]
    contact: Option<Value>,
    #[serde(default)]
    end: Option<String>,
    reason: String,
    criteria: String,
    #[serde(default)]
    error: Option<String>,
    channel: ChannelIn,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExtensionIn {
    url: String,
    #[serde(default)]
    value_string: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    header: Vec<String>,
}

/// Reads a posted Subscription; every refusal says which element and why.
pub fn parse_subscription(bytes: &[u8]) -> Result<ParsedSubscription, FhirInputError> {
    let s: SubscriptionIn = serde_json::from_slice(bytes)
        .map_err(|e| FhirInputError::Structure(format!("Subscription illisible : {e}")))?;
    // Accepted and not kept: the server assigns the id, meta and error.
    let _ = (&s.id, &s.meta, &s.text, &s.contact, &s.error);
    let rule = |m: &str| Err(FhirInputError::Rule(m.to_owned()));
    if s.resource_type != "Subscription" {
        return Err(FhirInputError::Structure(format!(
            "resourceType {:?} : Subscription attendu",
            s.resource_type
        )));
    }
    if !matches!(s.status.as_str(), "requested" | "active" | "off") {
        return rule("status : requested, active ou off attendu");
    }
    if s.reason.trim().is_empty() {
        return rule("reason obligatoire");
    }
    let mut secret = None;
    for e in s.extension {
        if e.url != EXT_SECRET {
            return Err(FhirInputError::NotSupported(format!(
                "extension {:?} non prise en charge",
                e.url
            )));
        }
        match e.value_string {
            Some(v) if v.chars().count() >= 16 && !v.chars().any(char::is_whitespace) => {
                secret = Some(v)
            }
            _ => return rule("secret de signature : 16 caractères au moins, sans espace"),
        }
    }
    let channel = s.channel.kind;
    let (endpoint, payload) = match channel.as_str() {
        "rest-hook" => {
            let endpoint = s
                .channel
                .endpoint
                .filter(|e| !e.trim().is_empty())
                .ok_or_else(|| {
                    FhirInputError::Rule("channel.endpoint obligatoire pour rest-hook".into())
                })?;
            let url_ok = (endpoint.starts_with("https://") || endpoint.starts_with("http://"))
                && !endpoint
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
                && endpoint.len() <= 2000;
            if !url_ok {
                return rule("channel.endpoint : URL http(s) attendue");
            }
            let payload = match s.channel.payload.as_deref() {
                None | Some("") => None,
                Some("application/fhir+json" | "application/json") => {
                    Some("application/fhir+json".to_owned())
                }
                Some(other) => {
                    return Err(FhirInputError::NotSupported(format!(
                        "channel.payload {other:?} : application/fhir+json ou absent"
                    )));
                }
            };
            (Some(endpoint), payload)
        }
        "websocket" => (None, None),
        other => {
            return Err(FhirInputError::NotSupported(format!(
                "channel.type {other:?} non pris en charge (rest-hook, websocket)"
            )));
        }
    };
    for h in &s.channel.header {
        let Some((name, value)) = h.split_once(':') else {
            return rule("channel.header : « Nom: valeur » attendu");
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok || value.chars().any(|c| c.is_control()) {
            return rule("channel.header : nom ou valeur invalide");
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(FhirInputError::Rule(format!(
                "channel.header : {name} est posé par Parcours"
            )));
        }
    }
    let end_ms = match s.end {
        None => None,
        Some(e) => Some(
            e.parse::<jiff::Timestamp>()
                .map_err(|_| FhirInputError::Rule(format!("end {e:?} : instant attendu")))?
                .as_millisecond(),
        ),
    };
    Ok(ParsedSubscription {
        status: s.status,
        reason: s.reason,
        criteria: s.criteria,
        channel,
        endpoint,
        payload,
        headers: s.channel.header,
        end_ms,
        secret,
    })
}

/// What a Subscription shows.
#[derive(Debug, Clone)]
pub struct SubscriptionView<'a> {
    /// Id.
    pub id: String,
    /// Status code.
    pub status: &'a str,
    /// Reason.
    pub reason: &'a str,
    /// Criteria.
    pub criteria: &'a str,
    /// Channel type.
    pub channel: &'a str,
    /// Endpoint.
    pub endpoint: Option<&'a str>,
    /// Payload.
    pub payload: Option<&'a str>,
    /// Header names (values are not shown back).
    pub headers: &'a [String],
    /// End.
    pub end_ms: Option<i64>,
    /// Last delivery error.
    pub error: Option<&'a str>,
    /// Version.
    pub version: i64,
    /// Last change.
    pub updated_ms: i64,
    /// The secret: only in the answer to the creation.
    pub secret: Option<&'a str>,
}

/// A Subscription resource.
pub fn subscription(v: &SubscriptionView<'_>) -> Value {
    let mut channel = json!({"type": v.channel});
    if let Some(c) = channel.as_object_mut() {
        if let Some(e) = v.endpoint {
            c.insert("endpoint".into(), json!(e));
        }
        if let Some(p) = v.payload {
            c.insert("payload".into(), json!(p));
        }
        if !v.headers.is_empty() {
            let masked: Vec<String> = v
                .headers
                .iter()
                .map(|h| format!("{}: ***", h.split(':').next().unwrap_or("").trim()))
                .collect();
            c.insert("header".into(), json!(masked));
        }
    }
    let mut r = json!({
        "resourceType": "Subscription",
        "id": v.id,
        "meta": {"versionId": v.version.to_string(), "lastUpdated": instant(v.updated_ms)},
        "status": v.status,
        "reason": v.reason,
        "criteria": v.criteria,
        "channel": channel,
    });
    if let Some(o) = r.as_object_mut() {
        if let Some(end) = v.end_ms {
            o.insert("end".into(), json!(instant(end)));
        }
        if let Some(e) = v.error {
            o.insert("error".into(), json!(e));
        }
        if let Some(s) = v.secret {
            o.insert(
                "extension".into(),
                json!([{"url": EXT_SECRET, "valueString": s}]),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(v: Value) -> Result<ParsedSubscription, FhirInputError> {
        parse_subscription(v.to_string().as_bytes())
    }

    fn hook() -> Value {
        json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "Séjours vers le DPI",
            "criteria": "Encounter",
            "channel": {"type": "rest-hook", "endpoint": "https://dpi.example/hook",
                        "payload": "application/fhir+json", "header": ["Authorization: Bearer abc"]},
            "extension": [{"url": EXT_SECRET, "valueString": "0123456789abcdef"}],
            "end": "2027-01-01T00:00:00Z"
        })
    }

    #[test]
    fn a_rest_hook_is_read_with_its_secret_headers_and_end() {
        let s = parse(hook()).unwrap();
        assert_eq!(s.channel, "rest-hook");
        assert_eq!(s.endpoint.as_deref(), Some("https://dpi.example/hook"));
        assert_eq!(s.payload.as_deref(), Some("application/fhir+json"));
        assert_eq!(s.headers, vec!["Authorization: Bearer abc".to_owned()]);
        assert_eq!(s.secret.as_deref(), Some("0123456789abcdef"));
        assert_eq!(s.end_ms, Some(1_798_761_600_000));
        let ws = parse(
            json!({"resourceType": "Subscription", "status": "requested", "reason": "r",
            "criteria": "Flag", "channel": {"type": "websocket"}}),
        )
        .unwrap();
        assert_eq!(
            (ws.channel.as_str(), ws.endpoint, ws.secret),
            ("websocket", None, None)
        );
    }

    #[test]
    fn every_refusal_names_the_element() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|v| v["resourceType"] = json!("Patient")),
                "Subscription attendu",
            ),
            (Box::new(|v| v["status"] = json!("error")), "status"),
            (Box::new(|v| v["reason"] = json!(" ")), "reason"),
            (
                Box::new(|v| v["channel"]["type"] = json!("email")),
                "channel.type",
            ),
            (
                Box::new(|v| v["channel"]["endpoint"] = json!("ftp://x")),
                "channel.endpoint",
            ),
            (
                Box::new(|v| {
                    v["channel"].as_object_mut().unwrap().remove("endpoint");
                }),
                "channel.endpoint obligatoire",
            ),
            (
                Box::new(|v| v["channel"]["payload"] = json!("application/xml")),
                "channel.payload",
            ),
            (
                Box::new(|v| v["channel"]["header"] = json!(["no colon"])),
                "Nom: valeur",
            ),
            (
                Box::new(|v| v["channel"]["header"] = json!(["X-Parcours-Signature: forged"])),
                "posé par Parcours",
            ),
            (
                Box::new(|v| v["channel"]["header"] = json!(["Bad Name: x"])),
                "nom ou valeur",
            ),
            (Box::new(|v| v["end"] = json!("demain")), "end"),
            (
                Box::new(|v| v["extension"][0]["valueString"] = json!("court")),
                "16 caractères",
            ),
            (
                Box::new(|v| v["extension"][0]["url"] = json!("http://other")),
                "extension",
            ),
            (
                Box::new(|v| v["channel"]["unknown"] = json!(1)),
                "unknown field",
            ),
        ];
        for (change, expected) in cases {
            let mut v = hook();
            change(&mut v);
            let e = parse(v).unwrap_err().to_string();
            assert!(e.contains(expected), "{expected:?} not in {e:?}");
        }
    }

    #[test]
    fn a_subscription_shows_header_names_only_and_its_secret_once() {
        let headers = vec!["Authorization: Bearer abc".to_owned()];
        let mut view = SubscriptionView {
            id: "s1".into(),
            status: "active",
            reason: "r",
            criteria: "Encounter",
            channel: "rest-hook",
            endpoint: Some("https://x/h"),
            payload: None,
            headers: &headers,
            end_ms: None,
            error: Some("HTTP 500"),
            version: 2,
            updated_ms: 0,
            secret: Some("0123456789abcdef"),
        };
        let r = subscription(&view);
        assert_eq!(r["channel"]["header"], json!(["Authorization: ***"]));
        assert_eq!(r["extension"][0]["valueString"], "0123456789abcdef");
        assert_eq!(r["error"], "HTTP 500");
        assert_eq!(r["meta"]["versionId"], "2");
        view.secret = None;
        assert!(subscription(&view).get("extension").is_none());
    }
}
