//! A parsed message: the text decoded to UTF-8, the separators, and an index of
//! segments and fields built in one pass. Lower levels (repetitions, components,
//! sub-components) are split on access, borrowing from the text.

use std::borrow::Cow;

use crate::charset::Charset;
use crate::escape;
use crate::path::{Path, PathError};

/// The delimiters of a message, read from MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    /// Field separator (MSH-1), usually `|`.
    pub field: char,
    /// Component separator, usually `^`.
    pub component: char,
    /// Repetition separator, usually `~`.
    pub repetition: char,
    /// Escape character, usually `\`.
    pub escape: char,
    /// Sub-component separator, usually `&`.
    pub subcomponent: char,
    /// Truncation character (v2.7+), if declared.
    pub truncation: Option<char>,
}

impl Default for Separators {
    fn default() -> Self {
        Separators {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
            truncation: None,
        }
    }
}

impl Separators {
    /// MSH-2 as written.
    pub fn encoding_characters(&self) -> String {
        let mut s: String = [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .iter()
        .collect();
        if let Some(t) = self.truncation {
            s.push(t);
        }
        s
    }
}

/// Why bytes are not an HL7 v2 message. Positions are 1-based segment numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but blanks.
    #[error("message vide")]
    Empty,
    /// The first segment is not MSH.
    #[error("le message doit commencer par un segment MSH")]
    NoMsh,
    /// MSH-1/MSH-2 do not define usable separators.
    #[error("séparateurs MSH-1/MSH-2 invalides")]
    BadSeparators,
    /// MSH-18 names a character set this parser does not know.
    #[error("jeu de caractères MSH-18 non pris en charge: {0:?}")]
    UnknownCharset(String),
    /// A byte does not belong to the declared character set.
    #[error("octet invalide pour le jeu de caractères {charset} à la position {offset}")]
    BadEncoding {
        /// The character set (MSH-18 name).
        charset: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// A segment name that is not three upper-case letters or digits.
    #[error("segment {index}: nom de segment invalide {name:?}")]
    BadSegmentName {
        /// Segment number (1-based).
        index: usize,
        /// What was found.
        name: String,
    },
}

#[derive(Debug, Clone, Copy)]
struct SegIdx {
    start: u32,
    end: u32,
    first_field: u32,
    field_count: u32,
}

/// A parsed message.
#[derive(Debug, Clone)]
pub struct Message {
    text: String,
    seps: Separators,
    charset: Charset,
    charset_declared: bool,
    segs: Vec<SegIdx>,
    fields: Vec<(u32, u32)>,
}

fn is_sep_char(c: u8) -> bool {
    c.is_ascii_graphic() && !c.is_ascii_alphanumeric()
}

/// Reads the separators from the start of an MSH segment.
fn separators(bytes: &[u8]) -> Result<Separators, ParseError> {
    let field = *bytes.get(3).ok_or(ParseError::BadSeparators)?;
    let enc: Vec<u8> = bytes
        .iter()
        .skip(4)
        .take_while(|&&b| b != field && b != b'\r' && b != b'\n')
        .copied()
        .collect();
    if !is_sep_char(field) || enc.len() < 4 || enc.len() > 5 || !enc.iter().all(|&b| is_sep_char(b))
    {
        return Err(ParseError::BadSeparators);
    }
    let mut all = enc.clone();
    all.push(field);
    all.sort_unstable();
    all.dedup();
    if all.len() != enc.len() + 1 {
        return Err(ParseError::BadSeparators);
    }
    let c = |i: usize| {
        enc.get(i)
            .map(|&b| char::from(b))
            .ok_or(ParseError::BadSeparators)
    };
    Ok(Separators {
        field: char::from(field),
        component: c(0)?,
        repetition: c(1)?,
        escape: c(2)?,
        subcomponent: c(3)?,
        truncation: enc.get(4).map(|&b| char::from(b)),
    })
}

/// MSH-18 (first repetition) read from raw bytes, before decoding.
fn raw_msh18(bytes: &[u8], seps: &Separators) -> Option<String> {
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    let line = bytes.get(..line_end)?;
    // Split index 0 is "MSH", index 1 is MSH-2, so MSH-n is index n-1.
    let field = line.split(|&b| char::from(b) == seps.field).nth(17)?;
    let first = field.split(|&b| char::from(b) == seps.repetition).next()?;
    Some(String::from_utf8_lossy(first).into_owned())
}

impl Message {
    /// Parses one message. See the crate documentation for the rules.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .ok_or(ParseError::Empty)?;
        let bytes = bytes.get(start..).unwrap_or(&[]);
        let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
        if !bytes.starts_with(b"MSH") {
            return Err(ParseError::NoMsh);
        }
        let seps = separators(bytes)?;
        let declared = raw_msh18(bytes, &seps).filter(|s| !s.trim().is_empty());
        let (charset, charset_declared) = match &declared {
            Some(name) => (
                Charset::from_msh18(name)
                    .ok_or_else(|| ParseError::UnknownCharset(name.clone()))?,
                true,
            ),
            None if std::str::from_utf8(bytes).is_ok() => (Charset::Utf8, false),
            None => (Charset::Latin1, false),
        };
        let text = charset
            .decode(bytes)
            .map_err(|offset| ParseError::BadEncoding {
                charset: charset.msh18(),
                offset,
            })?;
        Self::index(text, seps, charset, charset_declared)
    }

