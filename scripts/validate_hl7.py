#!/usr/bin/env python3
"""Validate HL7 v2.5 messages with hl7apy (STRICT): the file holds a JSON array of
ER7 strings (segments separated by \\r). Exit 1 on the first message hl7apy refuses,
with its message. Used by the Rust integration tests on the ACKs Parcours sends."""
import json
import sys

try:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message
except ImportError:  # pragma: no cover
    sys.exit("hl7apy missing: pip install hl7apy")


def main(path):
    with open(path, encoding="utf-8") as f:
        messages = json.load(f)
    if not messages:
        sys.exit("no message to validate")
    for i, text in enumerate(messages):
        try:
            m = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, force_validation=True)
            m.validate()
        except Exception as e:  # noqa: BLE001 - report whatever the validator says
            print(f"message {i}: {type(e).__name__}: {e}")
            print(text.replace("\r", "\n"))
            return 1
    print(f"{len(messages)} messages valid (hl7apy, v2.5, strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
