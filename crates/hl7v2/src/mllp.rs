//! MLLP framing: a message travels as `0x0B` message `0x1C 0x0D`. [`next_frame`]
//! looks at a receive buffer and says whether a whole frame is there, so that a
//! connection only parses complete messages (mini-redis's `Incomplete`).

/// Start of block.
pub const START: u8 = 0x0B;
/// End of block (followed by [`CR`]).
pub const END: u8 = 0x1C;
/// Carriage return closing the frame.
pub const CR: u8 = 0x0D;

/// What the start of a buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole frame: the message is `buf[start..end]`; drop `consumed` bytes after use.
    Message {
        /// First byte of the message.
        start: usize,
        /// One past its last byte.
        end: usize,
        /// Bytes to drop from the buffer, frame included.
        consumed: usize,
    },
    /// No whole frame yet; the first `discard` bytes are noise outside any frame
    /// (or a frame abandoned by a new start block) and can be dropped.
    Incomplete {
        /// Bytes to drop now.
        discard: usize,
    },
}

/// Finds the first complete frame in `buf`. A second start block before the
/// end of block means the first frame was cut (the sender started again): it
/// is dropped, whether its end has arrived yet or not, so that the answer does
/// not depend on how the bytes were cut into reads.
pub fn next_frame(buf: &[u8]) -> Frame {
    let Some(start) = buf.iter().position(|&b| b == START) else {
        return Frame::Incomplete { discard: buf.len() };
    };
    let body = buf.get(start + 1..).unwrap_or(&[]);
    for (i, &b) in body.iter().enumerate() {
        match b {
            END if body.get(i + 1) == Some(&CR) => {
                return Frame::Message {
                    start: start + 1,
                    end: start + 1 + i,
                    consumed: start + 1 + i + 2,
                };
            }
            START => {
                return Frame::Incomplete {
                    discard: start + 1 + i,
                };
            }
            _ => {}
        }
    }
    Frame::Incomplete { discard: start }
}

/// Finds frames in a receive buffer that grows at its end, without reading a
/// byte twice: [`next_frame`]'s answers, in linear time however the bytes
/// trickle in (a sender dripping one byte at a time costs no more than one
/// sending the frame at once). The caller drops exactly the `discard` or
/// `consumed` bytes each answer names before the next call.
#[derive(Debug, Default, Clone)]
pub struct Scanner {
    /// Where the current frame's start block is, once seen.
    start: Option<usize>,
    /// How far the buffer was read.
    scanned: usize,
}

impl Scanner {
    /// Looks at `buf` (the previous buffer less what was dropped, plus new bytes).
    pub fn next(&mut self, buf: &[u8]) -> Frame {
        let start = match self.start {
            Some(s) => s,
            None => match buf
                .get(self.scanned..)
                .and_then(|b| b.iter().position(|&c| c == START))
            {
                Some(i) => self.scanned + i,
                None => {
                    *self = Scanner::default();
                    return Frame::Incomplete { discard: buf.len() };
                }
            },
        };
        // Read on from where the last call stopped (an END may wait for its CR).
        let from = self.scanned.max(start + 1);
        let mut i = from;
        while let Some(&b) = buf.get(i) {
            match b {
                END => match buf.get(i + 1) {
                    Some(&CR) => {
                        *self = Scanner::default();
                        return Frame::Message {
                            start: start + 1,
                            end: i,
                            consumed: i + 2,
                        };
                    }
                    Some(_) => {}
                    None => break,
                },
                // A second start block before any end: the first frame was cut.
                START => {
                    *self = Scanner {
                        start: Some(0),
                        scanned: 1,
                    };
                    return Frame::Incomplete { discard: i };
                }
                _ => {}
            }
            i += 1;
        }
        // Dropping the noise before the start shifts everything left.
        *self = Scanner {
            start: Some(0),
            scanned: i - start,
        };
        Frame::Incomplete { discard: start }
    }
}

/// Wraps a message in an MLLP frame.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.push(END);
    out.push(CR);
    out
}

/// The frames of a byte stream found both ways — `next_frame` on the whole
/// buffer, the [`Scanner`] fed in chunks as a connection is — with the
/// bounds every answer must respect checked on the way (a broken bound
/// panics). For this crate's tests, its integration tests and the fuzz target.
#[doc(hidden)]
pub mod check {
    use super::{Frame, Scanner, next_frame};

    fn part(buf: &[u8], start: usize, end: usize, consumed: usize) -> Vec<u8> {
        assert!(start <= end && end < consumed && consumed <= buf.len());
        buf.get(start..end).unwrap_or_default().to_vec()
    }