    fn index(
        text: String,
        seps: Separators,
        charset: Charset,
        charset_declared: bool,
    ) -> Result<Message, ParseError> {
        let mut segs = Vec::with_capacity(16);
        let mut fields = Vec::with_capacity(128);
        let fsep = seps.field;
        let mut pos = 0usize;
        for line in text.split(['\r', '\n']) {
            let line_start = pos;
            pos += line.len() + 1;
            if line.trim().is_empty() {
                continue;
            }
            let name = line.get(..3).unwrap_or(line);
            let valid_name = name.len() == 3
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                && line
                    .get(3..)
                    .is_none_or(|r| r.is_empty() || r.starts_with(fsep));
            if !valid_name {
                return Err(ParseError::BadSegmentName {
                    index: segs.len() + 1,
                    name: line.chars().take(8).collect(),
                });
            }
            let first_field = fields.len() as u32;
            let mut f_start = line_start;
            for part in line.split(fsep) {
                fields.push((f_start as u32, (f_start + part.len()) as u32));
                f_start += part.len() + fsep.len_utf8();
            }
            segs.push(SegIdx {
                start: line_start as u32,
                end: (line_start + line.len()) as u32,
                first_field,
                field_count: fields.len() as u32 - first_field,
            });
        }
        if segs.is_empty() {
            return Err(ParseError::Empty);
        }
        Ok(Message {
            text,
            seps,
            charset,
            charset_declared,
            segs,
            fields,
        })
    }

    /// The separators.
    pub fn separators(&self) -> &Separators {
        &self.seps
    }

    /// The character set the bytes were decoded from, and whether MSH-18 declared it.
    pub fn charset(&self) -> (Charset, bool) {
        (self.charset, self.charset_declared)
    }

