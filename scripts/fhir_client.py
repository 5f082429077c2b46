#!/usr/bin/env python3
"""Drives Parcours's FHIR API with fhirpy, a client library nobody here wrote, as
an integrator would: create, read, update, search, count, page through the
`next` links, conditional create, a transaction Bundle (all or nothing), `_include`.
Prints what it saw as JSON;
an HTTP error from the server fails the run.

Usage: fhir_client.py BASE TOKEN   (BASE = http://host:port/fhir)
"""
import json
import sys

from fhirpy import SyncFHIRClient


def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    client = SyncFHIRClient(base, authorization=f"Bearer {token}")
    out = {}

    patient = client.resource(
        "Patient",
        name=[{"use": "official", "family": "Clientpy", "given": ["Ada", "Marie"]}],
        gender="female",
        birthDate="1980-02-03",
        telecom=[{"system": "phone", "use": "mobile", "value": "06 11 11 11 11"}],
        address=[{"use": "home", "line": ["1 rue de l'Éperon"], "postalCode": "75001",
                  "city": "Paris", "country": "FRA"}],
    )
    patient.save()
    out["created_id"] = patient.id
    out["created_version"] = patient["meta"]["versionId"]

    fetched = client.reference("Patient", patient.id).to_resource()
    out["read_family"] = fetched["name"][0]["family"]
    out["read_phone"] = fetched["telecom"][0]["value"]

    fetched["address"][0]["city"] = "Lyon"
    fetched["address"][0]["postalCode"] = "69001"
    fetched.save()
    again = client.reference("Patient", patient.id).to_resource()
    out["updated_version"] = again["meta"]["versionId"]
    out["updated_city"] = again["address"][0]["city"]

    found = client.resources("Patient").search(family="clientpy").fetch()
    out["search_ids"] = [p.id for p in found]
    out["count"] = client.resources("Patient").count()
    everyone = client.resources("Patient").limit(4).fetch_all()
    out["paged_ids"] = [p.id for p in everyone]

    # get_or_create: fhirpy's conditional create (If-None-Exist).
    ipp = next(i for i in again["identifier"] if i["type"]["coding"][0]["code"] == "PI")
    same, status = client.resources("Patient").search(
        identifier=f"{ipp['system']}|{ipp['value']}"
    ).get_or_create(client.resource("Patient", **{k: again[k] for k in
                                                  ("name", "gender", "birthDate")}))
    out["get_or_create"] = [same.id, status]

    # A transaction: a new identity and the first one's phone changed, together.
    current = client.reference("Patient", patient.id).to_resource()
    current["telecom"] = [{"system": "phone", "use": "mobile", "value": "06 22 22 22 22"}]
    answer = client.execute("", method="post", data={
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Patient", "gender": "male", "birthDate": "1975-05-06",
                          "name": [{"use": "official", "family": "Clientpy", "given": ["Paul"]}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": current.serialize(),
             "request": {"method": "PUT", "url": f"Patient/{patient.id}",
                         "ifMatch": f'W/"{current["meta"]["versionId"]}"'}},
        ],
    })
    out["transaction"] = [e["response"]["status"] for e in answer["entry"]]
    out["transaction_phone"] = client.reference("Patient", patient.id).to_resource()["telecom"][0]["value"]

    bundle = client.resources("Patient").search(family="clientpy").fetch_raw()
    out["raw_total_or_none"] = bundle.get("total")
    out["raw_links"] = [link["relation"] for link in bundle.get("link", [])]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
