#!/usr/bin/env python3
"""Validate HL7 v2.5 messages with hl7apy (STRICT): the file holds a JSON array of
ER7 strings (segments separated by \\r). Exit 1 on the first message hl7apy refuses,
with its message. Used by the Rust integration tests on the ACKs Parcours sends."""
import base64
import binascii
import json
import sys

try:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message
except ImportError:  # pragma: no cover
    sys.exit("hl7apy missing: pip install hl7apy")


TX_MAX = 65536


def embedded_documents_checked(text):
    """hl7apy reads OBX-5 (type "varies") as ST and so caps it at 199 characters,
    which no embedded document fits. For OBX segments of type ED, check here what
    the standard asks of the data (ED-4 Base64, ED-5 valid Base64 within the TX
    limit), then hand hl7apy the message with a short stand-in for ED-5 so that it
    checks everything else strictly."""
    segments = text.split("\r")
    for n, seg in enumerate(segments):
        fields = seg.split("|")
        if fields[0] != "OBX" or len(fields) < 6 or fields[2] != "ED":
            continue
        parts = fields[5].split("^")
        if len(parts) != 5 or parts[3] != "Base64":
            raise ValueError(f"OBX ED: Base64 attendu en ED-4, reçu {fields[5][:60]}")
        data = parts[4]
        if len(data) > TX_MAX:
            raise ValueError(f"OBX ED: {len(data)} caractères, au-delà de TX ({TX_MAX})")
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error as e:
            raise ValueError(f"OBX ED: Base64 invalide ({e})") from e
        parts[4] = "QUJD"
        fields[5] = "^".join(parts)
        segments[n] = "|".join(fields)
    return "\r".join(segments)


def main(path):
    with open(path, encoding="utf-8") as f:
        messages = json.load(f)
    if not messages:
        sys.exit("no message to validate")
    for i, text in enumerate(messages):
        try:
            text = embedded_documents_checked(text)
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
