//! Writing messages: set values by path, escaped on the way in; encode as ER7 with
//! `\r` after each segment. MSH-1 and MSH-2 come from the separators.

use crate::escape;
use crate::message::{Separators, trim_field};
use crate::path::{Path, PathError};

use crate::message::FieldTree as FieldData;

/// A message under construction.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    seps: Separators,
    segments: Vec<(String, Vec<FieldData>)>,
}

/// The element at `i`, growing the vector with defaults as needed.
#[allow(clippy::indexing_slicing)] // `i` is in bounds: the vector was just grown past it.
fn slot<T: Default>(v: &mut Vec<T>, i: usize) -> &mut T {
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

impl Builder {
    /// An empty message with the usual separators `|^~\&`.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// An empty message with other separators.
    pub fn with_separators(seps: Separators) -> Builder {
        Builder {
            seps,
            segments: Vec::new(),
        }
    }

    /// Appends a segment.
    pub fn segment(&mut self, name: &str) -> &mut Builder {
        self.segments.push((name.to_owned(), Vec::new()));
        self
    }

    /// Sets the value at `path` (escaped), replacing what was there at that level.
    /// The segment occurrence must exist, or be the next one (then it is appended).
    pub fn set(&mut self, path: &str, value: &str) -> Result<&mut Builder, PathError> {
        let enc = escape::encode(value, &self.seps).into_owned();
        self.set_raw(path, &enc)
    }

    /// Sets a value already in ER7 form at `path` (not escaped: the separators in it
    /// split it into repetitions, components and sub-components below that level).
    pub fn set_raw(&mut self, path: &str, raw: &str) -> Result<&mut Builder, PathError> {
        let p: Path = path.parse()?;
        let bad = || PathError(path.to_owned());
        if p.segment == "MSH" && p.field <= 2 {
            return Err(bad());
        }
        let existing = self
            .segments
            .iter()
            .filter(|(n, _)| *n == p.segment)
            .count();
        if p.occurrence == existing + 1 {
            self.segment(&p.segment);
        } else if p.occurrence > existing {
            return Err(bad());
        }
        let seg = self
            .segments
            .iter_mut()
            .filter(|(n, _)| *n == p.segment)
            .nth(p.occurrence - 1)
            .ok_or_else(bad)?;
        let field = slot(&mut seg.1, p.field - 1);
        let rep = slot(field, p.repetition - 1);
        let seps = self.seps;
        let subs = |t: &str| {
            t.split(seps.subcomponent)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let comps = |t: &str| t.split(seps.component).map(subs).collect::<Vec<_>>();
        match (p.component, p.subcomponent) {
            (None, _) => {
                let mut parts = raw.split(seps.repetition);
                *rep = comps(parts.next().unwrap_or(""));
                for (next, extra) in (p.repetition..).zip(parts) {
                    *slot(field, next) = comps(extra);
                }
            }
            (Some(c), None) => *slot(rep, c - 1) = subs(raw),
            (Some(c), Some(s)) => *slot(slot(rep, c - 1), s - 1) = raw.to_owned(),
        }
        Ok(self)
    }

    fn encode_field(&self, f: &FieldData) -> String {
        let f = trim_field(f.clone());
        let (r, c, s) = (
            self.seps.repetition.to_string(),
            self.seps.component.to_string(),
            self.seps.subcomponent.to_string(),
        );
        f.iter()
            .map(|comps| {
                comps
                    .iter()
                    .map(|subs| subs.join(&s))
                    .collect::<Vec<_>>()
                    .join(&c)
            })
            .collect::<Vec<_>>()
            .join(&r)
    }

    /// The message in ER7, each segment ended by `\r`.
    pub fn encode(&self) -> String {
        let fsep = self.seps.field;
        let mut out = String::with_capacity(256);
        for (name, fields) in &self.segments {
            out.push_str(name);
            let mut encoded: Vec<String> = fields.iter().map(|f| self.encode_field(f)).collect();
            if name == "MSH" {
                out.push(fsep);
                out.push_str(&self.seps.encoding_characters());
                encoded = encoded.into_iter().skip(2).collect();
            }
            while encoded.last().is_some_and(String::is_empty) {
                encoded.pop();
            }
            for f in encoded {
                out.push(fsep);
                out.push_str(&f);
            }
            out.push('\r');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn builds_and_reads_back() {
        let mut b = Builder::new();
        b.segment("MSH");
        b.set("MSH-3", "PARCOURS").unwrap();
        b.set("MSH-9.1", "ORU")
            .unwrap()
            .set("MSH-9.2", "R01")
            .unwrap()
            .set("MSH-9.3", "ORU_R01")
            .unwrap();
        b.set("MSH-10", "42").unwrap();
        b.set("PID-3(2).4.2", "1.2.250.1.213.1.4.8").unwrap();
        b.set("PID-5.1", "D'Almeida|Sá").unwrap();
        b.set("OBX-5", "ligne 1\nligne 2 ^ fin").unwrap();
        b.set("OBX(2)-5", "second").unwrap();
        let text = b.encode();
        assert!(
            text.starts_with("MSH|^~\\&|PARCOURS||||||ORU^R01^ORU_R01|42\r"),
            "{text}"
        );
        assert!(
            text.contains("PID|||~^^^&1.2.250.1.213.1.4.8||D'Almeida\\F\\Sá\r"),
            "{text}"
        );
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.get("PID-5.1").unwrap().as_deref(), Some("D'Almeida|Sá"));
        assert_eq!(
            m.get("OBX-5").unwrap().as_deref(),
            Some("ligne 1\nligne 2 ^ fin")
        );
        assert_eq!(m.get("OBX(2)-5").unwrap().as_deref(), Some("second"));
        assert_eq!(m.control_id(), Some("42"));
    }

    #[test]
    fn bad_targets_are_refused() {
        let mut b = Builder::new();
        assert!(b.set("MSH-1", "x").is_err());
        assert!(b.set("MSH-2", "x").is_err());
        assert!(b.set("OBX(2)-5", "skips OBX(1)").is_err());
        assert!(b.set("nope", "x").is_err());
        b.set_raw("PID-3", "a^b").unwrap();
        assert_eq!(b.encode(), "PID|||a^b\r");
        b.set("PID-3.2", "c").unwrap();
        assert_eq!(b.encode(), "PID|||a^c\r");
    }
}
