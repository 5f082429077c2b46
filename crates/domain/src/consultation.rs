//! Closing a teleconsultation: the note, the prescription (ordonnance), its
//! payment and the doctor's final approval, and the one rule that ties them:
//! **the patient gets the prescription only once the consultation is paid (or
//! the fee waived) and the doctor has approved it**. Pure: the store keeps the
//! state, every route that could hand the prescription to a patient asks
//! [`release`].

/// Most medication lines on one prescription.
pub const MAX_LINES: usize = 12;
/// Longest note or free text, in characters.
pub const MAX_TEXT: usize = 8_000;
/// Longest field of a medication line, in characters.
pub const MAX_FIELD: usize = 200;

/// One medication on the prescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Medication (name, strength, form), e.g. "Paracétamol 1 g comprimé".
    pub medication: String,
    /// Dose per intake, e.g. "1 comprimé".
    pub dose: String,
    /// How often, e.g. "3 fois par jour".
    pub frequency: String,
    /// For how long, e.g. "5 jours".
    pub duration: String,
}

/// What the doctor writes when closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// The consultation note (for the record, not on the prescription).
    pub note: String,
    /// Medications.
    pub lines: Vec<Line>,
    /// Free text on the prescription (advice, non-drug prescriptions).
    pub free_text: String,
}

/// Why a closing is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClosingError {
    /// Nothing written.
    #[error("la note de consultation est vide")]
    EmptyNote,
    /// A line started but not finished.
    #[error("ligne {0} : indiquez le médicament, la dose, la fréquence et la durée")]
    IncompleteLine(usize),
    /// Too many lines.
    #[error("au plus {MAX_LINES} médicaments par ordonnance")]
    TooManyLines,
    /// A text too long.
    #[error("texte trop long : {0}")]
    TooLong(&'static str),
}

/// Checks and tidies a closing: trims every text, drops lines left wholly
/// empty, refuses a line only partly filled (a dose without a duration is a
/// prescription error, not something to guess).
pub fn check(closing: Closing) -> Result<Closing, ClosingError> {
    let note = closing.note.trim().to_owned();
    if note.is_empty() {
        return Err(ClosingError::EmptyNote);
    }
    if note.chars().count() > MAX_TEXT {
        return Err(ClosingError::TooLong("note"));
    }
    let free_text = closing.free_text.trim().to_owned();
    if free_text.chars().count() > MAX_TEXT {
        return Err(ClosingError::TooLong("texte libre"));
    }
    let mut lines = Vec::new();
    for (i, l) in closing.lines.into_iter().enumerate() {
        let fields = [&l.medication, &l.dose, &l.frequency, &l.duration].map(|f| f.trim());
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        if fields.iter().any(|f| f.is_empty()) {
            return Err(ClosingError::IncompleteLine(i + 1));
        }
        if fields.iter().any(|f| f.chars().count() > MAX_FIELD) {
            return Err(ClosingError::TooLong("ligne de prescription"));
        }
        let [medication, dose, frequency, duration] = fields.map(str::to_owned);
        lines.push(Line {
            medication,
            dose,
            frequency,
            duration,
        });
    }
    if lines.len() > MAX_LINES {
        return Err(ClosingError::TooManyLines);
    }
    Ok(Closing {
        note,
        lines,
        free_text,
    })
}

/// How the fee was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Online, by card, confirmed by the payment provider's signed webhook.
    Card,
    /// At the desk, recorded by a secretary.
    Desk,
    /// Third-party payment (tiers payant): the insurer pays, the patient owes nothing.
    TiersPayant,
    /// Fee waived by the establishment.
    Waived,
}

impl Method {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Method::Card => "card",
            Method::Desk => "desk",
            Method::TiersPayant => "tiers-payant",
            Method::Waived => "waived",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Method> {
        [
            Method::Card,
            Method::Desk,
            Method::TiersPayant,
            Method::Waived,
        ]
        .into_iter()
        .find(|m| m.code() == c)
    }
    /// For people.
    pub fn label_fr(self) -> &'static str {
        match self {
            Method::Card => "payé en ligne par carte",
            Method::Desk => "payé au secrétariat",
            Method::TiersPayant => "tiers payant",
            Method::Waived => "dispensé de paiement",
        }
    }
    /// Whether a secretary may record it at the desk (a card payment is only
    /// ever recorded from the provider's signed confirmation).
    pub fn recordable_at_desk(self) -> bool {
        self != Method::Card
    }
}

