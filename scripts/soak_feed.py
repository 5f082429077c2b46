#!/usr/bin/env python3
"""Soak feed for scripts/soak: ADT over MLLP at a steady rate on a fixed pool of
patients (created once with A28, then updated with A31, as a GAM does all day),
while the database size is read from /metrics every SAMPLE seconds. Loopback
only, bounded in time. Prints one JSON object: the samples and the counts.

Usage: soak_feed.py HTTP_BASE MLLP_HOST:PORT SECONDS RATE TOKEN [SAMPLE]
"""
import json
import socket
import sys
import threading
import time
import urllib.request

START, END = b"\x0b", b"\x1c\x0d"
# First names change from one update to the next (letters only: INS rules).
GIVEN = ["Anne", "Marie", "Jeanne", "Louise", "Rose", "Claire", "Paule"]


def adt(event: str, control: str, ipp: str, given: str) -> bytes:
    structure = "ADT_A05" if event in ("A28", "A31") else "ADT_A01"
    return (
        f"MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|20261123101500||ADT^{event}^{structure}|{control}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM\r"
        f"EVN||20261123101500\r"
        f"PID|1||{ipp}^^^CHVL&450000021&M^PI||Soak^{given}^^^^^L||19500101|F\r"
        f"PV1|1|N\r"
    ).encode()


def exchange(sock: socket.socket, buf: bytearray, message: bytes) -> bytes:
    sock.sendall(START + message + END)
    while True:
        end = buf.find(END)
        if end >= 0:
            start = buf.find(START)
            ack = bytes(buf[start + 1 : end])
            del buf[: end + 2]
            return ack
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed without an ACK")
        buf.extend(chunk)


def metrics(base: str, token: str) -> dict:
    req = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {token}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    out = {"size": 0, "free": 0, "removed": 0, "hl7": 0}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name == "parcours_db_size_bytes":
            out["size"] = int(v)
        elif name == "parcours_db_free_bytes":
            out["free"] = int(v)
        elif name.startswith("parcours_retention_rows_removed_total"):
            out["removed"] += int(v)
        elif name.startswith("parcours_hl7_messages_total"):
            out["hl7"] += int(v)
    return out


def main() -> None:
    base, mllp, seconds, rate, token = sys.argv[1:6]
    sample_every = float(sys.argv[6]) if len(sys.argv) > 6 else 15.0
    host, port = mllp.rsplit(":", 1)
    if host not in ("127.0.0.1", "::1", "[::1]") or not base.startswith(("http://127.0.0.1:", "http://[::1]:")):
        sys.exit("loopback only")
    seconds, rate = float(seconds), float(rate)
    pool = 300
    stop = time.monotonic() + seconds
    samples = []
    done = threading.Event()

    def sampler() -> None:
        t0 = time.monotonic()
        while not done.is_set():
            try:
                m = metrics(base, token)
                m["t"] = round(time.monotonic() - t0)
                samples.append(m)
            except OSError as e:
                samples.append({"t": round(time.monotonic() - t0), "error": str(e)})
            done.wait(sample_every)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
    buf = bytearray()
    sent = not_aa = 0
    latencies = []
    run = f"{int(time.time())}"
    next_at = time.monotonic()
    while time.monotonic() < stop:
        i = sent % pool
        event = "A28" if sent < pool else "A31"
        t0 = time.monotonic()
        given = GIVEN[sent % len(GIVEN)]
        ack = exchange(sock, buf, adt(event, f"soak-{run}-{sent}", f"SOAK{i:04d}", given))
        latencies.append(time.monotonic() - t0)
        if b"MSA|AA|" not in ack:
            not_aa += 1
        sent += 1
        next_at += 1.0 / rate
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    sock.close()
    # One last sample after the feed.
    time.sleep(1)
    done.set()
    th.join()
    samples.append({**metrics(base, token), "t": round(seconds) + 1})
    latencies.sort()
    pct = lambda p: round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0
    print(json.dumps({"sent": sent, "not_aa": not_aa, "ack_p50_ms": pct(0.5), "ack_p99_ms": pct(0.99),
                      "ack_max_ms": round(1000 * latencies[-1], 1) if latencies else 0, "samples": samples}))


if __name__ == "__main__":
    main()
