//! Benchmarks live in `benches/`; this library holds what they share: the
//! sample messages of `scripts/bench-hl7` and the web login of the load clients.

/// An IHE PAM France admission as hospitals send it (UTF-8).
pub const ADT_A01: &str = "MSH|^~\\&|GAM|CHU-X|PARCOURS|GHT|20240306111154||ADT^A01^ADT_A01|3975|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM\r\
EVN||20240306111154||||20240306111154\r\
PID|1||000003^^^CHU-X&000897406&N^PI~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS^^20101207||LEFÈVRE^HÉLÈNE^HÉLÈNE MARIE^^^^L||19790328|F|||28 Av de Breteuil^^PARIS^^75007^FRA^H~^^^^^^BDL^^63220|||||S||24000006^^^CHU-X&000897406&M^AN|||||||1|||||N||VALI|20240306111153\r\
PV1|1|I|REA^12^1^CHU-X&000897406&M^O||||||||||||||||000897406^^^CHU-X&000897406&M^VN^^20210409||||||||||||||||||||||||||||||||V\r\
ZBE|001^CHU-X^000897406|20240306110000||INSERT|N||Réa^^^^^CHU-X&000897406&N^UF^^^6268|Réa^^^^^CHU-X&000897406&N^UF^^^6268|HMS\r\
ZFA|ACTIF|20240306111154|||||||INO|20240306111154|IC|20240306111154\r";

/// Common French birth names (INSEE's most frequent), a third of the
/// identities the load clients send; the rest are made of syllables.
const FAMILIES: [&str; 40] = [
    "MARTIN",
    "BERNARD",
    "THOMAS",
    "PETIT",
    "ROBERT",
    "RICHARD",
    "DURAND",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "SIMON",
    "MICHEL",
    "LEFÈVRE",
    "LEROY",
    "ROUX",
    "DAVID",
    "BERTRAND",
    "MOREL",
    "FOURNIER",
    "GIRARD",
    "BONNET",
    "DUPONT",
    "LAMBERT",
    "FONTAINE",
    "ROUSSEAU",
    "VINCENT",
    "MULLER",
    "FAURE",
    "ANDRÉ",
    "MERCIER",
    "BLANC",
    "GUÉRIN",
    "BOYER",
    "GARNIER",
    "CHEVALIER",
    "FRANÇOIS",
    "LEGRAND",
    "GAUTHIER",
    "GARCIA",
    "PERRIN",
];
const SYLLABLES: [&str; 24] = [
    "MA", "LO", "RI", "BER", "DU", "VAL", "CHA", "TEL", "MON", "GUI", "LE", "NOR", "PI", "SAR",
    "DE", "FON", "GRA", "BOU", "CO", "LIN", "TA", "VER", "QUE", "RAN",
];
const GIVEN: [(&str, char); 24] = [
    ("Marie", 'F'),
    ("Jean", 'M'),
    ("Monique", 'F'),
    ("Pierre", 'M'),
    ("Françoise", 'F'),
    ("Michel", 'M'),
    ("Catherine", 'F'),
    ("André", 'M'),
    ("Nathalie", 'F'),
    ("Philippe", 'M'),
    ("Isabelle", 'F'),
    ("Alain", 'M'),
    ("Sylvie", 'F'),
    ("Bernard", 'M'),
    ("Martine", 'F'),
    ("Jacques", 'M'),
    ("Hélène", 'F'),
    ("Marc", 'M'),
    ("Christine", 'F'),
    ("Daniel", 'M'),
    ("Nicole", 'F'),
    ("Patrick", 'M'),
    ("Josiane", 'F'),
    ("Gérard", 'M'),
];

