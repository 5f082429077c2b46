//! How a notice reaches a patient (an appointment's confirmation or
//! reminder, a questionnaire reminder, an alert taken in hand): by SMS, by
//! e-mail or on the portal only, as the patient chose on their account, when
//! the way chosen is open; otherwise the next one that is, the portal always.

/// A way a notice reaches the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A text message to their mobile.
    Sms,
    /// An e-mail to their confirmed address.
    Email,
    /// The portal only ("Mes avis").
    Portal,
}

impl Channel {
    /// Every channel, in the order the account page lists them.
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Portal];

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Portal => "portail",
        }
    }

    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|x| x.code() == c)
    }

    /// For people.
    pub fn label_fr(self) -> &'static str {
        match self {
            Channel::Sms => "par SMS",
            Channel::Email => "par e-mail",
            Channel::Portal => "sur le portail seulement",
        }
    }
}

/// What is open to reach this patient now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reach {
    /// An SMS centre is configured and the patient has a mobile number.
    pub sms: bool,
    /// Mail is configured and the patient confirmed an address.
    pub email: bool,
}

/// The channel a notice takes: the patient's choice when it is open (none
/// made: e-mail, then SMS), else the other one that is, else the portal.
pub fn channel(chosen: Option<Channel>, reach: Reach) -> Channel {
    let open = |c: Channel| match c {
        Channel::Sms => reach.sms,
        Channel::Email => reach.email,
        Channel::Portal => true,
    };
    let order: &[Channel] = match chosen {
        Some(Channel::Portal) => &[Channel::Portal],
        Some(Channel::Sms) => &[Channel::Sms, Channel::Email, Channel::Portal],
        Some(Channel::Email) | None => &[Channel::Email, Channel::Sms, Channel::Portal],
    };
    order
        .iter()
        .copied()
        .find(|c| open(*c))
        .unwrap_or(Channel::Portal)
}

/// A phone number (as `demographics::normalize_phone` keeps it) as an SMS
/// destination in international form without `+` (SMPP TON 1, NPI 1): a
/// French mobile `06…`/`07…` or `+33 6…`/`+33 7…` becomes `336…`/`337…`;
/// another country's `+…` number is kept; a landline gives `None`.
pub fn sms_number(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let international = if let Some(rest) = phone.strip_prefix('+') {
        let d: String = rest.chars().filter(char::is_ascii_digit).collect();
        if let Some(fr) = d.strip_prefix("33") {
            (fr.len() == 9 && (fr.starts_with('6') || fr.starts_with('7'))).then(|| d.clone())?
        } else {
            (8..=15).contains(&d.len()).then_some(d)?
        }
    } else if digits.len() == 10 && (digits.starts_with("06") || digits.starts_with("07")) {
        format!("33{}", &digits[1..])
    } else {
        return None;
    };
    Some(international)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patient_s_choice_when_open_else_the_next_one() {
        let all = Reach {
            sms: true,
            email: true,
        };
        let mail_only = Reach {
            sms: false,
            email: true,
        };
        let sms_only = Reach {
            sms: true,
            email: false,
        };
        assert_eq!(channel(Some(Channel::Sms), all), Channel::Sms);
        assert_eq!(channel(Some(Channel::Sms), mail_only), Channel::Email);
        assert_eq!(channel(Some(Channel::Email), sms_only), Channel::Sms);
        assert_eq!(
            channel(Some(Channel::Portal), all),
            Channel::Portal,
            "her choice"
        );
        assert_eq!(channel(None, all), Channel::Email);
        assert_eq!(channel(None, sms_only), Channel::Sms);
        assert_eq!(channel(None, Reach::default()), Channel::Portal);
        assert_eq!(
            channel(Some(Channel::Sms), Reach::default()),
            Channel::Portal
        );
        for c in Channel::ALL {
            assert_eq!(Channel::from_code(c.code()), Some(c));
        }
        assert_eq!(Channel::from_code("pigeon"), None);
    }

    #[test]
    fn mobiles_become_sms_destinations() {
        assert_eq!(sms_number("0612345678").as_deref(), Some("33612345678"));
        assert_eq!(sms_number("0712345678").as_deref(), Some("33712345678"));
        assert_eq!(sms_number("+33612345678").as_deref(), Some("33612345678"));
        assert_eq!(sms_number("+32470123456").as_deref(), Some("32470123456"));
        assert_eq!(sms_number("0145678901"), None, "a landline");
        assert_eq!(sms_number("+33145678901"), None, "a French landline");
        assert_eq!(sms_number("061234"), None);
        assert_eq!(sms_number("+1"), None);
    }
}
