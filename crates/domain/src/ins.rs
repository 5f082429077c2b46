//! INS — Identité Nationale de Santé: the 13-character NIR or NIA plus its 2-digit
//! control key. The key is `97 − (N mod 97)` where N is the 13 characters read as a
//! number after replacing the Corsican départements `2A` by `19` and `2B` by `18`.
//!
//! Whether a matricule is a NIR or a NIA cannot be told from its digits (not
//! confirmed by the public specification), so the kind comes with the number: from
//! the identifier system (OID) that carried it.

use std::fmt;

/// OID of the INS-NIR identifier system.
pub const OID_INS_NIR: &str = "1.2.250.1.213.1.4.8";
/// OID of the INS-NIA identifier system (temporary number).
pub const OID_INS_NIA: &str = "1.2.250.1.213.1.4.9";
/// OID of the INS-NIR test system.
pub const OID_INS_NIR_TEST: &str = "1.2.250.1.213.1.4.10";
/// OID of the INS-NIR demonstration system.
pub const OID_INS_NIR_DEMO: &str = "1.2.250.1.213.1.4.11";

/// Which register issued the matricule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsKind {
    /// Numéro d'inscription au répertoire (the "social security number").
    Nir,
    /// Numéro d'identification d'attente (temporary, before a NIR exists).
    Nia,
}

impl InsKind {
    /// The identifier system OID for this kind.
    pub fn oid(self) -> &'static str {
        match self {
            InsKind::Nir => OID_INS_NIR,
            InsKind::Nia => OID_INS_NIA,
        }
    }

    /// The kind for an OID, if it is an INS system (test and demo systems count as NIR).
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            OID_INS_NIR | OID_INS_NIR_TEST | OID_INS_NIR_DEMO => Some(InsKind::Nir),
            OID_INS_NIA => Some(InsKind::Nia),
            _ => None,
        }
    }

    /// Stable code used in storage (`NIR` or `NIA`).
    pub fn code(self) -> &'static str {
        match self {
            InsKind::Nir => "NIR",
            InsKind::Nia => "NIA",
        }
    }

    /// Reads a storage code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "NIR" => Some(InsKind::Nir),
            "NIA" => Some(InsKind::Nia),
            _ => None,
        }
    }
}

/// Why a text is not an INS. Messages are in French: they reach the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsError {
    /// Not 15 characters.
    #[error("l'INS doit compter 15 caractères (13 pour le matricule et 2 pour la clé), reçu {0}")]
    Length(usize),
    /// A character other than a digit, or a letter outside the Corsican département.
    #[error("caractère non autorisé en position {position} de l'INS")]
    Character {
        /// 1-based position of the offending character.
        position: usize,
    },
    /// The sex digit is not 1, 2, 3, 4, 7 or 8.
    #[error("le premier chiffre de l'INS (sexe) doit être 1, 2, 3, 4, 7 ou 8")]
    Sex,
    /// The control key does not match the matricule.
    #[error("la clé de contrôle de l'INS est fausse: attendue {expected:02}, reçue {given:02}")]
    Key {
        /// Key computed from the 13 characters.
        expected: u8,
        /// Key given in the last two characters.
        given: u8,
    },
}

/// A checked INS: matricule (13 characters) and key. Built only by [`Ins::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ins {
    kind: InsKind,
    matricule: String,
    key: u8,
}

impl Ins {
    /// Checks the format and the control key of a 15-character INS.
    /// Spaces are tolerated (people copy them from the carte Vitale) and removed.
    pub fn parse(kind: InsKind, text: &str) -> Result<Self, InsError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let chars: Vec<char> = compact.chars().map(|c| c.to_ascii_uppercase()).collect();
        if chars.len() != 15 {
            return Err(InsError::Length(chars.len()));
        }
        let mut numeric = String::with_capacity(13);
        for (i, c) in chars.iter().take(13).enumerate() {
            match (i, c) {
                (_, '0'..='9') => numeric.push(*c),
                // Corsica: département 2A or 2B at positions 6-7 (index 5-6).
                (6, 'A') if chars.get(5) == Some(&'2') => {
                    numeric.pop();
                    numeric.push_str("19");
                }
                (6, 'B') if chars.get(5) == Some(&'2') => {
                    numeric.pop();
                    numeric.push_str("18");
                }
                _ => return Err(InsError::Character { position: i + 1 }),
            }
        }
        for (i, c) in chars.iter().enumerate().skip(13) {
            if !c.is_ascii_digit() {
                return Err(InsError::Character { position: i + 1 });
            }
        }
        if !matches!(chars.first(), Some('1' | '2' | '3' | '4' | '7' | '8')) {
            return Err(InsError::Sex);
        }
        let n: u64 = numeric
            .parse()
            .map_err(|_| InsError::Character { position: 1 })?;
        let expected = (97 - n % 97) as u8;
        let given: u8 = chars
            .iter()
            .skip(13)
            .collect::<String>()
            .parse()
            .map_err(|_| InsError::Character { position: 14 })?;
        if expected != given {
            return Err(InsError::Key { expected, given });
        }
        Ok(Ins {
            kind,
            matricule: chars.iter().take(13).collect(),
            key: given,
        })
    }

    /// NIR or NIA.
    pub fn kind(&self) -> InsKind {
        self.kind
    }

    /// The 13-character matricule, without key.
    pub fn matricule(&self) -> &str {
        &self.matricule
    }

    /// The 15-character value (matricule and key) as exchanged.
    pub fn value(&self) -> String {
        format!("{}{:02}", self.matricule, self.key)
    }
}

