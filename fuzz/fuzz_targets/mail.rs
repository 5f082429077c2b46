//! A mail from the secure-messaging mailbox: the CDA documents are taken out
//! of it (attachments, XDM archives) whatever its MIME structure, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = interop::mss::digest_id(data);
    let _ = interop::mss::read_mail(data);
});
