//! The MLLP frame finder sees raw socket bytes: it must always make progress or
//! wait, never panic, never return a frame outside the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use hl7v2::mllp::{Frame, next_frame};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    loop {
        match next_frame(buf) {
            Frame::Message { start, end, consumed } => {
                assert!(start <= end && end < consumed && consumed <= buf.len());
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
});
