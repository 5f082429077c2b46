// `scripts/bench-cluster`: one node, then three nodes, behind HAProxy on
// loopback (tests/e2e/cluster.mjs), on one PostgreSQL database and NATS:
// FHIR reads and MLLP ingest through the load balancer, the p99 of a presence
// event (on one node; then from node 2 to a doctor's list on node 1), and a
// node killed with SIGKILL during an MLLP run: every ACKed message present
// after, none filed twice. Bounded in count and time; stops what it started.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../../tests/e2e/cluster.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'target', 'release', 'parcours');
const load = join(root, 'target', 'release', 'cluster-load');
const waiting = join(root, 'target', 'release', 'waiting-load');
const num = (name, dflt) => Number(process.env[name] ?? dflt);
const CLIENTS = num('BENCH_CLIENTS', 16);
const SECONDS = num('BENCH_SECONDS', 10);
const SENDERS = num('BENCH_SENDERS', 12);
const PER = num('BENCH_PER', 300);
const PROBES = num('BENCH_PROBES', 200);
const work = mkdtempSync(join(tmpdir(), 'parcours-bench-cluster-'));

function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args.map(String), { env: { ...process.env, ...env }, timeout: 180_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      try { resolve(JSON.parse(stdout.trim().split('\n').pop())); } catch (e) { reject(new Error(`${cmd}: ${stdout}\n${stderr}`)); }
    });
  });
}

function psql(url, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', [url, '-Atc', sql], { maxBuffer: 1 << 26 }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim() ? stdout.trim().split('\n') : [])));
  });
}

const results = {};
try {
  for (const n of [1, 3]) {
    console.log(`— ${n} nœud(s) derrière HAProxy…`);
    const c = await startCluster({ bin, nodes: n, log: 'error' });
    try {
      const fhir = await run(load, ['fhir', c.base, CLIENTS, SECONDS]);
      const mllp = await run(load, ['mllp', `127.0.0.1:${c.mllpPort}`, SENDERS, PER, `b${n}`, join(work, `acked-${n}`)]);
      // Presence: the patient on the last node, the doctor's list on the first.
      const patientNode = c.nodes[c.nodes.length - 1];
      const presence = await run(waiting, [patientNode.base, patientNode.proc.pid, 0, PROBES], { WAITING_DOCTOR_BASE: c.nodes[0].base });
      results[n] = { fhir, mllp, presence };
      if (n === 3) {
        // Node 2 killed a second and a half into an MLLP run.
        const acked = join(work, 'acked-kill');
        const during = run(load, ['mllp', `127.0.0.1:${c.mllpPort}`, SENDERS, PER, 'kill', acked]);
        await new Promise((r) => setTimeout(r, 1_500));
        await c.nodes[1].kill('SIGKILL');
        const kill = await during;
        const ids = readFileSync(acked, 'utf8').split('\n').filter(Boolean);
        const rows = await psql(c.databaseUrl, "SELECT control_id || ' ' || count(*) FROM hl7_messages WHERE sender = 'GAM|CHVL' AND control_id LIKE 'kill-%' GROUP BY control_id");
        const filed = new Map(rows.map((r) => { const [id, k] = r.split(' '); return [id, Number(k)]; }));
        const patients = Number((await psql(c.databaseUrl, "SELECT count(*) FROM patients WHERE ipp LIKE 'killS%'"))[0]);
        kill.missing = ids.filter((id) => !filed.has(id)).length;
        kill.twice = [...filed.values()].filter((k) => k > 1).length;
        kill.filed = filed.size;
        kill.patients = patients;
        results.kill = kill;
      }
    } finally {
      await c.stop();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const [one, three] = [results[1], results[3]];
console.log('\nFHIR reads (GET /fhir/Patient/{id}, audited), %d clients, %d s, through HAProxy', CLIENTS, SECONDS);
console.log('nodes    reads/s   p50 ms   p99 ms  errors');
for (const [n, r] of [[1, one.fhir], [3, three.fhir]]) console.log(`${String(n).padEnd(6)}${f(r.per_second).padStart(10)}${f(r.p50_ms, 2).padStart(9)}${f(r.p99_ms, 2).padStart(9)}${String(r.errors).padStart(8)}`);
console.log(`ratio 3/1: ${f(three.fhir.per_second / one.fhir.per_second, 2)}`);
console.log('\nMLLP ingest (ADT^A28, ACK after commit), %d senders x %d, through HAProxy', SENDERS, PER);
console.log('nodes     msg/s   p50 ms   p99 ms  not AA');
for (const [n, r] of [[1, one.mllp], [3, three.mllp]]) console.log(`${String(n).padEnd(6)}${f(r.per_second).padStart(10)}${f(r.p50_ms, 2).padStart(9)}${f(r.p99_ms, 2).padStart(9)}${String(r.not_aa).padStart(8)}`);
console.log(`ratio 3/1: ${f(three.mllp.per_second / one.mllp.per_second, 2)}`);
console.log('\nPresence event to the doctor\'s open list, %d probes', PROBES);
console.log('path                       p50 ms   p99 ms   max ms  missing');
console.log(`${'same node'.padEnd(25)}${f(one.presence.p50_ms, 2).padStart(9)}${f(one.presence.p99_ms, 2).padStart(9)}${f(one.presence.max_ms, 2).padStart(9)}${String(one.presence.missing).padStart(9)}`);
console.log(`${'node 3 -> node 1 (NATS)'.padEnd(25)}${f(three.presence.p50_ms, 2).padStart(9)}${f(three.presence.p99_ms, 2).padStart(9)}${f(three.presence.max_ms, 2).padStart(9)}${String(three.presence.missing).padStart(9)}`);
console.log(`goal p99 < 100 ms across nodes: ${three.presence.p99_ms < 100 ? 'met' : 'NOT met'}`);
const k = results.kill;
console.log('\nNode 2 killed (SIGKILL) 1.5 s into an MLLP run of %d messages', SENDERS * PER);
console.log(`ACKed ${k.acked}/${k.expected}, sent again after a cut ${k.resent}, filed ${k.filed}, patients ${k.patients}, ACKed but missing ${k.missing}, filed twice ${k.twice}`);
const ok = k.missing === 0 && k.twice === 0 && k.acked === k.expected && k.patients === k.acked;
console.log(ok ? 'failover: every ACKed message is there, none twice' : 'failover: CHECK FAILED');
process.exit(ok ? 0 : 1);