    /// The frames `next_frame` finds in `data`, whole.
    pub fn frames_whole(data: &[u8]) -> Vec<Vec<u8>> {
        let mut buf = data;
        let mut out = Vec::new();
        loop {
            match next_frame(buf) {
                Frame::Message {
                    start,
                    end,
                    consumed,
                } => {
                    out.push(part(buf, start, end, consumed));
                    buf = buf.get(consumed..).unwrap_or_default();
                }
                Frame::Incomplete { discard } => {
                    assert!(discard <= buf.len());
                    if discard == 0 {
                        break;
                    }
                    buf = buf.get(discard..).unwrap_or_default();
                }
            }
        }
        out
    }

    /// The frames a [`Scanner`] finds in `data` fed in chunks of `size`.
    pub fn frames_in_chunks(data: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut sc = Scanner::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in data.chunks(size.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                match sc.next(&buf) {
                    Frame::Message {
                        start,
                        end,
                        consumed,
                    } => {
                        out.push(part(&buf, start, end, consumed));
                        buf.drain(..consumed);
                    }
                    // After a cut frame, the next one may be whole already.
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_whole() {
        let f = frame(b"MSH|a");
        assert_eq!(
            next_frame(&f),
            Frame::Message {
                start: 1,
                end: 6,
                consumed: 8
            }
        );
        let mut two = f.clone();
        two.extend(frame(b"MSH|b"));
        let Frame::Message { consumed, .. } = next_frame(&two) else {
            panic!()
        };
        assert_eq!(
            next_frame(&two[consumed..]),
            Frame::Message {
                start: 1,
                end: 6,
                consumed: 8
            }
        );
    }

    #[test]
    fn the_scanner_finds_what_next_frame_finds_however_bytes_arrive() {
        let mut stream = b"noise".to_vec();
        stream.extend(frame(b"MSH|one"));
        stream.extend(b"\x0bMSH|cut");
        stream.extend(frame(b"MSH|two\x1cX"));
        stream.extend(b"\r\n");
        stream.extend(frame(b""));
        stream.extend(frame(b"MSH|three"));
        let want: Vec<Vec<u8>> = vec![
            b"MSH|one".to_vec(),
            b"MSH|two\x1cX".to_vec(),
            b"".to_vec(),
            b"MSH|three".to_vec(),
        ];
        for size in [1, 2, 3, 5, 7, 64, stream.len()] {
            assert_eq!(
                check::frames_in_chunks(&stream, size),
                want,
                "chunks of {size}"
            );
        }
        // The same answers as next_frame on a whole buffer.
        let mut sc = Scanner::default();
        for b in [
            &b"xx\x0bMSH"[..],
            b"\x0bMSH|cut\x0bMSH|ok",
            b"\x0bMSH\x1cX",
            b"noise",
        ] {
            assert_eq!(sc.clone().next(b), next_frame(b), "{b:?}");
        }
        // A drip of a large frame reads each byte once: the scan position
        // moves on with the buffer.
        let big = frame(&vec![b'a'; 10_000]);
        let mut buf = Vec::new();
        for &b in &big[..big.len() - 2] {
            buf.push(b);
            assert!(matches!(sc.next(&buf), Frame::Incomplete { discard: 0 }));
        }
        assert_eq!(sc.scanned, big.len() - 2);
        buf.extend_from_slice(&big[big.len() - 2..]);
        assert!(matches!(sc.next(&buf), Frame::Message { end: 10_001, .. }));
    }

    #[test]
    fn partial_and_noisy_buffers() {
        let f = frame(b"MSH|a");
        for cut in 0..f.len() {
            assert!(
                matches!(next_frame(&f[..cut]), Frame::Incomplete { .. }),
                "cut at {cut}"
            );
        }
        assert_eq!(next_frame(b"noise"), Frame::Incomplete { discard: 5 });
        let mut noisy = b"xx".to_vec();
        noisy.extend(&f);
        assert_eq!(
            next_frame(&noisy),
            Frame::Message {
                start: 3,
                end: 8,
                consumed: 10
            }
        );
        assert_eq!(next_frame(b"xx\x0bMSH"), Frame::Incomplete { discard: 2 });
        // A frame cut short by a new start block is dropped up to the new start.
        assert_eq!(
            next_frame(b"\x0bMSH|cut\x0bMSH|ok"),
            Frame::Incomplete { discard: 8 }
        );
        // The same when the new frame's end has arrived too: what is found does
        // not depend on how the bytes were cut into reads (found by the fuzzer).
        assert_eq!(
            next_frame(b"\x0bMSH|cut\x0bMSH|ok\x1c\r"),
            Frame::Incomplete { discard: 8 }
        );
        assert_eq!(
            next_frame(b"\x0bMSH|ok\x1c\r"),
            Frame::Message {
                start: 1,
                end: 7,
                consumed: 9
            }
        );
        // An end block without CR is not an end.
        assert_eq!(
            next_frame(b"\x0bMSH\x1cX"),
            Frame::Incomplete { discard: 0 }
        );
    }
}
