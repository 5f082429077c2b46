// The FHIR peer measured beside Parcours by scripts/bench-fhir: a FHIR server
// built with @asymmetrik/node-fhir-server-core (Express; the framework checks
// and routes the request, the service below runs the query) serving Patient
// read, search and create from a table of the same PostgreSQL: one statement
// per request, no authorisation and no audit row (the least a FHIR facade
// does). The table `peer_patients` is filled by scripts/bench-fhir from the
// records Parcours holds, so both answer the same ids, names and dates.
// Usage: node fhir-peer.cjs PORT POSTGRES_URL (prints "listening" when ready).
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const FHIRServer = require('@asymmetrik/node-fhir-server-core');
const { Pool } = require('pg');

const [port, url] = process.argv.slice(2);
if (!port || !url) {
  console.error('usage: node fhir-peer.cjs PORT POSTGRES_URL');
  process.exit(2);
}
const pool = new Pool({ connectionString: url, max: 16 });

// A search's conditions from the query: family and given as prefixes of a
// name, birthdate exact; _count, _offset, _sort=-_lastUpdated, _summary=count.
function conditions(query) {
  const where = [];
  const values = [];
  if (query.family) {
    values.push(`${String(query.family).toLowerCase()}%`);
    where.push(`lower(family) LIKE $${values.length}`);
  }
  if (query.given) {
    values.push(`${String(query.given).toLowerCase()}%`);
    where.push(`lower(given) LIKE $${values.length}`);
  }
  if (query.birthdate) {
    values.push(String(query.birthdate).replace(/^eq/, ''));
    where.push(`birthdate = $${values.length}::date`);
  }
  return { where: where.length ? `WHERE ${where.join(' AND ')}` : '', values };
}

const service = {
  async searchById(args) {
    const r = await pool.query('SELECT resource FROM peer_patients WHERE id = $1', [args.id]);
    return r.rows[0] ? r.rows[0].resource : undefined;
  },
  async search(_args, { req }) {
    const { where, values } = conditions(req.query);
    if (req.query._summary === 'count') {
      const r = await pool.query(`SELECT count(*)::int AS n FROM peer_patients ${where}`, values);
      return { resourceType: 'Bundle', type: 'searchset', total: r.rows[0].n };
    }
    const count = Math.min(Number(req.query._count) || 20, 100);
    const offset = Number(req.query._offset) || 0;
    const order = req.query._sort === '-_lastUpdated' ? 'updated DESC' : 'family, given, id';
    const r = await pool.query(
      `SELECT resource FROM peer_patients ${where} ORDER BY ${order} LIMIT ${count} OFFSET ${offset}`,
      values,
    );
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: r.rows.map((row) => ({ resource: row.resource, search: { mode: 'match' } })),
    };
  },
  async create(_args, { req }) {
    const resource = req.body;
    const id = crypto.randomUUID();
    const name = (resource.name || [])[0] || {};
    resource.id = id;
    resource.meta = { versionId: '1', lastUpdated: new Date().toISOString() };
    await pool.query(
      'INSERT INTO peer_patients (id, family, given, birthdate, updated, resource) VALUES ($1, $2, $3, $4, now(), $5)',
      [id, name.family || '', (name.given || []).join(' '), resource.birthDate || null, resource],
    );
    return { id };
  },
};

const server = FHIRServer.initialize({
  logging: { level: 'error' },
  profiles: { patient: { service, versions: [FHIRServer.constants.VERSIONS['4_0_0']] } },
});
// The benchmark's paths are Parcours's (/fhir/Patient…); the framework's are
// /4_0_0/Patient….
http
  .createServer((req, res) => {
    req.url = req.url.replace(/^\/fhir\//, '/4_0_0/');
    server.app(req, res);
  })
  .listen(Number(port), '127.0.0.1', () => console.log('listening'));
