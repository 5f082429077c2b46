//! Untrusted bytes reach `Message::parse` from every MLLP connection: whatever
//! they are, parsing and what the intake reads first (the header, the paths it
//! asks for) must return, never panic. The deep walk is `parse_walk`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = hl7v2::Message::parse(data) {
        let _ = m.message_type();
        let _ = m.control_id();
        let _ = m.version();
        let _ = m.get("PID-3(2).4.2");
        let _ = m.get("MSH-9.2");
        let _ = m.raw("PID-5.1");
    }
});
