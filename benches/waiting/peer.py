"""The peer of `scripts/bench-waiting`: the same waiting room written with the
Python `websockets` library (asyncio). Patients keep `/rdv/{id}/salle/ws` open
(their presence); what they send (the device check) updates it; every change
is pushed as `salle` to the doctors' open lists on `/salle-attente/ws`. The
session cookie is checked against one value (no database: the peer is given
the cheaper road). Prints its port, serves on 127.0.0.1 until killed.
"""

import asyncio
import json
import sys
import time
from http import HTTPStatus

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SESSION = "parcours_session=peer"
presence: dict[str, dict] = {}
doctors: set = set()


pending: set = set()


def push() -> None:
    for d in list(doctors):
        task = asyncio.get_running_loop().create_task(d.send("salle"))
        pending.add(task)
        task.add_done_callback(pending.discard)


def check(connection, request):
    if request.headers.get("Cookie") != SESSION:
        return connection.respond(HTTPStatus.FORBIDDEN, "session\n")
    path = request.path
    if path == "/salle-attente/ws" or (path.startswith("/rdv/") and path.endswith("/salle/ws")):
        return None
    return connection.respond(HTTPStatus.NOT_FOUND, "introuvable\n")


async def handler(ws):
    path = ws.request.path
    if path == "/salle-attente/ws":
        doctors.add(ws)
        try:
            await ws.wait_closed()
        finally:
            doctors.discard(ws)
        return
    room = path.split("/")[2]
    p = presence.setdefault(room, {"camera": False, "microphone": False})
    p.update(connected=True, since=time.time())
    push()
    try:
        async for message in ws:
            try:
                v = json.loads(message)
            except ValueError:
                continue
            p["camera"] = bool(v.get("camera"))
            p["microphone"] = bool(v.get("microphone"))
            push()
    except ConnectionClosed:
        pass
    finally:
        p["connected"] = False
        push()


async def main() -> None:
    async with serve(handler, "127.0.0.1", 0, process_request=check, max_size=1024, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
