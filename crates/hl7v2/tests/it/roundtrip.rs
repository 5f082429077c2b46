//! Properties: what the builder writes, the parser reads back identically; no
//! input makes the parser panic.

use hl7v2::{Builder, Message};
use proptest::prelude::*;

type Tree = Vec<(String, Vec<Vec<Vec<Vec<String>>>>)>;

fn text() -> impl Strategy<Value = String> {
    // Separators, the escape character, line breaks, accents and plain letters.
    proptest::collection::vec(
        prop_oneof![
            Just('|'),
            Just('^'),
            Just('~'),
            Just('\\'),
            Just('&'),
            Just('\n'),
            Just('\r'),
            Just('é'),
            Just('Œ'),
            Just('€'),
            Just(' '),
            Just('"'),
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
        ],
        0..8,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn field() -> impl Strategy<Value = Vec<Vec<Vec<String>>>> {
    proptest::collection::vec(
        proptest::collection::vec(proptest::collection::vec(text(), 0..3), 0..4),
        0..3,
    )
}

fn segment() -> impl Strategy<Value = (String, Vec<Vec<Vec<Vec<String>>>>)> {
    (
        prop_oneof![
            Just("PID"),
            Just("PV1"),
            Just("OBX"),
            Just("ZBE"),
            Just("NK1")
        ]
        .prop_map(str::to_owned),
        proptest::collection::vec(field(), 0..7),
    )
}

/// Removes trailing empties at every level, as the parser's tree does.
fn normalize(tree: Tree) -> Tree {
    tree.into_iter()
        .map(|(name, fields)| {
            let mut fields: Vec<_> = fields
                .into_iter()
                .map(|mut reps| {
                    for comps in reps.iter_mut() {
                        for subs in comps.iter_mut() {
                            while subs.last().is_some_and(String::is_empty) {
                                subs.pop();
                            }
                        }
                        while comps.last().is_some_and(Vec::is_empty) {
                            comps.pop();
                        }
                    }
                    while reps.last().is_some_and(Vec::is_empty) {
                        reps.pop();
                    }
                    reps
                })
                .collect();
            while fields.last().is_some_and(Vec::is_empty) {
                fields.pop();
            }
            (name, fields)
        })
        .collect()
}

fn build(tree: &Tree) -> String {
    let mut b = Builder::new();
    b.set("MSH-3", "TEST").unwrap();
    b.set("MSH-10", "1").unwrap();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (name, fields) in tree {
        let occ = match seen.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                seen.push((name.clone(), 1));
                1
            }
        };
        // Make sure the segment exists even when it has no value.
        b.set(&format!("{name}({occ})-1"), "").unwrap();
        for (f, reps) in fields.iter().enumerate() {
            for (r, comps) in reps.iter().enumerate() {
                for (c, subs) in comps.iter().enumerate() {
                    for (s, value) in subs.iter().enumerate() {
                        b.set(
                            &format!("{name}({occ})-{}({}).{}.{}", f + 1, r + 1, c + 1, s + 1),
                            value,
                        )
                        .unwrap();
                    }
                }
            }
        }
    }
    b.encode()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_encode_is_identity(tree in proptest::collection::vec(segment(), 0..6)) {
        let expected = normalize(tree.clone());
        let wire = build(&tree);
        let m = Message::parse(wire.as_bytes()).unwrap();
        let got: Tree = m.to_tree().into_iter().skip(1).collect();
        prop_assert_eq!(got, expected, "wire: {:?}", wire);
    }

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), prefix in any::<bool>()) {
        let input = if prefix { [&b"MSH|^~\\&|"[..], &bytes].concat() } else { bytes };
        if let Ok(m) = Message::parse(&input) {
            let _ = m.to_tree();
            let _ = m.get("PID-3(2).4.2");
            let _ = m.message_type();
        }
    }
}
