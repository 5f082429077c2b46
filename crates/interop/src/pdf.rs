//! A small PDF 1.4 writer for text reports (the end-of-monitoring summary sent to
//! the hospital): A4 pages, Helvetica in WinAnsi encoding (French accents, œ, €,
//! dashes), a title, lines wrapped at the page width, a correct cross-reference
//! table. Enough for a report a person reads; no layout engine.

/// One character in WinAnsiEncoding (`?` when it has no place there).
fn win_ansi(c: char) -> u8 {
    match c {
        '€' => 0x80,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '–' => 0x96,
        '—' => 0x97,
        'Œ' => 0x8C,
        'œ' => 0x9C,
        '\u{a0}'..='\u{ff}' | ' '..='~' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
        _ => b'?',
    }
}

/// A PDF string literal: WinAnsi bytes with `(`, `)` and `\` escaped.
fn literal(text: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    // Signs the rules write that WinAnsi lacks, spelled out.
    let text = text
        .replace('≥', ">=")
        .replace('≤', "<=")
        .replace('→', "->");
    for c in text.chars() {
        let b = win_ansi(c);
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// Splits a line into pieces of at most `width` characters, at spaces when it can.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let fits =
            current.chars().count() + word.chars().count() + usize::from(!current.is_empty())
                <= width;
        if !fits && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        let mut word = word.to_owned();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            out.push(head);
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    out.push(current);
    out
}

const LINES_PER_PAGE: usize = 52;
const WIDTH: usize = 92;

/// A PDF with `title` in bold on the first page and `lines` below it.
pub fn text_document(title: &str, lines: &[String]) -> Vec<u8> {
    let wrapped: Vec<String> = lines.iter().flat_map(|l| wrap(l, WIDTH)).collect();
    let pages: Vec<&[String]> = if wrapped.is_empty() {
        vec![&[]]
    } else {
        wrapped.chunks(LINES_PER_PAGE).collect()
    };
    let n_pages = pages.len();
    let mut contents = Vec::with_capacity(n_pages);
    for (i, page) in pages.iter().enumerate() {
        let mut c = Canvas::default();
        let mut y = 800;
        if i == 0 {
            c.text(50, y, 14, true, title);
            y -= 28;
        }
        for line in page.iter() {
            c.text(50, y, 10, false, line);
            y -= 14;
        }
        c.text(50, 30, 8, false, &format!("Page {} / {n_pages}", i + 1));
        contents.push(c.into_content());
    }
    assemble(&contents)
}

/// Wraps `line` at `width` characters (for callers laying out their own page).
pub fn wrap_text(line: &str, width: usize) -> Vec<String> {
    wrap(line, width)
}

/// One page's drawing: text in Helvetica (regular or bold) and filled squares,
/// in PDF points from the bottom-left corner of an A4 page (595 × 842).
#[derive(Debug, Default)]
pub struct Canvas {
    content: Vec<u8>,
}

impl Canvas {
    /// Writes `text` at (`x`, `y`), `size` points.
    pub fn text(&mut self, x: i32, y: i32, size: u8, bold: bool, text: &str) {
        let font = if bold { "F2" } else { "F1" };
        self.content
            .extend_from_slice(format!("BT /{font} {size} Tf {x} {y} Td ").as_bytes());
        self.content.extend_from_slice(&literal(text));
        self.content.extend_from_slice(b" Tj ET\n");
    }

    /// A QR code (`modules[y][x]`, true for dark) with its lower-left corner at
    /// (`x`, `y`) and `module` points per module; a light border of four modules
    /// is the caller's margin to leave.
    pub fn qr(&mut self, x: f32, y: f32, module: f32, modules: &[Vec<bool>]) {
        self.content.extend_from_slice(b"0 g\n");
        let n = modules.len();
        for (row, line) in modules.iter().enumerate() {
            for (col, dark) in line.iter().enumerate() {
                if *dark {
                    // Row 0 is the top of the code; PDF's y grows upwards.
                    let px = x + module * col as f32;
                    let py = y + module * (n - 1 - row) as f32;
                    self.content.extend_from_slice(
                        format!("{px:.2} {py:.2} {module:.2} {module:.2} re f\n").as_bytes(),
                    );
                }
            }
        }
    }

    /// A horizontal rule at `y` from `x1` to `x2`.
    pub fn rule(&mut self, x1: i32, x2: i32, y: i32) {
        self.content
            .extend_from_slice(format!("0.5 w {x1} {y} m {x2} {y} l S\n").as_bytes());
    }

    /// The page's content stream.
    pub fn into_content(self) -> Vec<u8> {
        self.content
    }
}

/// A PDF of A4 pages, each drawn by its content stream (from [`Canvas`]), with
/// Helvetica as `F1` and Helvetica-Bold as `F2`, and a correct cross-reference table.
pub fn assemble(contents: &[Vec<u8>]) -> Vec<u8> {
    // Objects: 1 catalog, 2 pages, 3 font, 4 bold font, then per page: page, content.
    let n_pages = contents.len();
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..n_pages).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n_pages} >>",
            kids.join(" ")
        )
        .into_bytes(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    for (i, content) in contents.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                6 + 2 * i
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content);
        stream.extend_from_slice(b"endstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_text_is_encoded_and_escaped() {
        assert_eq!(
            literal("Fièvre (38 °C) — œdème \\ €"),
            b"(Fi\xE8vre \\(38 \xB0C\\) \x97 \x9Cd\xE8me \\\\ \x80)".to_vec()
        );
        assert_eq!(literal("漢"), b"(?)".to_vec());
        assert_eq!(
            literal("93 ≤ 94, 70 → 66"),
            b"(93 <= 94, 70 -> 66)".to_vec()
        );
    }

    #[test]
    fn long_lines_wrap_at_spaces_and_long_words_are_cut() {
        assert_eq!(wrap("un deux trois", 7), vec!["un deux", "trois"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let lines: Vec<String> = (0..120).map(|i| format!("Ligne {i}")).collect();
        let pdf = text_document("Synthèse", &lines);
        assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
        // Offsets are in bytes; the tail (xref, trailer) is ASCII.
        let tail = std::str::from_utf8(&pdf[pdf.len() - 40..]).unwrap();
        let startxref: usize = tail
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let xref = std::str::from_utf8(&pdf[startxref..]).unwrap();
        assert!(xref.starts_with("xref"));
        let entries: Vec<usize> = xref
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .map(|l| l[..10].parse().unwrap())
            .collect();
        assert_eq!(entries.len(), 4 + 2 * 3, "3 pages of 52 lines");
        for (i, at) in entries.iter().enumerate() {
            assert!(
                pdf[*at..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3"));
    }
}
