//! Character sets named in MSH-18, decoded to UTF-8.

/// A character set an HL7 v2 message may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `UNICODE UTF-8`.
    Utf8,
    /// `8859/1` (Latin-1).
    Latin1,
    /// `8859/15` (Latin-9: Latin-1 with €, Œ, œ, Š, š, Ž, ž, Ÿ).
    Latin9,
    /// `ASCII` (7 bits).
    Ascii,
}

impl Charset {
    /// Reads an MSH-18 value; `None` for an unknown name.
    pub fn from_msh18(name: &str) -> Option<Charset> {
        match name.trim() {
            "UNICODE UTF-8" | "UTF-8" | "UNICODE" => Some(Charset::Utf8),
            "8859/1" => Some(Charset::Latin1),
            "8859/15" => Some(Charset::Latin9),
            "ASCII" | "" => Some(Charset::Ascii),
            _ => None,
        }
    }

    /// The MSH-18 name.
    pub fn msh18(self) -> &'static str {
        match self {
            Charset::Utf8 => "UNICODE UTF-8",
            Charset::Latin1 => "8859/1",
            Charset::Latin9 => "8859/15",
            Charset::Ascii => "ASCII",
        }
    }

    /// Decodes bytes; `Err(offset)` at the first byte that does not belong to the set.
    pub fn decode(self, bytes: &[u8]) -> Result<String, usize> {
        match self {
            Charset::Utf8 => {
                String::from_utf8(bytes.to_vec()).map_err(|e| e.utf8_error().valid_up_to())
            }
            Charset::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
                Some(i) => Err(i),
                // All ASCII: valid UTF-8 as is.
                None => String::from_utf8(bytes.to_vec()).map_err(|e| e.utf8_error().valid_up_to()),
            },
            Charset::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Charset::Latin9 => Ok(bytes.iter().map(|&b| latin9(b)).collect()),
        }
    }

    /// Encodes text; `Err(char)` for the first character the set cannot hold.
    pub fn encode(self, text: &str) -> Result<Vec<u8>, char> {
        match self {
            Charset::Utf8 => Ok(text.as_bytes().to_vec()),
            Charset::Ascii => text
                .chars()
                .map(|c| if c.is_ascii() { Ok(c as u8) } else { Err(c) })
                .collect(),
            Charset::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| c))
                .collect(),
            Charset::Latin9 => text
                .chars()
                .map(|c| (0..=255u8).find(|&b| latin9(b) == c).ok_or(c))
                .collect(),
        }
    }
}

fn latin9(b: u8) -> char {
    match b {
        0xA4 => '€',
        0xA6 => 'Š',
        0xA8 => 'š',
        0xB4 => 'Ž',
        0xB8 => 'ž',
        0xBC => 'Œ',
        0xBD => 'œ',
        0xBE => 'Ÿ',
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in [
            Charset::Utf8,
            Charset::Latin1,
            Charset::Latin9,
            Charset::Ascii,
        ] {
            assert_eq!(Charset::from_msh18(c.msh18()), Some(c));
        }
        assert_eq!(Charset::from_msh18("8859/2"), None);
    }

    #[test]
    fn latin_sets_decode_and_encode() {
        let bytes = [b'H', 0xE9, b'l', 0xE8, b'n', b'e', b' ', 0xA4];
        assert_eq!(Charset::Latin1.decode(&bytes).unwrap(), "Hélène ¤");
        assert_eq!(Charset::Latin9.decode(&bytes).unwrap(), "Hélène €");
        assert_eq!(Charset::Latin9.encode("Hélène €").unwrap(), bytes);
        assert_eq!(Charset::Latin1.encode("€"), Err('€'));
        assert_eq!(Charset::Latin9.encode("Œuvre").unwrap()[0], 0xBC);
    }

    #[test]
    fn utf8_and_ascii_report_the_first_bad_byte() {
        assert_eq!(Charset::Utf8.decode("é".as_bytes()).unwrap(), "é");
        assert_eq!(Charset::Utf8.decode(&[b'a', 0xE9, b'b']), Err(1));
        assert_eq!(Charset::Ascii.decode(&[b'a', b'b', 0xE9]), Err(2));
        assert_eq!(Charset::Ascii.encode("aé"), Err('é'));
    }
}
