// The peer of `scripts/bench-mllp`: node-hl7-server (npm) receiving the same
// MLLP traffic and doing the least an integration engine does with it: one
// INSERT of the raw message and its ACK into PostgreSQL, committed, then the
// ACK (ACK after commit, as Parcours). Usage: node hl7-peer.mjs PORT PG_URL
import { Server } from 'node-hl7-server';
import pg from 'pg';

const [port, url] = process.argv.slice(2);
if (!port || !url) {
  console.error('usage: node hl7-peer.mjs PORT PG_URL');
  process.exit(2);
}
// As many connections as Parcours's PostgreSQL pool (16).
const pool = new pg.Pool({ connectionString: url, max: 16 });
await pool.query(
  'CREATE TABLE IF NOT EXISTS peer_messages (id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), raw text NOT NULL, ack text NOT NULL)'
);
let failed = 0;
const server = new Server({ bindAddress: '127.0.0.1' });
const inbound = server.createInbound({ port: Number(port) }, async (req, res) => {
  // The library builds the ACK inside sendResponse, after which it writes it
  // at once; build it first (the same method) so that it is stored before
  // it is sent.
  const ack = res._createAckMessage('AA', req.getMessage());
  try {
    await pool.query('INSERT INTO peer_messages (raw, ack) VALUES ($1, $2)', [
      req.getMessage().toString(),
      ack.toString(),
    ]);
  } catch (e) {
    // Not stored: no ACK, the sender resends (as Parcours does).
    failed += 1;
    return;
  }
  res._createAckMessage = () => ack;
  await res.sendResponse('AA');
});
inbound.on('listen', () => console.log(`peer listening on 127.0.0.1:${port}`));
const stop = async () => {
  await inbound.close();
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM peer_messages');
  console.log(`peer stored ${rows[0].n} messages, ${failed} failed`);
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