/// Why the prescription is withheld from the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Withheld {
    /// Neither paid nor approved.
    #[error(
        "l'ordonnance sera disponible après le règlement de la consultation et la validation du médecin"
    )]
    UnpaidAndUnapproved,
    /// Approved, not paid.
    #[error("l'ordonnance sera disponible après le règlement de la consultation")]
    Unpaid,
    /// Paid, not yet approved.
    #[error("l'ordonnance sera disponible dès que le médecin l'aura validée")]
    Unapproved,
}

/// The release rule: `settled` is the payment method once the fee is paid or
/// waived (`None` while due), `approved` the doctor's final approval.
pub fn release(settled: Option<Method>, approved: bool) -> Result<(), Withheld> {
    match (settled.is_some(), approved) {
        (true, true) => Ok(()),
        (false, false) => Err(Withheld::UnpaidAndUnapproved),
        (false, true) => Err(Withheld::Unpaid),
        (true, false) => Err(Withheld::Unapproved),
    }
}

/// Why a settlement is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// Already settled (by another way): never settled twice.
    #[error("cette consultation est déjà réglée ({})", .0.label_fr())]
    AlreadySettled(Method),
    /// A card payment recorded by hand.
    #[error("un paiement par carte n'est enregistré que sur confirmation du prestataire")]
    CardAtDesk,
}

