//! Files people send (a patient's photo, a document shared in a
//! consultation): what they are, from their first bytes.

/// The largest photo a patient may attach to an alert.
pub const MAX_PHOTO: usize = 5 * 1024 * 1024;

/// What a file a person sends is, from its first bytes (the browser's word is not
/// taken): a JPEG or PNG photo, or a PDF; anything else is refused by the caller.
pub fn sniff_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}
