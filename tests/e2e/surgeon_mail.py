"""A private practice's secure-messaging mail, written with Python's own email,
zipfile and smtplib (independent of Parcours): the ANS level-1 sample CDA,
rewritten to name one patient (INS and birth traits) under a fresh document id,
in an IHE XDM archive (deflated, with a METADATA.XML), subject XDM/1.0/DDM.

usage: surgeon_mail.py SMTP_PORT SAMPLE.xml INS FAMILY GIVEN YYYYMMDD TO
Prints the document's id."""
import io
import re
import smtplib
import sys
import uuid
import zipfile
from email.message import EmailMessage

port, sample, ins, family, given, birth, to = sys.argv[1:8]
cda = open(sample, encoding="utf-8").read()
doc_id = "2.25." + str(uuid.uuid4().int)
cda = re.sub(r'(<ClinicalDocument[\s\S]*?<id root=")[^"]+(")', r"\g<1>" + doc_id + r"\g<2>", cda, count=1)
cda = cda.replace('extension="279035121518989" root="1.2.250.1.213.1.4.10"', f'extension="{ins}" root="1.2.250.1.213.1.4.8"')
cda = cda.replace("PAT-TROIS", family).replace("DOMINIQUE MARIE-LOUISE", given).replace("DOMINIQUE", given)
cda = cda.replace('<birthTime value="19790328"/>', f'<birthTime value="{birth}"/>')
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
m.set_content("Compte rendu ci-joint au format IHE XDM.")
m.add_attachment(archive.getvalue(), maintype="application", subtype="zip", filename="IHE_XDM.zip")
with smtplib.SMTP("127.0.0.1", int(port), timeout=10) as s:
    s.send_message(m)
print(doc_id)
