#!/usr/bin/env python3
"""Writes N IHE PAM France ADT messages, one per line (segments separated by \\r),
for scripts/bench-hl7: several events, French names with accents, escapes, INS with
valid keys. Deterministic (seeded) so that runs compare."""
import random
import sys

FAMILY = ["MARTIN", "BERNARD", "LEFÈVRE", "GARÇON", "D\\S\\ALMEIDA", "MÜLLER", "PETIT", "DUBOIS", "CHÂTEAU", "N'DIAYE"]
GIVEN = ["HÉLÈNE", "JEAN-PIERRE", "FRANÇOIS", "ÈVE", "MARIE LOUISE", "NOËL", "ZOÉ", "LUC"]
EVENTS = [("A01", "ADT_A01"), ("A02", "ADT_A02"), ("A03", "ADT_A03"), ("A04", "ADT_A01"), ("A08", "ADT_A01"),
          ("A28", "ADT_A05"), ("A31", "ADT_A05"), ("A11", "ADT_A09"), ("A40", "ADT_A39")]


def ins(rng):
    body = f"{rng.choice('12')}{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}{rng.choice(['75', '45', '13', '69'])}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
    return body + f"{97 - int(body) % 97:02d}"


def message(i, rng):
    event, structure = rng.choice(EVENTS)
    fam, giv = rng.choice(FAMILY), rng.choice(GIVEN)
    ipp = f"{rng.randint(1, 9_999_999):07d}"
    segs = [
        f"MSH|^~\\&|GAM|CHU-X|PARCOURS|GHT|20240306{rng.randint(0, 235959):06d}||ADT^{event}^{structure}|MSG{i:08d}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
        f"EVN||20240306111154||||20240306111154",
        f"PID|1||{ipp}^^^CHU-X&000897406&N^PI~{ins(rng)}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||{fam}^{giv.split()[0]}^{giv}^^^^L||19{rng.randint(30, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}|{rng.choice('MF')}|||{rng.randint(1, 99)} rue de la Paix^^PARIS^^75002^FRA^H~^^^^^^BDL^^75056|||||S||{rng.randint(1, 99999999):08d}^^^CHU-X&000897406&M^AN|||||||1|||||N||VALI|20240306111153",
        f"PV1|1|I|{rng.choice(['REA', 'CHIR', 'HDJ-ONCO', 'URG'])}^{rng.randint(1, 40)}^{rng.randint(1, 2)}^CHU-X&000897406&M^O||||||||||||||||{rng.randint(1, 999999999):09d}^^^CHU-X&000897406&M^VN||||||||||||||||||||||||||||||||V",
        f"ZBE|{i}^CHU-X^000897406|20240306110000||INSERT|N||Unité\\T\\soins^^^^^CHU-X&000897406&N^UF^^^6268|Unité^^^^^CHU-X&000897406&N^UF^^^6268|HMS",
    ]
    if event == "A40":
        segs.append(f"MRG|{rng.randint(1, 9_999_999):07d}^^^CHU-X&000897406&N^PI")
    return "\r".join(segs)


def main(n, out):
    rng = random.Random(42)
    with open(out, "w", encoding="utf-8", newline="") as f:
        for i in range(n):
            f.write(message(i, rng))
            f.write("\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
