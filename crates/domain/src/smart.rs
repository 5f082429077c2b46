//! SMART on FHIR system scopes, for API clients (backend services): v2
//! (`system/Patient.rs`, `system/*.cruds`) and v1 (`system/Patient.read`,
//! `system/*.write`, `system/*.*`) read into one form; what a set of scopes
//! allows (a resource type and one of c, r, u, d, s); what a client asking
//! for scopes gets of those it is allowed. They narrow the establishment
//! policy, never widen it.

use std::fmt;

/// One interaction on a resource type, as SMART v2 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// c: create.
    Create,
    /// r: read by id.
    Read,
    /// u: update.
    Update,
    /// d: delete.
    Delete,
    /// s: search.
    Search,
}

impl Interaction {
    /// Its letter in a SMART v2 scope.
    pub fn letter(self) -> char {
        ORDER
            .iter()
            .find(|(_, i)| *i == self)
            .map_or('?', |(c, _)| *c)
    }

    fn bit(self) -> u8 {
        match self {
            Interaction::Create => 1,
            Interaction::Read => 2,
            Interaction::Update => 4,
            Interaction::Delete => 8,
            Interaction::Search => 16,
        }
    }
}

/// One system scope: a resource type (`None`: every type) and its interactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `Patient`, or `None` for `*`.
    pub resource: Option<String>,
    perms: u8,
}

const ORDER: [(char, Interaction); 5] = [
    ('c', Interaction::Create),
    ('r', Interaction::Read),
    ('u', Interaction::Update),
    ('d', Interaction::Delete),
    ('s', Interaction::Search),
];

impl Scope {
    /// Reads one scope; why not, in French.
    pub fn parse(s: &str) -> Result<Scope, String> {
        let bad = || format!("portée {s:?} : system/Ressource.cruds attendu (SMART v2)");
        let rest = s.strip_prefix("system/").ok_or_else(|| {
            format!("portée {s:?} : seules les portées system/… servent aux clients machine")
        })?;
        let (resource, perms) = rest.split_once('.').ok_or_else(bad)?;
        let resource = match resource {
            "*" => None,
            r if !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphabetic()) => Some(r.to_owned()),
            _ => return Err(bad()),
        };
        let all = Interaction::Create.bit()
            | Interaction::Read.bit()
            | Interaction::Update.bit()
            | Interaction::Delete.bit()
            | Interaction::Search.bit();
        let perms = match perms {
            "read" => Interaction::Read.bit() | Interaction::Search.bit(),
            "write" => {
                Interaction::Create.bit() | Interaction::Update.bit() | Interaction::Delete.bit()
            }
            "*" => all,
            letters => {
                // v2: a non-empty subsequence of c r u d s, in that order.
                let mut bits = 0;
                let mut next = 0;
                for ch in letters.chars() {
                    let Some(pos) = ORDER
                        .iter()
                        .skip(next)
                        .position(|(c, _)| *c == ch)
                        .map(|p| p + next)
                    else {
                        return Err(bad());
                    };
                    bits |= ORDER.get(pos).map_or(0, |(_, i)| i.bit());
                    next = pos + 1;
                }
                if bits == 0 {
                    return Err(bad());
                }
                bits
            }
        };
        Ok(Scope { resource, perms })
    }

    /// Whether it allows `i` on `resource`.
    pub fn allows(&self, resource: &str, i: Interaction) -> bool {
        self.resource.as_deref().is_none_or(|r| r == resource) && self.perms & i.bit() != 0
    }

    /// Whether everything `other` allows, this allows.
    pub fn covers(&self, other: &Scope) -> bool {
        let types = match (&self.resource, &other.resource) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        types && other.perms & !self.perms == 0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters: String = ORDER
            .iter()
            .filter(|(_, i)| self.perms & i.bit() != 0)
            .map(|(c, _)| *c)
            .collect();
        write!(
            f,
            "system/{}.{letters}",
            self.resource.as_deref().unwrap_or("*")
        )
    }
}

