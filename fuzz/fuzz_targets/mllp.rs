//! The MLLP frame finders see raw socket bytes: they must always make progress
//! or wait, never panic, never return a frame outside the buffer; and the
//! incremental `Scanner` the listener uses, fed the same bytes in chunks of
//! every size the input chooses, finds exactly the frames `next_frame` finds.
#![no_main]

use hl7v2::mllp::check::{frames_in_chunks, frames_whole};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, data) = input;
    assert_eq!(frames_in_chunks(data, usize::from(chunk)), frames_whole(data));
});
