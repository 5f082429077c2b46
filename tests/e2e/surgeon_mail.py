"""A private surgeon's secure-messaging mail, written with Python's own email,
zipfile and smtplib (independent of Parcours): an ANS level-1 sample CDA,
rewritten as an operative report naming one patient (INS and birth traits)
under a fresh document id, in an IHE XDM archive (deflated, with a
METADATA.XML), subject XDM/1.0/DDM.

usage: surgeon_mail.py SMTP_PORT SAMPLE.xml INS FAMILY GIVEN YYYYMMDD TO
Sends it and prints the document's id. `build()` is used by scripts/bench-intake."""
import io
import re
import smtplib
import sys
import uuid
import zipfile
from email.message import EmailMessage


def build(sample_text, ins, family, given, birth, to):
    """(document id, the mail as bytes)."""
    doc_id = "2.25." + str(uuid.uuid4().int)
    cda = re.sub(r'(<ClinicalDocument[\s\S]*?<id root=")[^"]+(")', r"\g<1>" + doc_id + r"\g<2>", sample_text, count=1)
    cda = cda.replace('extension="279035121518989" root="1.2.250.1.213.1.4.10"', f'extension="{ins}" root="1.2.250.1.213.1.4.8"')
    cda = cda.replace("PAT-TROIS", family).replace("DOMINIQUE MARIE-LOUISE", given).replace("DOMINIQUE", given)
    cda = cda.replace('<birthTime value="19790328"/>', f'<birthTime value="{birth}"/>')
    # A surgeon's report: the type and title of an operative report (the
    # sample's level-1 body, a PDF, stays as it is).
    cda = cda.replace('<code code="11502-2" displayName="CR d\'examens biologiques"', '<code code="34874-8" displayName="CR opératoire"', 1)
    cda = cda.replace("<title>Compte rendu d'examens biologiques</title>", "<title>Compte rendu opératoire — cholécystectomie</title>", 1)
    metadata = f"""<?xml version="1.0" encoding="UTF-8"?>
<SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">
<!-- uniqueId {doc_id}, patient {ins}^^^&amp;1.2.250.1.213.1.4.8&amp;ISO -->
</SubmitObjectsRequest>"""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.TXT", "Envoi IHE XDM du cabinet\r\n")
        z.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
        z.writestr("IHE_XDM/SUBSET01/DOCUMENT_01.XML", cda)
    m = EmailMessage()
    m["From"] = "Dr Paul Bernard <p.bernard@chirurgien.mssante.fr>"
    m["To"] = to
    m["Subject"] = "XDM/1.0/DDM"
    m["Message-ID"] = f"<{uuid.uuid4()}@chirurgien.mssante.fr>"
    m.set_content("Compte rendu ci-joint au format IHE XDM.")
    m.add_attachment(archive.getvalue(), maintype="application", subtype="zip", filename="IHE_XDM.zip")
    return doc_id, m.as_bytes(policy=m.policy.clone(linesep="\r\n"))


if __name__ == "__main__":
    port, sample, ins, family, given, birth, to = sys.argv[1:8]
    doc_id, raw = build(open(sample, encoding="utf-8").read(), ins, family, given, birth, to)
    with smtplib.SMTP("127.0.0.1", int(port), timeout=10) as s:
        s.sendmail("p.bernard@chirurgien.mssante.fr", [to], raw)
    print(doc_id)
