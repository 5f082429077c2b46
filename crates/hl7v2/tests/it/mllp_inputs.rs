//! Inputs the fuzzer found against the MLLP frame finders, replayed as the
//! fuzz target checks them: the incremental `Scanner`, fed the bytes in
//! chunks, finds exactly the frames `next_frame` finds on the whole buffer.

use hl7v2::mllp::{Frame, Scanner, next_frame};

fn whole(data: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = data;
    let mut out = Vec::new();
    loop {
        match next_frame(buf) {
            Frame::Message {
                start,
                end,
                consumed,
            } => {
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

fn scanned(data: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut sc = Scanner::default();
    let mut buf = Vec::new();
    let mut found = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match sc.next(&buf) {
                Frame::Message {
                    start,
                    end,
                    consumed,
                } => {
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
    found
}

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
        let expected = whole(data);
        for size in [usize::from(*chunk), 1, 2, 3, 7, 64, data.len()] {
            assert_eq!(
                scanned(data, size),
                expected,
                "{path:?} in chunks of {size}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 1, "no input in {dir}");
}
