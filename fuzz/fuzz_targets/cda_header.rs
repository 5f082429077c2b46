//! A CDA received by mail or MHD: its header is read (DTDs refused) whatever
//! the XML, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = interop::cda::read_header(data);
});
