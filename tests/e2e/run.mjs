// Runs one browser scenario against a fresh `parcours demo` on free ports:
//   node run.mjs NAME
// Starts the server (PARCOURS_BIN, default target/debug/parcours) with a temporary
// data dir, waits for /healthz, drives Debian's Chromium with playwright-core, checks
// every page with axe-core, saves screenshots in artifacts/ on failure, and stops
// the server whatever happens. Traffic goes to 127.0.0.1 only.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort } from './ports.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// A scenario module exports its steps as default and, if it needs peers started
// before the server (a hospital's MLLP listener...) or commands run on its
// database first, `prepare({ bin, env })` giving extra server environment, a
// `close()` and what the steps need; `command` says how the server starts
// (`demo` unless it says `serve`: an organisation without the demo). A scenario
// that starts its own servers (`ownServers`: the cluster) gives `base` and
// `mllpPort` from `prepare()` instead.
const modules = {
  login: await import('./scenarios/login.mjs'),
  beds: await import('./scenarios/beds.mjs'),
  monitoring: await import('./scenarios/monitoring.mjs'),
  teleconsultation: await import('./scenarios/teleconsultation.mjs'),
  documents: await import('./scenarios/documents.mjs'),
  setup: await import('./scenarios/setup.mjs'),
  sso: await import('./scenarios/sso.mjs'),
  cluster: await import('./scenarios/cluster.mjs'),
};
const scenarios = Object.fromEntries(Object.entries(modules).map(([k, m]) => [k, m.default]));

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`scénario inconnu: ${name ?? '(aucun)'}; disponibles: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}

async function waitHealthy(base, server, deadlineMs) {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (server.exitCode !== null) throw new Error(`le serveur s'est arrêté (code ${server.exitCode})`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`/healthz ne répond pas après ${deadlineMs} ms`);
}

const axeSource = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/** Runs axe-core (WCAG 2.1 A/AA rules) on the page; throws on any violation. */
async function checkA11y(page, label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
  if (result.violations.length > 0) {
    const lines = result.violations.map((v) => `- ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
    throw new Error(`axe-core: ${result.violations.length} violation(s) sur ${label}\n${lines.join('\n')}`);
  }
  console.log(`  axe-core: aucune violation sur ${label} (${result.passes.length} règles passées)`);
  if (process.env.PARCOURS_E2E_SHOTS) {
    mkdirSync(process.env.PARCOURS_E2E_SHOTS, { recursive: true });
    await page.screenshot({ path: join(process.env.PARCOURS_E2E_SHOTS, `${name}-${label.replaceAll(' ', '_')}.png`), fullPage: true });
  }
}

/** The page must not scroll sideways (a phone reads it in one column). */
async function checkNoHorizontalScroll(page, label) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) throw new Error(`${label}: la page déborde de ${overflow}px en largeur`);
}

const own = modules[name].ownServers === true;
const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), 'parcours-e2e-'));
const bin = process.env.PARCOURS_BIN ?? join(root, 'target', 'debug', 'parcours');
const serverEnv = { ...process.env, PARCOURS_LISTEN: `127.0.0.1:${port}`, PARCOURS_PUBLIC_URL: `http://127.0.0.1:${port}`, PARCOURS_MLLP_LISTEN: '127.0.0.1:0', PARCOURS_DATA_DIR: dataDir, PARCOURS_DATABASE_URL: process.env.PARCOURS_E2E_DATABASE_URL ?? '', PARCOURS_LOG: 'warn' };
const prepared = modules[name].prepare ? await modules[name].prepare({ bin, env: serverEnv }) : { env: {}, close: async () => {} };
const base = own ? prepared.base : `http://127.0.0.1:${port}`;
const server = own ? null : spawn(bin, [modules[name].command ?? 'demo'], {
  env: { ...serverEnv, ...prepared.env },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let serverOut = '';
if (server) server.stdout.on('data', (d) => { serverOut += d; });

const artifacts = join(here, 'artifacts');
let browser;
let page;
let failed = false;
const timer = setTimeout(async () => {
  console.error('délai global dépassé (180 s)');
  await prepared.close().catch(() => {});
  if (server) server.kill('SIGKILL');
  process.exit(3);
}, 180_000);
try {
  if (server) await waitHealthy(base, server, 60_000);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // A phone first: the patients and many professionals use one.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'fr-FR', bypassCSP: true });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  console.log(`scénario ${name} sur ${base} (base: ${own ? 'PostgreSQL, plusieurs nœuds' : process.env.PARCOURS_E2E_DATABASE_URL ? 'PostgreSQL' : 'SQLite embarqué'})`);
  const mllpPort = own ? prepared.mllpPort : Number((serverOut.match(/HL7 v2 \(MLLP\) sur [^:\s]+:(\d+)/) ?? [])[1]);
  // Scenarios with several users say which page is in front, for the failure screenshot.
  const track = (p) => { page = p; return p; };
  await scenarios[name]({ page, browser, base, root, mllpPort, prepared, track, checkA11y, checkNoHorizontalScroll, serverOut: () => serverOut });
  console.log(`scénario ${name}: réussi`);
} catch (e) {
  failed = true;
  console.error(`scénario ${name}: ÉCHEC\n${e.stack ?? e}`);
  if (page) {
    mkdirSync(artifacts, { recursive: true });
    const shot = join(artifacts, `${name}-${Date.now()}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.error(`capture d'écran: ${shot}`);
  }
} finally {
  clearTimeout(timer);
  if (browser) await browser.close().catch(() => {});
  await prepared.close().catch(() => {});
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
  }
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(failed ? '0 passed, 1 failed' : '1 passed, 0 failed');
process.exit(failed ? 1 : 0);
