//! The MLLP frame finders see raw socket bytes: they must always make progress
//! or wait, never panic, never return a frame outside the buffer; and the
//! incremental `Scanner` the listener uses, fed the same bytes in chunks of
//! every size the input chooses, finds exactly the frames `next_frame` finds.
#![no_main]

use hl7v2::mllp::{Frame, Scanner, next_frame};
use libfuzzer_sys::fuzz_target;

fn whole(data: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = data;
    let mut out = Vec::new();
    loop {
        match next_frame(buf) {
            Frame::Message { start, end, consumed } => {
                assert!(start <= end && end < consumed && consumed <= buf.len());
                out.push(buf[start..end].to_vec());
                buf = &buf[consumed..];
            }
            Frame::Incomplete { discard } => {
                assert!(discard <= buf.len());
                if discard == 0 {
                    break;
                }
                buf = &buf[discard..];
            }
        }
    }
    out
}

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, data) = input;
    let expected = whole(data);
    let mut sc = Scanner::default();
    let mut buf = Vec::new();
    let mut found = Vec::new();
    for piece in data.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match sc.next(&buf) {
                Frame::Message { start, end, consumed } => {
                    assert!(start <= end && end < consumed && consumed <= buf.len());
                    found.push(buf[start..end].to_vec());
                    buf.drain(..consumed);
                }
                Frame::Incomplete { discard } => {
                    assert!(discard <= buf.len());
                    buf.drain(..discard);
                    if discard == 0 {
                        break;
                    }
                }
            }
        }
    }
    assert_eq!(found, expected);
});
