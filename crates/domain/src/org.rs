//! Organisations and professionals: roles held per establishment, RPPS numbers.

/// A role a user (or an API client) holds in one establishment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Administrator of the establishment: users, audit, settings; identity vigilance.
    Admin,
    /// Médecin.
    Doctor,
    /// Infirmier(e) (IDE, IPA).
    Nurse,
    /// Secrétaire médicale.
    Secretary,
    /// Gestionnaire de lits.
    BedManager,
    /// Coordinateur régional: beds and orientation across the territory, no patient data.
    Coordinator,
    /// A machine client feeding or reading the integration API (never a person).
    Integration,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Doctor,
        Role::Nurse,
        Role::Secretary,
        Role::BedManager,
        Role::Coordinator,
        Role::Integration,
    ];

    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Doctor => "doctor",
            Role::Nurse => "nurse",
            Role::Secretary => "secretary",
            Role::BedManager => "bed_manager",
            Role::Coordinator => "coordinator",
            Role::Integration => "integration",
        }
    }

    /// Reads a storage code.
    pub fn from_code(code: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    /// French label for the UI.
    pub fn label_fr(self) -> &'static str {
        match self {
            Role::Admin => "Administrateur",
            Role::Doctor => "Médecin",
            Role::Nurse => "Infirmier(e)",
            Role::Secretary => "Secrétaire médicale",
            Role::BedManager => "Gestionnaire de lits",
            Role::Coordinator => "Coordinateur régional",
            Role::Integration => "Client d'intégration",
        }
    }
}

/// An RPPS number: 11 digits whose last digit is a Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rpps(String);

/// A text that is not an RPPS number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("numéro RPPS invalide: 11 chiffres avec clé de Luhn attendus")]
pub struct RppsError;

/// Luhn sum check over a string of digits.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The Luhn check digit to append to `body` (used to build demo numbers).
pub fn luhn_digit(body: &str) -> Option<char> {
    (0..=9u8)
        .map(|d| char::from(b'0' + d))
        .find(|d| luhn_valid(&format!("{body}{d}")))
}

impl Rpps {
    /// Checks length, digits and the Luhn key.
    pub fn parse(text: &str) -> Result<Self, RppsError> {
        let t = text.trim();
        if t.len() == 11 && luhn_valid(t) {
            Ok(Rpps(t.to_owned()))
        } else {
            Err(RppsError)
        }
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
            assert!(!r.label_fr().is_empty());
        }
        assert_eq!(Role::from_code("root"), None);
    }

    #[test]
    fn rpps_luhn() {
        let body = "1000001234";
        let d = luhn_digit(body).unwrap();
        let good = format!("{body}{d}");
        assert!(Rpps::parse(&good).is_ok());
        let bad_digit = if d == '0' { '1' } else { '0' };
        assert_eq!(Rpps::parse(&format!("{body}{bad_digit}")), Err(RppsError));
        assert_eq!(Rpps::parse("123"), Err(RppsError));
        assert_eq!(Rpps::parse("1000001234a"), Err(RppsError));
        // A well-known Luhn example.
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid(""));
    }
}