/// A pseudo-random number fixed by `(sender, i)` (splitmix64), so that every
/// run of a load client sends the same identities.
fn mix(sender: usize, i: usize) -> u64 {
    let mut z = ((sender as u64) << 40 ^ i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The identity of message `i` of `sender`: birth name, given name, sex and
/// birth date (YYYYMMDD, 1930 to 2009), spread as a clinic's patients are
/// (many share a common name, most names are rare).
pub fn identity(sender: usize, i: usize) -> (String, &'static str, char, String) {
    let h = mix(sender, i);
    let pick = |shift: u32, n: usize| ((h >> shift) as usize) % n;
    let family = if pick(0, 3) == 0 {
        FAMILIES[pick(2, FAMILIES.len())].to_owned()
    } else {
        [pick(8, 24), pick(13, 24), pick(18, 24)]
            .iter()
            .map(|&k| SYLLABLES[k])
            .collect()
    };
    let (given, sex) = GIVEN[pick(24, GIVEN.len())];
    let birth = format!(
        "{}{:02}{:02}",
        1930 + pick(30, 80),
        1 + pick(38, 12),
        1 + pick(44, 28)
    );
    (family, given, sex, birth)
}

/// An ADT message of the load clients: MSH (trigger `event` at `at`,
/// control id `{run}-{sender}-{i}`), EVN, the PID of [`identity`] with IPP
/// `{of}S{sender}N{i}` at the demo hospital and `address` (PID-11), then
/// `rest` (the segments after PID, each ended by `\r`).
fn adt(
    (run, of): (&str, &str),
    (sender, i): (usize, usize),
    (event, at): (&str, &str),
    address: &str,
    rest: &str,
) -> String {
    let (family, given, sex, birth) = identity(sender, i);
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|{at}||ADT^{event}|{run}-{sender}-{i}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8\r\
         EVN||{at}\r\
         PID|1||{of}S{sender}N{i}^^^CHVL&450000021&M^PI||{family}^{given}^{given}^^^^L||{birth}|{sex}|||{address}\r\
         {rest}"
    )
}

/// The identity feed the MLLP load clients send (ADT^A28): control id
/// `{run}-{sender}-{i}`, IPP `{run}S{sender}N{i}` at the demo hospital, the
/// identity of [`identity`].
pub fn identity_feed(run: &str, sender: usize, i: usize) -> String {
    adt(
        (run, run),
        (sender, i),
        ("A28^ADT_A05", "20261123101500"),
        "^^^^^^BDL^^45234",
        "PV1|1|I|REA^12^1\r",
    )
}

/// An update (A08) of the record [`identity_feed`] created in run `of` for
/// the same sender and number: the same traits, another address; control id
/// `{run}-{sender}-{i}`.
pub fn identity_update(run: &str, of: &str, sender: usize, i: usize) -> String {
    adt(
        (run, of),
        (sender, i),
        ("A08^ADT_A01", "20261124101500"),
        &format!("{i} rue des Lilas^^Orléans^^45000^FRA^H"),
        "PV1|1|I|REA^12^1\r",
    )
}

/// An admission (A01, a stay with its movement and bed) of the record
/// [`identity_feed`] created in run `of` for the same sender and number;
/// control id `{run}-{sender}-{i}`, a visit and a movement of its own.
pub fn admission(run: &str, of: &str, sender: usize, i: usize) -> String {
    movement(
        (run, of, run),
        (sender, i),
        ("A01^ADT_A01", "20261124101500"),
        12,
    )
}

/// A transfer (A02, another bed) of the record [`identity_feed`] created in
/// run `of` within the stay [`admission`] opened in run `stay`, for the same
/// sender and number; control id `{run}-{sender}-{i}`, a movement of its own.
pub fn transfer(run: &str, (of, stay): (&str, &str), sender: usize, i: usize) -> String {
    movement(
        (run, of, stay),
        (sender, i),
        ("A02^ADT_A02", "20261124111500"),
        13,
    )
}

/// A movement (`event` at `at`) of the record run `of` created, in the stay
/// (visit `{stay}V{sender}N{i}`) to bed `{i}` of room `room` of REA, with a
/// movement id of its own (`{run}M{sender}N{i}`).
fn movement(
    (run, of, stay): (&str, &str, &str),
    (sender, i): (usize, usize),
    (event, at): (&str, &str),
    room: u32,
) -> String {
    adt(
        (run, of),
        (sender, i),
        (event, at),
        "^^^^^^BDL^^45234",
        &format!(
            "PV1|1|I|REA^{room}^{i}||||||||||||||||{stay}V{sender}N{i}^^^CHVL&450000021&M^VN\r\
             ZBE|{run}M{sender}N{i}^CHVL|{at}||INSERT|N\r"
        ),
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
