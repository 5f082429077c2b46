//! Splitting a file of messages: MLLP frames when the input holds start blocks;
//! otherwise a new message starts at every `MSH` segment, whatever the segment
//! terminators (`\r`, `\n`, `\r\n`) and whether messages sit one per line or in
//! `\r`-separated batches. Batch envelope segments (FHS, BHS, BTS, FTS) are skipped.

use crate::mllp::{self, Frame};

/// The messages in `input`, as slices of it, in order.
pub fn split(input: &[u8]) -> Vec<&[u8]> {
    if input.contains(&mllp::START) {
        return split_mllp(input);
    }
    let mut starts: Vec<(usize, bool)> = Vec::new();
    let mut at_line_start = true;
    for (i, &b) in input.iter().enumerate() {
        if at_line_start {
            let rest = input.get(i..).unwrap_or(&[]);
            if rest.starts_with(b"MSH") {
                starts.push((i, true));
            } else if ["FHS", "BHS", "BTS", "FTS"]
                .iter()
                .any(|s| rest.starts_with(s.as_bytes()))
            {
                starts.push((i, false));
            }
        }
        at_line_start = b == b'\r' || b == b'\n';
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(start, is_msh)) in starts.iter().enumerate() {
        if !is_msh {
            continue;
        }
        let end = starts.get(k + 1).map(|&(s, _)| s).unwrap_or(input.len());
        if let Some(m) = input.get(start..end) {
            out.push(m);
        }
    }
    out
}

fn split_mllp(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < input.len() {
        let rest = input.get(offset..).unwrap_or(&[]);
        match mllp::next_frame(rest) {
            Frame::Message {
                start,
                end,
                consumed,
            } => {
                if let Some(m) = rest.get(start..end) {
                    out.push(m);
                }
                offset += consumed;
            }
            Frame::Incomplete { discard } => {
                if discard == 0 {
                    break;
                }
                offset += discard;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_line_batches_and_frames() {
        let lines = b"MSH|^~\\&|A|1\rPID|1\nMSH|^~\\&|A|2\rPID|2\n";
        assert_eq!(
            split(lines),
            vec![
                &b"MSH|^~\\&|A|1\rPID|1\n"[..],
                &b"MSH|^~\\&|A|2\rPID|2\n"[..]
            ]
        );
        let batch =
            b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A|1\rPID|1\rMSH|^~\\&|A|2\rPID|2\rBTS|2\rFTS|1\r";
        let got = split(batch);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], b"MSH|^~\\&|A|2\rPID|2\r");
        let crlf = b"MSH|^~\\&|A|1\r\nPID|1\r\n\r\nMSH|^~\\&|A|2\r\n";
        assert_eq!(split(crlf).len(), 2);
        let mut framed = mllp::frame(b"MSH|^~\\&|A|1\rPID|1\r");
        framed.extend(b"\n");
        framed.extend(mllp::frame(b"MSH|^~\\&|A|2\r"));
        assert_eq!(
            split(&framed),
            vec![&b"MSH|^~\\&|A|1\rPID|1\r"[..], &b"MSH|^~\\&|A|2\r"[..]]
        );
        assert!(split(b"").is_empty());
        assert!(split(b"garbage\nPID|1").is_empty());
        // "MSH" inside a value is not a message start.
        assert_eq!(split(b"MSH|^~\\&|A\rNTE|1||see MSH|x\r").len(), 1);
    }
}