    /// The decoded text (segments end with `\r` or `\n` as received).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every segment in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        (0..self.segs.len()).map(move |i| Segment { msg: self, idx: i })
    }

    /// The `occurrence`-th (1-based) segment named `name`.
    pub fn segment(&self, name: &str, occurrence: usize) -> Option<Segment<'_>> {
        self.segments()
            .filter(|s| s.name() == name)
            .nth(occurrence.checked_sub(1)?)
    }

    /// The raw value at `path` (escapes not decoded); `None` when absent or empty.
    pub fn raw(&self, path: &str) -> Result<Option<&str>, PathError> {
        let p: Path = path.parse()?;
        Ok(self.raw_at(&p))
    }

    /// The raw value at a parsed path.
    pub fn raw_at(&self, p: &Path) -> Option<&str> {
        let seg = self.segment(&p.segment, p.occurrence)?;
        let field = seg.field(p.field)?;
        // MSH-1 and MSH-2 hold the separators themselves: never split them.
        if seg.name() == "MSH" && p.field <= 2 {
            return Some(field.raw()).filter(|r| !r.is_empty());
        }
        let mut v = field.repetition(p.repetition)?;
        if let Some(c) = p.component {
            v = v.component(c)?;
            if let Some(s) = p.subcomponent {
                v = v.subcomponent(s)?;
            }
        }
        Some(v.raw()).filter(|r| !r.is_empty())
    }

    /// The value at `path` with escapes decoded; `None` when absent or empty. The
    /// HL7 null `""` is returned as written (two double quotes): it means "delete".
    pub fn get(&self, path: &str) -> Result<Option<Cow<'_, str>>, PathError> {
        Ok(self.raw(path)?.map(|r| escape::decode(r, &self.seps)))
    }

    /// Same as [`Message::get`] for a parsed path.
    pub fn get_at(&self, p: &Path) -> Option<Cow<'_, str>> {
        self.raw_at(p).map(|r| escape::decode(r, &self.seps))
    }

    fn header(&self, path: &str) -> Option<&str> {
        self.raw(path).ok().flatten()
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<&str> {
        self.header("MSH-10")
    }

    /// MSH-9: message code, trigger event, structure (`ADT`, `A01`, `ADT_A01`).
    pub fn message_type(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        (
            self.header("MSH-9.1"),
            self.header("MSH-9.2"),
            self.header("MSH-9.3"),
        )
    }

    /// MSH-12.1, the version (`2.5`).
    pub fn version(&self) -> Option<&str> {
        self.header("MSH-12.1")
    }

    /// MSH-11.1, the processing id (`P`, `D`, `T`).
    pub fn processing_id(&self) -> Option<&str> {
        self.header("MSH-11.1")
    }

    /// The whole message as a tree of decoded strings, trailing empties removed:
    /// segments → fields (from field 1; MSH-1 and MSH-2 as written) → repetitions →
    /// components → sub-components.
    pub fn to_tree(&self) -> Vec<(String, Vec<FieldTree>)> {
        self.segments()
            .map(|s| {
                let mut fields: Vec<FieldTree> = (1..=s.field_count())
                    .map(|n| match s.field(n) {
                        Some(f) if s.name() == "MSH" && n <= 2 => {
                            vec![vec![vec![f.raw().to_owned()]]]
                        }
                        Some(f) => f
                            .repetitions()
                            .map(|r| {
                                r.components()
                                    .map(|c| {
                                        c.subcomponents()
                                            .map(|x| x.decoded().into_owned())
                                            .collect()
                                    })
                                    .collect()
                            })
                            .collect(),
                        None => vec![],
                    })
                    .map(trim_field)
                    .collect();
                while fields.last().is_some_and(Vec::is_empty) {
                    fields.pop();
                }
                (s.name().to_owned(), fields)
            })
            .collect()
    }
}

/// A field as data: repetitions → components → sub-components.
pub type FieldTree = Vec<Vec<Vec<String>>>;

/// Removes trailing empty sub-components, components and repetitions.
pub(crate) fn trim_field(mut reps: FieldTree) -> FieldTree {
    for comps in reps.iter_mut() {
        for subs in comps.iter_mut() {
            while subs.last().is_some_and(String::is_empty) {
                subs.pop();
            }
        }
        while comps.last().is_some_and(Vec::is_empty) {
            comps.pop();
        }
    }
    while reps.last().is_some_and(Vec::is_empty) {
        reps.pop();
    }
    reps
}

/// One segment of a message.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    msg: &'a Message,
    idx: usize,
}

impl<'a> Segment<'a> {
    fn span(&self) -> SegIdx {
        self.msg.segs.get(self.idx).copied().unwrap_or(SegIdx {
            start: 0,
            end: 0,
            first_field: 0,
            field_count: 0,
        })
    }

    /// The segment's position in the message (1-based), for error locations.
    pub fn position(&self) -> usize {
        self.idx + 1
    }

    /// The three-letter name.
    pub fn name(&self) -> &'a str {
        self.field_span(0).unwrap_or("")
    }

    /// The segment as written.
    pub fn raw(&self) -> &'a str {
        let s = self.span();
        self.msg
            .text
            .get(s.start as usize..s.end as usize)
            .unwrap_or("")
    }

    fn field_span(&self, split_index: usize) -> Option<&'a str> {
        let s = self.span();
        if split_index >= s.field_count as usize {
            return None;
        }
        let (a, b) = *self.msg.fields.get(s.first_field as usize + split_index)?;
        self.msg.text.get(a as usize..b as usize)
    }

    /// The number of the last field present.
    pub fn field_count(&self) -> usize {
        let n = self.span().field_count as usize;
        if self.name() == "MSH" {
            n
        } else {
            n.saturating_sub(1)
        }
    }

    /// Field `n` (1-based). For MSH, field 1 is the field separator.
    pub fn field(&self, n: usize) -> Option<Field<'a>> {
        let raw = if self.name() == "MSH" {
            match n {
                0 => None,
                // MSH-1: the separator character right after "MSH".
                1 => self.raw().get(3..3 + self.msg.seps.field.len_utf8()),
                _ => self.field_span(n - 1),
            }
        } else if n == 0 {
            None
        } else {
            self.field_span(n)
        }?;
        Some(Field {
            raw,
            seps: &self.msg.seps,
        })
    }
}