/// Whether a settlement by `method` may be recorded at the desk, the fee being
/// in state `current`.
pub fn settle_at_desk(current: Option<Method>, method: Method) -> Result<(), SettleError> {
    if !method.recordable_at_desk() {
        return Err(SettleError::CardAtDesk);
    }
    match current {
        Some(m) => Err(SettleError::AlreadySettled(m)),
        None => Ok(()),
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The prescription's unique number from 80 random bits: `ORD-` and sixteen
/// Crockford base-32 characters in groups of four (no I, L, O, U to misread),
/// e.g. `ORD-7K2M-Q9XD-04HT-ZP3B`. It is printed on the prescription and in its
/// QR code; a pharmacist checks it on the verification page.
pub fn number(random: [u8; 10]) -> String {
    let mut bits: u128 = 0;
    for b in random {
        bits = (bits << 8) | u128::from(b);
    }
    let mut out = String::from("ORD");
    for i in 0..16 {
        if i % 4 == 0 {
            out.push('-');
        }
        let shift = 75 - 5 * i;
        let idx = usize::try_from((bits >> shift) & 31).unwrap_or(0);
        out.push(char::from(CROCKFORD.get(idx).copied().unwrap_or(b'0')));
    }
    out
}

/// Reads a number typed or scanned back: case and separators forgiven, the
/// letters people confuse mapped as Crockford says (O→0, I and L→1); `None` if
/// it cannot be one of ours.
pub fn normalise_number(typed: &str) -> Option<String> {
    let mut body: String = typed
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if let Some(rest) = body.strip_prefix("ORD") {
        body = rest.to_owned();
    }
    let body: String = body
        .chars()
        .map(|c| match c {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    if body.len() != 16 || !body.bytes().all(|b| CROCKFORD.contains(&b)) {
        return None;
    }
    let mut out = String::from("ORD");
    for (i, c) in body.chars().enumerate() {
        if i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &str, d: &str, f: &str, du: &str) -> Line {
        Line {
            medication: m.into(),
            dose: d.into(),
            frequency: f.into(),
            duration: du.into(),
        }
    }

    #[test]
    fn a_closing_is_trimmed_and_empty_lines_dropped() {
        let c = check(Closing {
            note: "  Douleur contrôlée.  ".into(),
            lines: vec![
                line(" Paracétamol 1 g ", "1 cp", "3 fois par jour", "5 jours"),
                line("", " ", "", ""),
            ],
            free_text: " Repos ".into(),
        })
        .unwrap();
        assert_eq!(c.note, "Douleur contrôlée.");
        assert_eq!(c.free_text, "Repos");
        assert_eq!(
            c.lines,
            vec![line(
                "Paracétamol 1 g",
                "1 cp",
                "3 fois par jour",
                "5 jours"
            )]
        );
    }

    #[test]
    fn a_closing_without_note_or_with_a_partial_line_is_refused() {
        let empty = Closing {
            note: "   ".into(),
            lines: vec![],
            free_text: String::new(),
        };
        assert_eq!(check(empty.clone()), Err(ClosingError::EmptyNote));
        let partial = Closing {
            note: "ok".into(),
            lines: vec![
                line("A", "1", "1/j", "2 j"),
                line("Amoxicilline", "1 g", "", "7 jours"),
            ],
            ..empty.clone()
        };
        assert_eq!(check(partial), Err(ClosingError::IncompleteLine(2)));
        let many = Closing {
            note: "ok".into(),
            lines: vec![line("A", "1", "1/j", "2 j"); MAX_LINES + 1],
            ..empty.clone()
        };
        assert_eq!(check(many), Err(ClosingError::TooManyLines));
        let long = Closing {
            note: "x".repeat(MAX_TEXT + 1),
            ..empty.clone()
        };
        assert_eq!(check(long), Err(ClosingError::TooLong("note")));
        let long_field = Closing {
            note: "ok".into(),
            lines: vec![line(&"x".repeat(MAX_FIELD + 1), "1", "1/j", "2 j")],
            ..empty
        };
        assert_eq!(
            check(long_field),
            Err(ClosingError::TooLong("ligne de prescription"))
        );
    }

    #[test]
    fn the_prescription_is_released_only_when_settled_and_approved() {
        assert_eq!(release(None, false), Err(Withheld::UnpaidAndUnapproved));
        assert_eq!(release(None, true), Err(Withheld::Unpaid));
        for m in [
            Method::Card,
            Method::Desk,
            Method::TiersPayant,
            Method::Waived,
        ] {
            assert_eq!(release(Some(m), false), Err(Withheld::Unapproved));
            assert_eq!(release(Some(m), true), Ok(()));
        }
    }

    #[test]
    fn the_desk_records_each_fee_once_and_never_a_card_payment() {
        assert_eq!(settle_at_desk(None, Method::Desk), Ok(()));
        assert_eq!(settle_at_desk(None, Method::TiersPayant), Ok(()));
        assert_eq!(settle_at_desk(None, Method::Waived), Ok(()));
        assert_eq!(
            settle_at_desk(None, Method::Card),
            Err(SettleError::CardAtDesk)
        );
        assert_eq!(
            settle_at_desk(Some(Method::Card), Method::Desk),
            Err(SettleError::AlreadySettled(Method::Card))
        );
        for m in [
            Method::Card,
            Method::Desk,
            Method::TiersPayant,
            Method::Waived,
        ] {
            assert_eq!(Method::from_code(m.code()), Some(m));
        }
        assert_eq!(Method::from_code("cash"), None);
    }

    #[test]
    fn numbers_are_grouped_crockford_and_read_back_forgivingly() {
        assert_eq!(number([0; 10]), "ORD-0000-0000-0000-0000");
        assert_eq!(number([0xFF; 10]), "ORD-ZZZZ-ZZZZ-ZZZZ-ZZZZ");
        // 0x01 in the last byte is the lowest bit: last character "1".
        let mut r = [0u8; 10];
        r[9] = 1;
        assert_eq!(number(r), "ORD-0000-0000-0000-0001");
        // The first five bits are the first character.
        r = [0u8; 10];
        r[0] = 0b1000_0000;
        assert_eq!(number(r), "ORD-G000-0000-0000-0000");
        let n = number([7, 1, 200, 3, 99, 42, 0, 255, 18, 77]);
        assert_eq!(normalise_number(&n).as_deref(), Some(n.as_str()));
        assert_eq!(
            normalise_number(&n.to_lowercase().replace('-', " ")).as_deref(),
            Some(n.as_str())
        );
        assert_eq!(
            normalise_number("ord-oooo-iiii-llll-0000").as_deref(),
            Some("ORD-0000-1111-1111-0000")
        );
        assert_eq!(normalise_number("ORD-0000-0000-0000-000"), None);
        assert_eq!(normalise_number("ORD-0000-0000-0000-000U"), None);
        assert_eq!(normalise_number(""), None);
    }
}
