//! Inputs the fuzzer found against the MLLP frame finders, replayed as the
//! fuzz target checks them: the incremental `Scanner`, fed the bytes in
//! chunks, finds exactly the frames `next_frame` finds on the whole buffer.

use hl7v2::mllp::check::{frames_in_chunks, frames_whole};

#[test]
fn the_fuzzers_inputs_frame_the_same_whole_or_in_chunks() {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("mllp-")
        {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        // The fuzz target's (u8, &[u8]): the first byte is the chunk size.
        let (chunk, data) = input.split_first().unwrap();
        let expected = frames_whole(data);
        for size in [usize::from(*chunk), 1, 2, 3, 7, 64, data.len()] {
            assert_eq!(
                frames_in_chunks(data, size),
                expected,
                "{path:?} in chunks of {size}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 1, "no input in {dir}");
}
