#!/usr/bin/env python3
"""Parses the corpus with python-hl7 and hl7apy (the peers of scripts/bench-hl7) and
prints one JSON line per parser: messages, bytes, seconds. hl7apy, much slower, is
measured on the first HL7APY_MAX messages (default 2,000) to keep the run bounded."""
import json
import os
import sys
import time


def load(path):
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    messages = [line for line in text.split("\n") if line.startswith("MSH")]
    return data, messages, time.perf_counter() - t0


def bench_python_hl7(messages):
    import hl7
    t0 = time.perf_counter()
    for m in messages:
        hl7.parse(m)
    return time.perf_counter() - t0


def bench_hl7apy(messages):
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message
    t0 = time.perf_counter()
    for m in messages:
        parse_message(m, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    return time.perf_counter() - t0


def main(path):
    data, messages, load_s = load(path)
    size = len(data)
    s = bench_python_hl7(messages) + load_s
    print(json.dumps({"parser": "python-hl7", "messages": len(messages), "bytes": size, "seconds": s}))
    cap = int(os.environ.get("HL7APY_MAX", "2000"))
    subset = messages[:cap]
    sub_bytes = sum(len(m.encode("utf-8")) + 1 for m in subset)
    s = bench_hl7apy(subset) + load_s * len(subset) / max(1, len(messages))
    print(json.dumps({"parser": "hl7apy", "messages": len(subset), "bytes": sub_bytes, "seconds": s}))


if __name__ == "__main__":
    main(sys.argv[1])
