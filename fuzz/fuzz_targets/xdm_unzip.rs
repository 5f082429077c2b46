//! An IHE XDM archive from a mail: stored or deflated entries, CRCs, the size
//! cap; any bytes give entries or a refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = interop::xdm::unzip(data) {
        // The cap holds whatever the archive claims.
        let total: usize = entries.iter().map(|(_, b)| b.len()).sum();
        assert!(total <= interop::xdm::MAX_UNZIPPED);
    }
});