impl fmt::Display for Ins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:02}", self.matricule, self.key)
    }
}

/// Computes the key of a 13-character matricule (used to build test and demo data).
pub fn key_for(matricule: &str) -> Option<u8> {
    let replaced = matricule
        .to_ascii_uppercase()
        .replacen("2A", "19", 1)
        .replacen("2B", "18", 1);
    if replaced.len() != 13 || !replaced.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = replaced.parse().ok()?;
    Some((97 - n % 97) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ins_from_the_specification() {
        let ins = Ins::parse(InsKind::Nir, "279035121518989").unwrap();
        assert_eq!(ins.matricule(), "2790351215189");
        assert_eq!(ins.value(), "279035121518989");
        assert_eq!(ins.kind().oid(), OID_INS_NIR);
    }

    #[test]
    fn official_samples_with_wrong_keys_are_refused() {
        for (text, expected, given) in [
            ("276037510669380", 0, 80),
            ("260058815400244", 33, 44),
            ("123456789012244", 0, 44),
            ("123456789012345", 0, 45),
        ] {
            match Ins::parse(InsKind::Nir, text) {
                Err(InsError::Key {
                    expected: e,
                    given: g,
                }) => {
                    assert_eq!(g, given, "{text}");
                    if expected != 0 {
                        assert_eq!(e, expected, "{text}");
                    }
                    assert_ne!(e, g);
                }
                other => panic!("{text}: expected a key error, got {other:?}"),
            }
        }
    }

    #[test]
    fn corrected_sample_is_valid() {
        assert!(Ins::parse(InsKind::Nir, "260058815400233").is_ok());
    }

    #[test]
    fn corsica_2a_and_2b_are_handled() {
        for matricule in ["185082A123456", "285082B123456"] {
            let key = key_for(matricule).unwrap();
            let text = format!("{matricule}{key:02}");
            let ins = Ins::parse(InsKind::Nir, &text).unwrap();
            assert_eq!(ins.value(), text);
            // The same key with the other Corsican département is wrong.
            let swapped = if matricule.contains("2A") {
                matricule.replace("2A", "2B")
            } else {
                matricule.replace("2B", "2A")
            };
            assert!(matches!(
                Ins::parse(InsKind::Nir, &format!("{swapped}{key:02}")),
                Err(InsError::Key { .. })
            ));
        }
        // 2A -> 19: the key is computed on 1850819123456.
        assert_eq!(key_for("185082A123456"), key_for("1850819123456"));
    }

    #[test]
    fn letters_outside_corsica_are_refused() {
        assert_eq!(
            Ins::parse(InsKind::Nir, "1850833A2345612"),
            Err(InsError::Character { position: 8 })
        );
        assert_eq!(
            Ins::parse(InsKind::Nir, "18508XA12345612"),
            Err(InsError::Character { position: 6 })
        );
        assert_eq!(
            Ins::parse(InsKind::Nir, "2790351215189AB"),
            Err(InsError::Character { position: 14 })
        );
    }

    #[test]
    fn length_and_sex_are_checked() {
        assert_eq!(
            Ins::parse(InsKind::Nir, "27903512151898"),
            Err(InsError::Length(14))
        );
        assert_eq!(Ins::parse(InsKind::Nir, ""), Err(InsError::Length(0)));
        let m = "5790351215189";
        let k = key_for(m).unwrap();
        assert_eq!(
            Ins::parse(InsKind::Nir, &format!("{m}{k:02}")),
            Err(InsError::Sex)
        );
    }

    #[test]
    fn spaces_are_tolerated() {
        let ins = Ins::parse(InsKind::Nia, "2 79 03 51 215 189 89").unwrap();
        assert_eq!(ins.value(), "279035121518989");
        assert_eq!(ins.kind(), InsKind::Nia);
    }

    #[test]
    fn kinds_map_to_oids_and_codes() {
        assert_eq!(InsKind::from_oid(OID_INS_NIA), Some(InsKind::Nia));
        assert_eq!(InsKind::from_oid(OID_INS_NIR_TEST), Some(InsKind::Nir));
        assert_eq!(InsKind::from_oid("1.2.3"), None);
        assert_eq!(InsKind::from_code(InsKind::Nia.code()), Some(InsKind::Nia));
        assert_eq!(InsKind::from_code("x"), None);
    }
}
