//! Benchmarks live in `benches/`; this library holds what they share: the
//! sample messages of `scripts/bench-hl7` and the web login of the load clients.

/// An IHE PAM France admission as hospitals send it (UTF-8).
pub const ADT_A01: &str = "MSH|^~\\&|GAM|CHU-X|PARCOURS|GHT|20240306111154||ADT^A01^ADT_A01|3975|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM\r\
EVN||20240306111154||||20240306111154\r\
PID|1||000003^^^CHU-X&000897406&N^PI~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS^^20101207||LEFÈVRE^HÉLÈNE^HÉLÈNE MARIE^^^^L||19790328|F|||28 Av de Breteuil^^PARIS^^75007^FRA^H~^^^^^^BDL^^63220|||||S||24000006^^^CHU-X&000897406&M^AN|||||||1|||||N||VALI|20240306111153\r\
PV1|1|I|REA^12^1^CHU-X&000897406&M^O||||||||||||||||000897406^^^CHU-X&000897406&M^VN^^20210409||||||||||||||||||||||||||||||||V\r\
ZBE|001^CHU-X^000897406|20240306110000||INSERT|N||Réa^^^^^CHU-X&000897406&N^UF^^^6268|Réa^^^^^CHU-X&000897406&N^UF^^^6268|HMS\r\
ZFA|ACTIF|20240306111154|||||||INO|20240306111154|IC|20240306111154\r";

/// The identity feed the MLLP load clients send (ADT^A28): control id
/// `{run}-{sender}-{i}`, IPP `{run}S{sender}N{i}` at the demo hospital.
pub fn identity_feed(run: &str, sender: usize, i: usize) -> String {
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|20261123101500||ADT^A28^ADT_A05|{run}-{sender}-{i}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8\r\
         EVN||20261123101500\r\
         PID|1||{run}S{sender}N{i}^^^CHVL&450000021&M^PI||CHARGE^Hélène^Hélène Marie^^^^L||19790315|F|||^^^^^^BDL^^45234\r\
         PV1|1|I|REA^12^1\r"
    )
}

/// Sends one MLLP `frame` on `stream` and reads its ACK, waiting `patience`
/// at most for each read; what follows the ACK stays in `buf`.
pub async fn exchange(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    frame: &[u8],
    patience: std::time::Duration,
) -> Result<Vec<u8>, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(frame).await?;
    let mut chunk = [0u8; 4096];
    loop {
        if let hl7v2::mllp::Frame::Message {
            start,
            end,
            consumed,
        } = hl7v2::mllp::next_frame(buf)
        {
            let ack = buf.get(start..end).unwrap_or(&[]).to_vec();
            buf.drain(..consumed);
            return Ok(ack);
        }
        let n = tokio::time::timeout(patience, stream.read(&mut chunk))
            .await
            .map_err(|_| "ACK timeout")??;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}

/// The load clients' error.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Every demo account's password.
pub const PASSWORD: &str = "parcours-demo";
/// The demo professionals' TOTP secret.
pub const TOTP_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";

/// The demo's integration client (OAuth2 client credentials).
pub const DEMO_CLIENT: (&str, &str) = ("demo-integration", "demo-secret");

/// An access token for API client `client_id` (client credentials).
pub async fn client_token(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    secret: &str,
) -> Result<String, Error> {
    let r: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(r["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned())
}

/// A cookie's value from a response.
pub fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// The CSRF token of a page's first form.
pub fn csrf(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + 19;
    Some(html.get(at..)?.split('"').next()?.to_owned())
}

/// Logs a demo account in (password, then TOTP for a professional); the
/// session cookie value.
pub async fn session(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    totp: bool,
) -> Result<String, Error> {
    let page = http.get(format!("{base}/login")).send().await?;
    let login_cookie = cookie(&page, "parcours_login_csrf").ok_or("no login cookie")?;
    let token = csrf(&page.text().await?).ok_or("no csrf")?;
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", format!("parcours_login_csrf={login_cookie}"))
        .form(&[("username", user), ("password", PASSWORD), ("csrf", &token)])
        .send()
        .await?;
    let half = cookie(&r, "parcours_session").ok_or("password step refused")?;
    if !totp {
        return Ok(half);
    }
    let page = http
        .get(format!("{base}/login/totp"))
        .header("cookie", format!("parcours_session={half}"))
        .send()
        .await?;
    let token = csrf(&page.text().await?).ok_or("no csrf on the TOTP page")?;
    let secret = totp_rs::Secret::Encoded(TOTP_SECRET.into()).to_bytes()?;
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret)?;
    let r = http
        .post(format!("{base}/login/totp"))
        .header("cookie", format!("parcours_session={half}"))
        .form(&[
            ("code", totp.generate_current()?.as_str()),
            ("csrf", &token),
        ])
        .send()
        .await?;
    Ok(cookie(&r, "parcours_session").ok_or("TOTP step refused")?)
}

/// The `p` quantile of sorted durations, in milliseconds (NaN when empty).
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
