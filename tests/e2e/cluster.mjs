// Three Parcours nodes on one PostgreSQL database and the NATS server, behind
// HAProxy, all on loopback: what `scripts/cluster`, the browser scenario
// `cluster` and `scripts/bench-cluster` start. Installs what is missing
// (HAProxy, the PostgreSQL client, the NATS server when none answers on
// 127.0.0.1:4222) from Debian's packages; `stop()` stops everything it started
// and drops the database it created.
//
//   node cluster.mjs [--nodes N] [--seconds S]   serves until Ctrl-C (or S seconds)
import { spawn, execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

function listening(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function has(cmd) {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** Installs Debian package `pkg` when `cmd` is missing. */
function ensure(cmd, pkg) {
  if (has(cmd)) return;
  console.log(`Installation de ${pkg} (Debian)…`);
  execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >/dev/null`], { stdio: 'inherit' });
  if (!has(cmd)) throw new Error(`${cmd} introuvable après l'installation de ${pkg}`);
}

async function waitFor(what, check, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} : pas prêt après ${ms} ms`);
}

async function healthy(base) {
  try { return (await fetch(`${base}/healthz`)).ok; } catch { return false; }
}

/** The HAProxy configuration: web pages and WebSockets pinned to a node by a
 * cookie (another node takes over when it is down), MLLP spread over the
 * nodes' listeners; every node's health checked twice a second. */
export function haproxyConfig({ httpPort, mllpPort, nodes }) {
  const web = nodes.map((n) => `  server ${n.id} 127.0.0.1:${n.port} cookie ${n.id}`).join('\n');
  const mllp = nodes.map((n) => `  server ${n.id} 127.0.0.1:${n.mllpPort}`).join('\n');
  return `global
  # Each connection takes two descriptors; a machine's limit is often 20 000.
  maxconn 4096

defaults
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # WebSockets (waiting room, consultation room, live queues) stay open.
  timeout tunnel 1h
  retries 2
  option redispatch

frontend web
  mode http
  bind 127.0.0.1:${httpPort}
  option forwardfor
  default_backend nodes

backend nodes
  mode http
  balance roundrobin
  option httpchk GET /healthz
  cookie PARCOURS_NODE insert indirect nocache
  default-server check inter 500ms fall 2 rise 1
${web}

frontend hl7
  mode tcp
  bind 127.0.0.1:${mllpPort}
  default_backend mllp

backend mllp
  mode tcp
  balance leastconn
  default-server check inter 500ms fall 2 rise 1
${mllp}
`;
}

/**
 * Starts the cluster: `nodes` nodes (the first seeds and animates the demo,
 * the others serve the same database), HAProxy in front. Resolves with
 * `{ base, mllpPort, nodes: [{ id, port, mllpPort, base, proc, kill(signal) }],
 * databaseUrl, natsUrl, stop() }`.
 */
export async function startCluster({ bin = process.env.PARCOURS_BIN ?? join(root, 'target', 'debug', 'parcours'), nodes: count = 3, log = 'warn', env: extra = {} } = {}) {
  ensure('haproxy', 'haproxy');
  ensure('psql', 'postgresql-client');
  const started = [];
  const work = mkdtempSync(join(tmpdir(), 'parcours-cluster-'));
  let createdDb = null;
  const stop = async () => {
    for (const p of started.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => { const t = setTimeout(() => { p.kill('SIGKILL'); r(); }, 10_000); p.once('exit', () => { clearTimeout(t); r(); }); });
      }
    }
    if (createdDb) {
      try {
        execFileSync('psql', [process.env.PARCOURS_CLUSTER_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', '-qc', `DROP DATABASE IF EXISTS ${createdDb} WITH (FORCE)`], { stdio: 'ignore' });
      } catch { /* already gone */ }
    }
    rmSync(work, { recursive: true, force: true });
  };
  try {
    // The NATS server: the machine's, else one of our own with JetStream.
    let natsUrl = process.env.PARCOURS_NATS_URL ?? 'nats://127.0.0.1:4222';
    if (!process.env.PARCOURS_NATS_URL && !(await listening(4222))) {
      ensure('nats-server', 'nats-server');
      const port = await freePort();
      const nats = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(work, 'nats')], { stdio: 'ignore' });
      started.push(nats);
      await waitFor('NATS', () => listening(port), 10_000);
      natsUrl = `nats://127.0.0.1:${port}`;
    }
    // One PostgreSQL database for every node.
    let databaseUrl = process.env.PARCOURS_CLUSTER_DATABASE_URL;
    if (!databaseUrl) {
      createdDb = `parcours_cluster_${process.pid}_${Date.now()}`;
      execFileSync('psql', [process.env.PARCOURS_CLUSTER_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', '-qc', `CREATE DATABASE ${createdDb}`], { stdio: 'inherit' });
      databaseUrl = `postgres://postgres@127.0.0.1:5432/${createdDb}`;
    }
    const httpPort = await freePort();
    const lbMllp = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const nodes = [];
    for (let i = 1; i <= count; i += 1) {
      const port = await freePort();
      const mllpPort = await freePort();
      nodes.push({ id: `node${i}`, port, mllpPort, base: `http://127.0.0.1:${port}` });
    }
    const startNode = async (n, command) => {
      const proc = spawn(bin, [command], {
        env: {
          ...process.env,
          PARCOURS_LISTEN: `127.0.0.1:${n.port}`,
          PARCOURS_MLLP_LISTEN: `127.0.0.1:${n.mllpPort}`,
          // Links, cookies and origin checks name the load balancer.
          PARCOURS_PUBLIC_URL: base,
          PARCOURS_TRUSTED_PROXIES: '127.0.0.1/32',
          PARCOURS_DATABASE_URL: databaseUrl,
          PARCOURS_NATS_URL: natsUrl,
          PARCOURS_NODE_ID: n.id,
          // One data directory: the nodes share the secret key (secret.key).
          PARCOURS_DATA_DIR: join(work, 'data'),
          PARCOURS_LOG: log,
          ...extra,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      started.push(proc);
      n.proc = proc;
      n.kill = (signal = 'SIGKILL') => { proc.kill(signal); return new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', r))); };
      await waitFor(`${n.id} (/healthz)`, async () => {
        if (proc.exitCode !== null) throw new Error(`${n.id} s'est arrêté (code ${proc.exitCode})`);
        return healthy(n.base);
      }, 90_000);
    };
    // The first node migrates the database and puts the demo in; the others join it.
    await startNode(nodes[0], 'demo');
    await Promise.all(nodes.slice(1).map((n) => startNode(n, 'serve')));
    const cfg = join(work, 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig({ httpPort, mllpPort: lbMllp, nodes }));
    execFileSync('haproxy', ['-c', '-q', '-f', cfg], { stdio: 'inherit' });
    const lb = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
    started.push(lb);
    await waitFor('HAProxy', async () => {
      if (lb.exitCode !== null) throw new Error(`HAProxy s'est arrêté (code ${lb.exitCode})`);
      return healthy(base);
    }, 10_000);
    // Every node seen up by HAProxy's checks before anyone is sent there.
    await new Promise((r) => setTimeout(r, 1_200));
    return { base, mllpPort: lbMllp, nodes, databaseUrl, natsUrl, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// `node cluster.mjs`: serve until Ctrl-C.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
  const c = await startCluster({ nodes: arg('--nodes', 3), log: process.env.PARCOURS_LOG ?? 'warn' });
  console.log(`Parcours en grappe : ${c.nodes.length} nœuds derrière HAProxy`);
  console.log(`  pages et API   ${c.base}  (identifiants de démonstration, mot de passe parcours-demo)`);
  console.log(`  HL7 v2 (MLLP)  127.0.0.1:${c.mllpPort}`);
  for (const n of c.nodes) console.log(`  ${n.id}          ${n.base}  MLLP 127.0.0.1:${n.mllpPort}`);
  console.log(`  NATS ${c.natsUrl}; PostgreSQL ${c.databaseUrl}`);
  console.log('Ctrl-C arrête tout.');
  let stopping = false;
  const end = async () => { if (stopping) return; stopping = true; console.log('Arrêt…'); await c.stop(); process.exit(0); };
  process.on('SIGINT', end);
  process.on('SIGTERM', end);
  const seconds = arg('--seconds', 0);
  if (seconds > 0) setTimeout(end, seconds * 1000);
}
