// A free TCP port on loopback, for the servers and stand-ins the scenarios start.
//
// The port is picked outside the kernel's ephemeral range: a number the
// kernel handed out for port 0 is free again once closed, and an outgoing
// connection (a node's PostgreSQL or NATS client) may take it before the
// process it was meant for binds it ("Address already in use"). Below (or
// above) that range the kernel never picks a port by itself, so only another
// listener can take it, which the test bind sees.
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';

const given = new Set();

/** The kernel's ephemeral range, `[low, high]` (Linux), else null. */
function ephemeralRange() {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && Number.isInteger(high) ? [low, high] : null;
  } catch {
    return null;
  }
}

/** The range to pick from: the larger side of the ephemeral range, if wide enough. */
function pickRange() {
  const eph = ephemeralRange();
  if (!eph) return null;
  const below = [10_000, eph[0] - 1];
  const above = [eph[1] + 1, 65_535];
  const width = ([a, b]) => b - a;
  const best = width(below) >= width(above) ? below : above;
  return width(best) >= 1_000 ? best : null;
}

const range = pickRange();

function tryBind(port) {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', (e) => (e.code === 'EADDRINUSE' || e.code === 'EACCES' ? resolve(null) : reject(e)));
    s.listen(port, '127.0.0.1', () => {
      const got = s.address().port;
      s.close(() => resolve(got));
    });
  });
}

export async function freePort() {
  if (range) {
    for (let i = 0; i < 200; i += 1) {
      const port = range[0] + Math.floor(Math.random() * (range[1] - range[0] + 1));
      if (given.has(port)) continue;
      if ((await tryBind(port)) === port) {
        given.add(port);
        return port;
      }
    }
  }
  // No range outside the ephemeral one, or nothing free in it: the kernel's pick.
  for (;;) {
    const port = await tryBind(0);
    if (port !== null && !given.has(port)) {
      given.add(port);
      return port;
    }
  }
}