/// A set of scopes (space-separated in OAuth2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// Reads a space-separated list; the first bad one is said.
    pub fn parse(s: &str) -> Result<Scopes, String> {
        s.split_whitespace()
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Scopes)
    }

    /// Whether one of them allows `i` on `resource`.
    pub fn allows(&self, resource: &str, i: Interaction) -> bool {
        self.0.iter().any(|s| s.allows(resource, i))
    }

    /// What a client allowed `self` gets when it asks for `requested`:
    /// every requested scope one of its own covers, or the first one not
    /// covered (`invalid_scope`).
    pub fn grant(&self, requested: &Scopes) -> Result<Scopes, Scope> {
        for r in &requested.0 {
            if !self.0.iter().any(|a| a.covers(r)) {
                return Err(r.clone());
            }
        }
        Ok(requested.clone())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Interaction::*;

    #[test]
    fn v2_and_v1_scopes_read_into_one_form() {
        let p = Scope::parse("system/Patient.rs").unwrap();
        assert!(p.allows("Patient", Read) && p.allows("Patient", Search));
        assert!(!p.allows("Patient", Create) && !p.allows("Observation", Read));
        assert_eq!(p.to_string(), "system/Patient.rs");
        assert_eq!(
            [Create, Read, Update, Delete, Search].map(Interaction::letter),
            ['c', 'r', 'u', 'd', 's']
        );
        let all = Scope::parse("system/*.cruds").unwrap();
        assert!(all.allows("DocumentReference", Delete));
        assert_eq!(Scope::parse("system/*.*").unwrap(), all);
        assert_eq!(
            Scope::parse("system/Patient.read").unwrap(),
            Scope::parse("system/Patient.rs").unwrap()
        );
        assert_eq!(
            Scope::parse("system/Patient.write").unwrap().to_string(),
            "system/Patient.cud"
        );
        assert_eq!(
            Scope::parse("system/DocumentReference.cs")
                .unwrap()
                .to_string(),
            "system/DocumentReference.cs"
        );
    }

    #[test]
    fn bad_scopes_are_refused_with_why() {
        for bad in [
            "patient/Patient.rs",
            "user/*.cruds",
            "system/Patient",
            "system/Patient.",
            "system/Patient.sr",
            "system/Patient.rr",
            "system/Patient.x",
            "system/.rs",
            "system/Pat-ient.rs",
            "openid",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Scope::parse("patient/Patient.rs")
                .unwrap_err()
                .contains("seules les portées system/")
        );
        assert!(Scopes::parse("system/Patient.rs  bad").is_err());
        assert_eq!(Scopes::parse("").unwrap(), Scopes::default());
    }

    #[test]
    fn a_client_gets_only_what_its_scopes_cover() {
        let allowed = Scopes::parse("system/Patient.rs system/DocumentReference.cruds").unwrap();
        let asked = Scopes::parse("system/Patient.r system/DocumentReference.cs").unwrap();
        assert_eq!(allowed.grant(&asked).unwrap(), asked);
        let wider = Scopes::parse("system/Patient.rs system/Patient.u").unwrap();
        assert_eq!(
            allowed.grant(&wider).unwrap_err().to_string(),
            "system/Patient.u"
        );
        let star = Scopes::parse("system/*.rs").unwrap();
        assert_eq!(
            allowed.grant(&star).unwrap_err().to_string(),
            "system/*.rs",
            "a type wildcard is not covered by named types"
        );
        let everything = Scopes::parse("system/*.cruds").unwrap();
        assert!(everything.grant(&allowed).is_ok());
        let granted = allowed.grant(&asked).unwrap();
        assert!(granted.allows("Patient", Read));
        assert!(!granted.allows("Patient", Search));
        assert!(!granted.allows("Encounter", Read));
    }
}
