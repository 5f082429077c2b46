//! HL7 v2 escape sequences. In a value, the separators and the escape character
//! itself travel as `\F\` (field), `\S\` (component), `\T\` (sub-component), `\R\`
//! (repetition) and `\E\` (escape); `\Xhh…\` carries raw bytes (read as UTF-8 when
//! valid, else Latin-1); `\.br\` is a line break; `\H\` and `\N\` (highlighting) are
//! dropped. An unknown or unterminated sequence is kept as written, never lost.

use std::borrow::Cow;

use crate::message::Separators;

/// Decodes the escape sequences of a raw value.
pub fn decode<'a>(raw: &'a str, seps: &Separators) -> Cow<'a, str> {
    let esc = seps.escape;
    if !raw.contains(esc) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(esc) {
        out.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + esc.len_utf8()..).unwrap_or("");
        let Some(end) = after.find(esc) else {
            // Unterminated: keep the rest as written.
            out.push_str(rest.get(start..).unwrap_or(""));
            return Cow::Owned(out);
        };
        let seq = after.get(..end).unwrap_or("");
        match seq {
            "F" => out.push(seps.field),
            "S" => out.push(seps.component),
            "T" => out.push(seps.subcomponent),
            "R" => out.push(seps.repetition),
            "E" => out.push(esc),
            ".br" => out.push('\n'),
            "H" | "N" => {}
            s if s.len() > 1 && s.starts_with('X') && s.len() % 2 == 1 => {
                match hex_bytes(s.get(1..).unwrap_or("")) {
                    Some(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => out.push_str(&text),
                        Err(e) => out.extend(e.into_bytes().into_iter().map(char::from)),
                    },
                    None => push_kept(&mut out, esc, seq),
                }
            }
            _ => push_kept(&mut out, esc, seq),
        }
        rest = after.get(end + esc.len_utf8()..).unwrap_or("");
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn push_kept(out: &mut String, esc: char, seq: &str) {
    out.push(esc);
    out.push_str(seq);
    out.push(esc);
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    let b = hex.as_bytes();
    b.chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Encodes a value so that it survives as one field, component or sub-component:
/// separators and the escape character become escape sequences, a line feed becomes
/// `\.br\`, a carriage return `\X0D\`.
pub fn encode<'a>(text: &'a str, seps: &Separators) -> Cow<'a, str> {
    let special = |c: char| {
        c == seps.field
            || c == seps.component
            || c == seps.subcomponent
            || c == seps.repetition
            || c == seps.escape
            || c == '\n'
            || c == '\r'
    };
    if !text.contains(special) {
        return Cow::Borrowed(text);
    }
    let e = seps.escape;
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let code = if c == seps.field {
            "F"
        } else if c == seps.component {
            "S"
        } else if c == seps.subcomponent {
            "T"
        } else if c == seps.repetition {
            "R"
        } else if c == e {
            "E"
        } else if c == '\n' {
            ".br"
        } else if c == '\r' {
            "X0D"
        } else {
            out.push(c);
            continue;
        };
        out.push(e);
        out.push_str(code);
        out.push(e);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Separators {
        Separators::default()
    }

    #[test]
    fn table_of_escapes() {
        let cases = [
            ("plain", "plain"),
            (r"A\F\B", "A|B"),
            (r"A\S\B", "A^B"),
            (r"A\T\B", "A&B"),
            (r"A\R\B", "A~B"),
            (r"C:\E\temp", r"C:\temp"),
            (r"l1\.br\l2", "l1\nl2"),
            (r"\H\gras\N\", "gras"),
            (r"\XC3A9\t\XE9\", "été"),
            (r"\X41\", "A"),
            (r"\Zcustom\", r"\Zcustom\"),
            (r"\XZZ\", r"\XZZ\"),
            (r"\X4\", r"\X4\"),
            (r"unterminated \F", r"unterminated \F"),
            (r"\F\\S\\T\\R\\E\", r"|^&~\"),
        ];
        for (raw, text) in cases {
            assert_eq!(decode(raw, &s()), text, "{raw}");
        }
    }

    #[test]
    fn encoding_round_trips() {
        for text in [
            "a|b^c&d~e\\f",
            "ligne 1\nligne 2",
            "retour\r",
            "rien",
            "",
            "é|ü",
        ] {
            let enc = encode(text, &s());
            assert!(!enc.contains(['|', '^', '&', '~', '\n', '\r']), "{enc}");
            assert_eq!(decode(&enc, &s()), text);
        }
        assert!(matches!(encode("rien", &s()), Cow::Borrowed(_)));
        assert!(matches!(decode("rien", &s()), Cow::Borrowed(_)));
    }

    #[test]
    fn other_separators_are_honoured() {
        let seps = Separators {
            field: '#',
            component: '!',
            repetition: '@',
            escape: '$',
            subcomponent: '%',
            truncation: None,
        };
        assert_eq!(decode("a$F$b$E$", &seps), "a#b$");
        assert_eq!(encode("a#b!c", &seps), "a$F$b$S$c");
    }
}
