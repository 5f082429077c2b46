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

/// A FINESS number (établissement géographique or juridique): nine characters,
/// the department (two digits, or `2A`/`2B` in Corsica) then six digits and a
/// Luhn check digit computed over the first eight, Corsica's letter read as 0
/// (the department being 20).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finess(String);

/// Why a text is not a FINESS number (French, safe to show).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FinessError {
    /// Not nine characters of the right kind.
    #[error("numéro FINESS invalide : 9 caractères attendus (chiffres, 2A ou 2B pour la Corse)")]
    Shape,
    /// The check digit does not match.
    #[error("numéro FINESS invalide : la clé de contrôle ne correspond pas")]
    Key,
}

impl Finess {
    /// Checks shape and key.
    pub fn parse(text: &str) -> Result<Self, FinessError> {
        let t = text.trim().to_ascii_uppercase();
        let chars: Vec<char> = t.chars().collect();
        let corsica = t.starts_with("2A") || t.starts_with("2B");
        if chars.len() != 9
            || !chars
                .iter()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || (corsica && i == 1))
        {
            return Err(FinessError::Shape);
        }
        // The key digits: Corsica's letter counts as 0.
        let digits: String = chars
            .iter()
            .enumerate()
            .map(|(i, c)| if corsica && i == 1 { '0' } else { *c })
            .collect();
        if luhn_valid(&digits) {
            Ok(Finess(t))
        } else {
            Err(FinessError::Key)
        }
    }

    /// The nine characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an establishment does (its discipline of care), which says where
/// orientation requests may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Médecine, chirurgie, obstétrique (acute care).
    Mco,
    /// Soins de suite et de réadaptation (SMR).
    Ssr,
    /// Hospitalisation à domicile.
    Had,
    /// Psychiatrie.
    Psy,
    /// Soins de longue durée.
    Sld,
}

impl Activity {
    /// Every activity, in display order.
    pub const ALL: [Activity; 5] = [
        Activity::Mco,
        Activity::Ssr,
        Activity::Had,
        Activity::Psy,
        Activity::Sld,
    ];

    /// Storage and file code.
    pub fn code(self) -> &'static str {
        match self {
            Activity::Mco => "MCO",
            Activity::Ssr => "SSR",
            Activity::Had => "HAD",
            Activity::Psy => "PSY",
            Activity::Sld => "SLD",
        }
    }

    /// Reads a code (case-insensitive).
    pub fn from_code(code: &str) -> Option<Self> {
        Activity::ALL
            .into_iter()
            .find(|a| a.code().eq_ignore_ascii_case(code.trim()))
    }

    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            Activity::Mco => "Médecine, chirurgie, obstétrique",
            Activity::Ssr => "Soins de suite et de réadaptation",
            Activity::Had => "Hospitalisation à domicile",
            Activity::Psy => "Psychiatrie",
            Activity::Sld => "Soins de longue durée",
        }
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

    #[test]
    fn finess_key_and_shape() {
        // The demo's numbers are built with their Luhn key.
        for good in [
            "450000013",
            "450000021",
            "450000039",
            "450000047",
            "450000054",
        ] {
            assert_eq!(Finess::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(Finess::parse("450000014"), Err(FinessError::Key));
        assert_eq!(Finess::parse("45000001"), Err(FinessError::Shape));
        assert_eq!(Finess::parse("4500000133"), Err(FinessError::Shape));
        assert_eq!(Finess::parse("45000A013"), Err(FinessError::Shape));
        // Corsica: the letter counts as 0 in the key.
        let d = luhn_digit("20000001").unwrap();
        assert!(Finess::parse(&format!("2A000001{d}")).is_ok());
        assert!(Finess::parse(&format!("2b000001{d}")).is_ok());
        let wrong = if d == '0' { '1' } else { '0' };
        assert_eq!(
            Finess::parse(&format!("2A000001{wrong}")),
            Err(FinessError::Key)
        );
        assert_eq!(Finess::parse("2C0000010"), Err(FinessError::Shape));
    }

    #[test]
    fn activity_codes_round_trip() {
        for a in Activity::ALL {
            assert_eq!(Activity::from_code(a.code()), Some(a));
            assert_eq!(Activity::from_code(&a.code().to_lowercase()), Some(a));
            assert!(!a.label_fr().is_empty());
        }
        assert_eq!(Activity::from_code("EHPAD"), None);
    }
}
