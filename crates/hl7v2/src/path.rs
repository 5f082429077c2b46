//! Paths to a value: `PID-3`, `PID-3(2).4.2`, `OBX(3)-5.1`, `MSH-9.2`. Segment
//! occurrence and repetition are 1-based and default to 1; component and
//! sub-component are optional.

use std::fmt;
use std::str::FromStr;

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Segment name (3 characters).
    pub segment: String,
    /// Which occurrence of the segment (1-based).
    pub occurrence: usize,
    /// Field number (1-based; MSH-1 is the field separator).
    pub field: usize,
    /// Repetition (1-based).
    pub repetition: usize,
    /// Component (1-based), if any.
    pub component: Option<usize>,
    /// Sub-component (1-based), if any.
    pub subcomponent: Option<usize>,
}

/// A path that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "chemin HL7 invalide {0:?}: SEG[(n)]-CHAMP[(rép)][.COMP[.SOUS]] attendu, numéros à partir de 1"
)]
pub struct PathError(pub String);

fn number(s: &str) -> Option<usize> {
    s.parse::<usize>().ok().filter(|n| *n >= 1)
}

/// Splits `name(n)` into the name and `n` (default 1).
fn with_index(s: &str) -> Option<(&str, usize)> {
    match s.split_once('(') {
        None => Some((s, 1)),
        Some((name, rest)) => Some((name, number(rest.strip_suffix(')')?)?)),
    }
}

impl FromStr for Path {
    type Err = PathError;
    fn from_str(text: &str) -> Result<Path, PathError> {
        let bad = || PathError(text.chars().take(64).collect());
        let (seg, rest) = text.split_once('-').ok_or_else(bad)?;
        let (segment, occurrence) = with_index(seg).ok_or_else(bad)?;
        if segment.len() != 3
            || !segment
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(bad());
        }
        let mut parts = rest.split('.');
        let (field, repetition) = with_index(parts.next().ok_or_else(bad)?).ok_or_else(bad)?;
        let field = number(field).ok_or_else(bad)?;
        let component = parts
            .next()
            .map(|c| number(c).ok_or_else(bad))
            .transpose()?;
        let subcomponent = parts
            .next()
            .map(|c| number(c).ok_or_else(bad))
            .transpose()?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Path {
            segment: segment.to_owned(),
            occurrence,
            field,
            repetition,
            component,
            subcomponent,
        })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.segment)?;
        if self.occurrence != 1 {
            write!(f, "({})", self.occurrence)?;
        }
        write!(f, "-{}", self.field)?;
        if self.repetition != 1 {
            write!(f, "({})", self.repetition)?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_print() {
        let p: Path = "PID-3(2).4.2".parse().unwrap();
        assert_eq!(
            p,
            Path {
                segment: "PID".into(),
                occurrence: 1,
                field: 3,
                repetition: 2,
                component: Some(4),
                subcomponent: Some(2)
            }
        );
        for text in ["PID-3(2).4.2", "OBX(3)-5", "MSH-9.2", "ZBE-1", "PV1-3.1"] {
            assert_eq!(text.parse::<Path>().unwrap().to_string(), text);
        }
        assert_eq!("PID-3(1).1".parse::<Path>().unwrap().to_string(), "PID-3.1");
    }

    #[test]
    fn bad_paths_are_refused() {
        for text in [
            "",
            "PID",
            "PID-",
            "PID-0",
            "pid-3",
            "PIDX-3",
            "PID-3.0",
            "PID-3(0)",
            "PID(0)-3",
            "PID-3.1.2.3",
            "PID-x",
            "PID-3(2",
        ] {
            assert!(text.parse::<Path>().is_err(), "{text}");
        }
    }
}
