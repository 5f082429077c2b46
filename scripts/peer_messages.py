#!/usr/bin/env python3
"""Prints, as a JSON list, HL7 v2.5 messages written by others' libraries: one built
with hl7apy, one parsed and re-serialised by python-hl7. The Rust tests send them to
Parcours over MLLP: what these libraries write, Parcours must read."""
import json

import hl7
from hl7apy.core import Message


def by_hl7apy():
    m = Message("ADT_A01", version="2.5")
    m.msh.msh_3 = "GAM"
    m.msh.msh_4 = "CHVL"
    m.msh.msh_5 = "PARCOURS"
    m.msh.msh_6 = "GHT"
    m.msh.msh_7 = "20261123101500"
    m.msh.msh_9 = "ADT^A01^ADT_A01"
    m.msh.msh_10 = "HL7APY-1"
    m.msh.msh_11 = "P"
    m.msh.msh_12 = "2.5"
    m.msh.msh_18 = "UNICODE UTF-8"
    m.evn.evn_2 = "20261123101500"
    m.pid.pid_3 = "APY1^^^CHVL&450000021&M^PI"
    m.pid.pid_5 = "BIBLIOTHEQUE^Apy^Apy Lib^^^^L"
    m.pid.pid_7 = "19700101"
    m.pid.pid_8 = "F"
    m.pv1.pv1_2 = "I"
    m.pv1.pv1_3 = "REA^5^1"
    m.pv1.pv1_19 = "VAPY1"
    return m.to_er7()


def by_python_hl7():
    text = "\r".join([
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|20261123101500||ADT^A28^ADT_A05|PYHL7-1|P|2.5|||||FRA|UNICODE UTF-8",
        "EVN||20261123101500",
        "PID|1||PY1^^^CHVL&450000021&M^PI||PYTHON^Lib^Lib Py^^^^L||19650202|M",
    ])
    msg = hl7.parse(text)
    return str(msg)


if __name__ == "__main__":
    print(json.dumps([by_hl7apy(), by_python_hl7()]))
