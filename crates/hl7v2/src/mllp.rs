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

/// Finds the first complete frame in `buf`.
pub fn next_frame(buf: &[u8]) -> Frame {
    let Some(start) = buf.iter().position(|&b| b == START) else {
        return Frame::Incomplete { discard: buf.len() };
    };
    let body = buf.get(start + 1..).unwrap_or(&[]);
    for (i, w) in body.windows(2).enumerate() {
        if w == [END, CR] {
            return Frame::Message {
                start: start + 1,
                end: start + 1 + i,
                consumed: start + 1 + i + 2,
            };
        }
    }
    // A second start block before any end: the first frame was cut; drop it.
    if let Some(again) = body.iter().position(|&b| b == START) {
        return Frame::Incomplete {
            discard: start + 1 + again,
        };
    }
    Frame::Incomplete { discard: start }
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
        // An end block without CR is not an end.
        assert_eq!(
            next_frame(b"\x0bMSH\x1cX"),
            Frame::Incomplete { discard: 0 }
        );
    }
}
