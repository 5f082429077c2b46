// Scenario "documents" (the part that does not need secure messaging yet): a
// second Parcours instance, started before the server, plays the DMP (an IHE
// MHD Document Recipient with its own API client). The secretary drafts a
// lettre de liaison from the template; the doctor validates it in one click;
// within seconds the dispatch dashboard shows it delivered to the DMP
// stand-in, which finds it by INS (ITI-67) and returns the CDA (ITI-68); the
// patient downloads it from her portal. The GP's copy is shown waiting, with
// why. axe-core on every page.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, expect } from './common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export async function prepare() {
  const bin = process.env.PARCOURS_BIN ?? join(root, 'target', 'debug', 'parcours');
  const dir = mkdtempSync(join(tmpdir(), 'parcours-dmp-'));
  const port = await freePort();
  const env = { ...process.env, PARCOURS_DATA_DIR: dir, PARCOURS_DATABASE_URL: '', PARCOURS_LISTEN: `127.0.0.1:${port}`, PARCOURS_MLLP_LISTEN: '127.0.0.1:0', PARCOURS_LOG: 'warn' };
  execFileSync(bin, ['demo', '--seed-only'], { env, stdio: 'ignore' });
  const out = execFileSync(bin, ['client', 'add', '--client-id', 'dmp-feed', '--name', 'Flux DMP', '--establishment', '450000013'], { env }).toString();
  const secret = out.match(/Secret \(affiché une seule fois\): (\S+)/)[1];
  const dmp = spawn(bin, ['serve'], { env, stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env: {
      PARCOURS_MHD_DESTINATION: `${base}/fhir`,
      PARCOURS_MHD_TOKEN_URL: `${base}/oauth/token`,
      PARCOURS_MHD_CLIENT_ID: 'dmp-feed',
      PARCOURS_MHD_CLIENT_SECRET: secret,
    },
    dmp: { base, secret },
    close: async () => { dmp.kill('SIGTERM'); },
  };
}

export default async function documents({ browser, base, prepared, track, checkA11y, checkNoHorizontalScroll }) {
  // The secretary drafts from the template.
  const desk = track(await login(browser, base, 'sec.durand', { viewport: { width: 1280, height: 800 } }));
  await desk.goto(`${base}/patients?nom=Lambert`);
  await desk.getByRole('link', { name: /LAMBERT/i }).first().click();
  await desk.locator('#dmp-badge').waitFor();
  await desk.getByRole('link', { name: 'Documents' }).click();
  await checkA11y(desk, 'documents du patient');
  await desk.getByLabel('Modèle').selectOption('lettre-liaison');
  await desk.getByRole('button', { name: 'Rédiger' }).click();
  await desk.waitForURL(/\/documents\/[0-9a-f-]+$/);
  const doc = desk.url().split('/documents/')[1];
  const text = await desk.getByLabel('Texte').inputValue();
  expect(text.includes('LAMBERT Monique') && text.includes('Suites à donner'), `brouillon pré-rempli attendu : ${text}`);
  await desk.getByLabel('Texte').fill(`${text}\nSortie le jour même, chimiothérapie orale poursuivie. Revoir en consultation dans un mois.`);
  await desk.getByLabel('Messagerie sécurisée du médecin traitant').fill('dr.generaliste@medecin.mssante.fr');
  await checkA11y(desk, 'brouillon');
  await desk.getByRole('button', { name: 'Enregistrer le brouillon' }).click();
  console.log(`  secrétaire : lettre de liaison ${doc} rédigée depuis le modèle`);

  // The doctor validates in one click.
  const doctor = track(await login(browser, base, 'dr.martin', { viewport: { width: 1280, height: 800 } }));
  await doctor.goto(`${base}/documents/${doc}`);
  await doctor.getByLabel('Messagerie sécurisée du médecin traitant').fill('dr.generaliste@medecin.mssante.fr');
  const t0 = Date.now();
  await doctor.getByRole('button', { name: 'Valider et envoyer' }).click();
  await doctor.getByRole('table', { name: 'Envois' }).waitFor();

  // Within seconds the dashboard shows it in the DMP.
  await desk.goto(`${base}/documents`);
  const docRow = () => desk.getByRole('table', { name: 'Documents et destinataires' })
    .locator('tr', { has: desk.getByRole('link', { name: 'Lettre de liaison à la sortie' }) });
  for (let i = 0; i < 50; i++) {
    const row = docRow();
    if ((await row.count()) > 0 && (await row.first().textContent()).includes('DMP (Mon Espace Santé) : remis')) break;
    await new Promise((r) => setTimeout(r, 200));
    await desk.reload();
  }
  const row = await docRow().first().textContent();
  expect(row.includes('DMP (Mon Espace Santé) : remis'), `tableau : ${row}`);
  expect(row.includes('Patient (portail) : remis'), `tableau : ${row}`);
  console.log(`  tableau : remis au DMP (instance MHD) en ${Date.now() - t0} ms après validation`);
  const stragglers = await desk.getByRole('table', { name: 'Destinataires pas encore servis' }).textContent();
  expect(stragglers.includes('messagerie non configurée'), `le médecin traitant doit apparaître en attente, avec la raison : ${stragglers}`);
  await checkA11y(desk, 'tableau de diffusion');

  // The DMP stand-in finds it by INS and gives the CDA back.
  const token = (await (await fetch(`${prepared.dmp.base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'dmp-feed', client_secret: prepared.dmp.secret }),
  })).json()).access_token;
  const search = await (await fetch(`${prepared.dmp.base}/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|261044523410185`, { headers: { authorization: `Bearer ${token}` } })).json();
  const found = (search.entry ?? []).map((e) => e.resource).find((r) => r.type.coding[0].code === '11490-0');
  expect(found, `ITI-67 : ${JSON.stringify(search).slice(0, 400)}`);
  const binary = await fetch(`${prepared.dmp.base}/fhir/Binary/${found.id}`, { headers: { authorization: `Bearer ${token}` } });
  const cda = await binary.text();
  expect(binary.ok && cda.includes('<ClinicalDocument') && cda.includes('11490-0'), 'ITI-68 : le CDA');
  console.log(`  DMP : trouvé par INS (ITI-67), CDA rendu (ITI-68, ${cda.length} octets)`);

  // The patient downloads it from her portal.
  const patient = track(await login(browser, base, 'patient.lambert', { totpStep: false }));
  await patient.getByRole('link', { name: 'Mes documents' }).click();
  await checkA11y(patient, 'mes documents');
  await checkNoHorizontalScroll(patient, 'mes documents');
  const [download] = await Promise.all([
    patient.waitForEvent('download'),
    patient.getByRole('link', { name: /Lettre de liaison à la sortie/ }).click(),
  ]);
  const pdf = readFileSync(await download.path());
  expect(pdf.subarray(0, 5).toString('latin1') === '%PDF-', 'un PDF');
  console.log(`  patiente : lettre téléchargée (${pdf.length} octets)`);
}
