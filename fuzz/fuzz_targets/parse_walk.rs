//! Every accessor over a parsed message (the tree, every field, repetition,
//! component and sub-component decoded, the ACK, batch splitting) returns
//! whatever the bytes, never panics. Slower per input than `parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = hl7v2::Message::parse(data) {
        let _ = m.to_tree();
        let _ = m.get("PID-3(2).4.2");
        let _ = m.get("MSH-9.2");
        let _ = hl7v2::ack::build(&m, hl7v2::ack::AckCode::Accept, &[], "x", "20240101000000");
        for s in m.segments() {
            for n in 0..=s.field_count() + 1 {
                if let Some(f) = s.field(n) {
                    let _ = f.decoded();
                    for r in f.repetitions() {
                        for c in r.components() {
                            let _ = c.subcomponents().map(|x| x.decoded()).count();
                        }
                    }
                }
            }
        }
    }
    let _ = hl7v2::batch::split(data);
});
