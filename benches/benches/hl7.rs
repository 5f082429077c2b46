//! hl7v2 parse, path access, encode and MLLP framing on a PAM France A01.
//! `cargo bench -p parcours-benches`; the comparison with python-hl7 and hl7apy on
//! the same messages is `scripts/bench-hl7`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hl7v2::{Builder, Message};
use parcours_benches::ADT_A01;
use std::hint::black_box;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("hl7v2");
    g.throughput(Throughput::Bytes(ADT_A01.len() as u64));
    g.bench_function("parse A01", |b| {
        b.iter(|| Message::parse(black_box(ADT_A01.as_bytes())))
    });
    let m = Message::parse(ADT_A01.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("parse A01 + 6 paths", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(ADT_A01.as_bytes())).ok()?;
            let v = [
                m.get("PID-3(2).1").ok()?,
                m.get("PID-3(2).4.2").ok()?,
                m.get("PID-5.1").ok()?,
                m.get("PV1-3.1").ok()?,
                m.get("ZBE-4").ok()?,
                m.get("PID-32").ok()?,
            ];
            Some(v.iter().flatten().count())
        })
    });
    g.bench_function("to_tree A01", |b| b.iter(|| black_box(&m).to_tree()));
    g.bench_function("build ACK", |b| {
        b.iter(|| {
            hl7v2::ack::build(
                black_box(&m),
                hl7v2::ack::AckCode::Accept,
                &[],
                "1",
                "20240101000000",
            )
        })
    });
    g.bench_function("builder ORU", |b| {
        b.iter(|| {
            let mut x = Builder::new();
            let _ = x
                .set("MSH-3", "PARCOURS")
                .and_then(|x| x.set("MSH-9", "ORU^R01"))
                .and_then(|x| x.set("PID-5.1", "Lefèvre|Hélène"));
            let _ = x.set("OBX-5", black_box("température 38,5 °C\nfrissons"));
            x.encode()
        })
    });
    let framed: Vec<u8> = (0..100)
        .flat_map(|_| hl7v2::mllp::frame(ADT_A01.as_bytes()))
        .collect();
    g.throughput(Throughput::Bytes(framed.len() as u64));
    g.bench_function("split 100 MLLP frames", |b| {
        b.iter(|| hl7v2::batch::split(black_box(&framed)).len())
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
