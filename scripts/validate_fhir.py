#!/usr/bin/env python3
"""Validate FHIR R4 resources with fhir.resources (6.1.0, pydantic 1): the file holds a
JSON array of resources; every one must parse as its resourceType. Exit 1 on the first
invalid resource, with the validator's message. Used by the Rust integration tests."""
import json
import sys

try:
    from fhir.resources import construct_fhir_element
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("fhir.resources missing: pip install 'fhir.resources==6.1.0' 'pydantic<2'")


def main(path):
    with open(path, encoding="utf-8") as f:
        resources = json.load(f)
    if not resources:
        sys.exit("no resource to validate")
    for i, r in enumerate(resources):
        try:
            construct_fhir_element(r["resourceType"], r)
        except Exception as e:  # noqa: BLE001 - report whatever the validator says
            print(f"resource {i} ({r.get('resourceType')}): {e}")
            print(json.dumps(r, ensure_ascii=False, indent=1)[:4000])
            return 1
    print(f"{len(resources)} resources valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