/// A field, a repetition, a component or a sub-component: a raw slice with the
/// separators needed to split it further.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    raw: &'a str,
    seps: &'a Separators,
}

impl<'a> Field<'a> {
    /// As written (escapes not decoded).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// With escapes decoded.
    pub fn decoded(&self) -> Cow<'a, str> {
        escape::decode(self.raw, self.seps)
    }

    fn part(&self, sep: char, n: usize) -> Option<Field<'a>> {
        let raw = self.raw.split(sep).nth(n.checked_sub(1)?)?;
        Some(Field {
            raw,
            seps: self.seps,
        })
    }

    fn parts(&self, sep: char) -> impl Iterator<Item = Field<'a>> + use<'a> {
        let seps = self.seps;
        self.raw.split(sep).map(move |raw| Field { raw, seps })
    }

    /// Repetition `n` (1-based).
    pub fn repetition(&self, n: usize) -> Option<Field<'a>> {
        self.part(self.seps.repetition, n)
    }

    /// All repetitions.
    pub fn repetitions(&self) -> impl Iterator<Item = Field<'a>> + use<'a> {
        self.parts(self.seps.repetition)
    }

    /// Component `n` (1-based) of this value (of its first repetition if it repeats).
    pub fn component(&self, n: usize) -> Option<Field<'a>> {
        self.part(self.seps.component, n)
    }

    /// All components.
    pub fn components(&self) -> impl Iterator<Item = Field<'a>> + use<'a> {
        self.parts(self.seps.component)
    }

    /// Sub-component `n` (1-based).
    pub fn subcomponent(&self, n: usize) -> Option<Field<'a>> {
        self.part(self.seps.subcomponent, n)
    }

    /// All sub-components.
    pub fn subcomponents(&self) -> impl Iterator<Item = Field<'a>> + use<'a> {
        self.parts(self.seps.subcomponent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A01: &str = "MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240306111154||ADT^A01^ADT_A01|3975|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM\r\
EVN||20240306111154\r\
PID|1||000003^^^CHU-X&000897406&N^PI~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||PAT-TROIS^DOMINIQUE^^^^^L~D\\S\\ALMEIDA^Jo\\E\\ao^^^^^D||19790328|F\r\
OBX|1|ST|x||ligne1\\.br\\ligne2\r\
OBX|2|NM|y||42\r";

    fn msg() -> Message {
        Message::parse(A01.as_bytes()).unwrap()
    }

    #[test]
    fn header_fields() {
        let m = msg();
        assert_eq!(m.control_id(), Some("3975"));
        assert_eq!(
            m.message_type(),
            (Some("ADT"), Some("A01"), Some("ADT_A01"))
        );
        assert_eq!(m.version(), Some("2.5"));
        assert_eq!(m.processing_id(), Some("P"));
        assert_eq!(m.charset(), (Charset::Utf8, true));
        assert_eq!(m.raw("MSH-1").unwrap(), Some("|"));
        assert_eq!(m.raw("MSH-2").unwrap(), Some("^~\\&"));
        assert_eq!(m.raw("MSH-3").unwrap(), Some("GAM"));
        assert_eq!(m.raw("MSH-12.3").unwrap(), Some("2.11"));
        assert_eq!(m.segments().count(), 5);
    }

    #[test]
    fn paths_reach_repetitions_components_and_subcomponents() {
        let m = msg();
        assert_eq!(m.get("PID-3.1").unwrap().as_deref(), Some("000003"));
        assert_eq!(
            m.raw("PID-3").unwrap(),
            Some("000003^^^CHU-X&000897406&N^PI"),
            "a field without component is the whole repetition"
        );
        assert_eq!(
            m.get("PID-3(2).1").unwrap().as_deref(),
            Some("279035121518989")
        );
        assert_eq!(
            m.get("PID-3(2).4.1").unwrap().as_deref(),
            Some("ASIP-SANTE-INS-NIR")
        );
        assert_eq!(
            m.get("PID-3(2).4.2").unwrap().as_deref(),
            Some("1.2.250.1.213.1.4.10")
        );
        assert_eq!(m.get("PID-3(2).5").unwrap().as_deref(), Some("INS"));
        assert_eq!(m.get("PID-3(3).1").unwrap(), None);
        assert_eq!(m.get("PID-5(2).1").unwrap().as_deref(), Some("D^ALMEIDA"));
        assert_eq!(m.raw("PID-5(2).1").unwrap(), Some("D\\S\\ALMEIDA"));
        assert_eq!(m.get("PID-5(2).2").unwrap().as_deref(), Some("Jo\\ao"));
        assert_eq!(m.get("OBX(2)-5").unwrap().as_deref(), Some("42"));
        assert_eq!(m.get("OBX-5").unwrap().as_deref(), Some("ligne1\nligne2"));
        assert_eq!(m.get("OBX(3)-5").unwrap(), None);
        assert_eq!(m.get("PID-99").unwrap(), None);
        assert_eq!(m.get("PV1-3").unwrap(), None);
        assert!(m.get("PID-x").is_err());
        assert_eq!(m.segment("OBX", 2).unwrap().position(), 5);
        assert_eq!(m.segment("PID", 1).unwrap().field_count(), 8);
        assert_eq!(m.segment("MSH", 1).unwrap().field_count(), 21);
    }

    #[test]
    fn latin1_and_undeclared_charsets() {
        let mut bytes =
            b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||Ren".to_vec();
        bytes.push(0xE9);
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.get("PID-5").unwrap().as_deref(), Some("René"));
        assert_eq!(m.charset(), (Charset::Latin1, true));
        let mut undeclared = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5\rPID|1||1||Ren".to_vec();
        undeclared.push(0xE9);
        let m = Message::parse(&undeclared).unwrap();
        assert_eq!(m.get("PID-5").unwrap().as_deref(), Some("René"));
        assert_eq!(m.charset(), (Charset::Latin1, false));
        let m = Message::parse("MSH|^~\\&|A\rPID|1||1||René".as_bytes()).unwrap();
        assert_eq!(m.charset(), (Charset::Utf8, false));
    }

    #[test]
    fn parse_errors() {
        let cases: [(&[u8], ParseError); 8] = [
            (b"", ParseError::Empty),
            (b" \r\n ", ParseError::Empty),
            (b"PID|1", ParseError::NoMsh),
            (b"MSH", ParseError::BadSeparators),
            (b"MSH|^~|", ParseError::BadSeparators),
            (b"MSH|^~^&|", ParseError::BadSeparators),
            (
                b"MSH|^~\\&|A|||||||||||||||8859/2",
                ParseError::UnknownCharset("8859/2".into()),
            ),
            (
                b"MSH|^~\\&|A\rpid|1",
                ParseError::BadSegmentName {
                    index: 2,
                    name: "pid|1".into(),
                },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(
                Message::parse(bytes).unwrap_err(),
                err,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let head = b"MSH|^~\\&|A|||||||||||||||UNICODE UTF-8\rPID|1||";
        let bad_utf8 = [&head[..], &[0xE9]].concat();
        assert_eq!(
            Message::parse(&bad_utf8).unwrap_err(),
            ParseError::BadEncoding {
                charset: "UNICODE UTF-8",
                offset: head.len()
            }
        );
        assert!(matches!(
            Message::parse(b"MSH|^~\\&|A\rPIDX|1"),
            Err(ParseError::BadSegmentName { index: 2, .. })
        ));
    }

    #[test]
    fn segment_terminators_and_leading_noise() {
        let m = Message::parse(b"\r\n\xEF\xBB\xBFMSH|^~\\&|A\nPID|1\r\nPV1|1\n\n").unwrap();
        let names: Vec<&str> = m.segments().map(|s| s.name()).collect();
        assert_eq!(names, vec!["MSH", "PID", "PV1"]);
    }

    #[test]
    fn other_separators() {
        let m = Message::parse(b"MSH#!@$%#A#B\rPID#1##x!y@z%w").unwrap();
        assert_eq!(m.separators().truncation, None);
        assert_eq!(m.get("PID-3.2").unwrap().as_deref(), Some("y"));
        assert_eq!(m.get("PID-3(2).1.2").unwrap().as_deref(), Some("w"));
        let m = Message::parse(b"MSH|^~\\&#|A").unwrap();
        assert_eq!(m.separators().truncation, Some('#'));
        assert_eq!(m.separators().encoding_characters(), "^~\\&#");
    }
}
