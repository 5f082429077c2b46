// Scenario "documents": a second Parcours instance, started before the
// server, plays the DMP (an IHE MHD Document Recipient with its own API
// client); aiosmtpd plays the GP's mail server; Debian's Dovecot serves the
// clinic's secure-messaging mailbox, fed by a second aiosmtpd. The secretary
// drafts a lettre de liaison from the template; the doctor validates it in one
// click; within seconds the dispatch dashboard shows it delivered to the DMP
// stand-in (which finds it by INS, ITI-67, and returns the CDA, ITI-68) and to
// the GP, whose mail server holds the XDM mail; the patient downloads it from
// her portal. Then a private surgeon's mail (written by Python's email,
// zipfile and smtplib) arrives: it is filed on the right patient and forwarded
// to the DMP. From her record, the doctor reads her DMP (the second Parcours:
// ITI-67 by INS, ITI-68) and opens the letter. axe-core on every page.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, expect } from './common.mjs';
import { freePort } from '../ports.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

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
  // Mail: the GP's server (aiosmtpd writing a Maildir), the clinic's mailbox
  // (Dovecot over a Maildir) and its incoming relay (aiosmtpd into that Maildir).
  const python = existsSync(join(root, '.venv', 'bin', 'python')) ? join(root, '.venv', 'bin', 'python') : 'python3';
  const mailDir = mkdtempSync(join(tmpdir(), 'parcours-mail-'));
  const [gpPort, mxPort, imapPort] = [await freePort(), await freePort(), await freePort()];
  const smtpd = (port, maildir) => spawn(python, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], { stdio: 'ignore' });
  const gp = smtpd(gpPort, join(mailDir, 'gp'));
  const imapDir = `/tmp/pimap-${process.pid}-${Date.now() % 100000}`;
  const dovecot = spawn(join(root, 'scripts', 'imap-server'), [imapDir, String(imapPort), 'secretariat', 'e2e-boite'], { stdio: 'ignore' });
  const listening = async (port) => {
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise((resolve) => {
        const c = createConnection({ host: '127.0.0.1', port }, () => { c.end(); resolve(true); });
        c.on('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`rien n'écoute sur ${port}`);
  };
  await listening(imapPort);
  const mx = smtpd(mxPort, join(imapDir, 'mail', 'secretariat'));
  await Promise.all([listening(gpPort), listening(mxPort)]);
  return {
    env: {
      PARCOURS_MHD_DESTINATION: `${base}/fhir`,
      PARCOURS_MHD_TOKEN_URL: `${base}/oauth/token`,
      PARCOURS_MHD_CLIENT_ID: 'dmp-feed',
      PARCOURS_MHD_CLIENT_SECRET: secret,
      PARCOURS_SMTP_URL: `smtp://127.0.0.1:${gpPort}`,
      PARCOURS_SMTP_FROM: 'Clinique du Val <secretariat@clinique.mssante.fr>',
      PARCOURS_IMAP_URL: `imap://secretariat@127.0.0.1:${imapPort}/INBOX`,
      PARCOURS_IMAP_PASSWORD: 'e2e-boite',
      PARCOURS_IMAP_FINESS: '450000013',
      PARCOURS_IMAP_POLL_SECONDS: '1',
    },
    dmp: { base, secret },
    mail: { python, gpMaildir: join(mailDir, 'gp'), mxPort },
    close: async () => {
      for (const p of [dmp, gp, mx, dovecot]) p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      for (const d of [imapDir, mailDir, dir]) rmSync(d, { recursive: true, force: true });
    },
  };
}

export default async function documents({ browser, base, prepared, track, checkA11y, checkNoHorizontalScroll }) {
  // The secretary drafts from the template.
  const desk = track(await login(browser, base, 'sec.durand', { viewport: { width: 1280, height: 800 } }));
  await desk.goto(`${base}/patients?nom=Lambert`);
  await desk.getByRole('link', { name: /LAMBERT/i }).first().click();
  await desk.locator('#dmp-badge').waitFor();
  await desk.getByRole('link', { name: 'Documents', exact: true }).click();
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
    const done = (await row.count()) > 0 ? await row.first().textContent() : '';
    if (['DMP (Mon Espace Santé) : remis', 'Médecin traitant : remis', 'Patient (portail) : remis'].every((x) => done.includes(x))) break;
    await new Promise((r) => setTimeout(r, 200));
    await desk.reload();
  }
  const row = await docRow().first().textContent();
  expect(row.includes('DMP (Mon Espace Santé) : remis'), `tableau : ${row}`);
  expect(row.includes('Patient (portail) : remis'), `tableau : ${row}`);
  console.log(`  tableau : remis au DMP (instance MHD), au médecin traitant (SMTP) et au portail en ${Date.now() - t0} ms après validation`);
  expect(row.includes('Médecin traitant : remis'), `le médecin traitant doit être servi : ${row}`);
  await checkA11y(desk, 'tableau de diffusion');

  // The GP's mail server holds the mail: subject XDM/1.0/DDM, the XDM archive
  // with the CDA (read by Python's email and zipfile) and the PDF.
  const gpNew = join(prepared.mail.gpMaildir, 'new');
  const gpMail = readdirSync(gpNew).map((f) => join(gpNew, f))
    .find((f) => readFileSync(f, 'latin1').includes('To: dr.generaliste@medecin.mssante.fr'));
  expect(gpMail, 'le serveur du médecin traitant a reçu le courriel');
  const parts = execFileSync(prepared.mail.python, ['-c', `
import email, email.policy, io, sys, zipfile
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
print(m['Subject'])
for p in m.iter_attachments():
    print(p.get_filename(), p.get_content_type())
    if p.get_filename() == 'IHE_XDM.zip':
        z = zipfile.ZipFile(io.BytesIO(p.get_payload(decode=True)))
        assert z.testzip() is None
        print(chr(10).join(z.namelist()))
        print('CDA' if b'<ClinicalDocument' in z.read('IHE_XDM/SUBSET01/DOCUMENT_01.XML') else 'pas de CDA')
`, gpMail]).toString();
  expect(parts.startsWith('XDM/1.0/DDM') && parts.includes('IHE_XDM.zip application/zip') && parts.includes('IHE_XDM/SUBSET01/METADATA.XML')
    && parts.includes('CDA') && parts.includes('document.pdf application/pdf'), `courriel du médecin traitant : ${parts}`);
  console.log('  médecin traitant : courriel XDM/1.0/DDM reçu (IHE_XDM.zip avec METADATA.XML et le CDA, PDF joint)');

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

  // From her record, the doctor reads her DMP (the second Parcours) and opens the letter.
  await doctor.goto(`${base}/patients?nom=Lambert`);
  await doctor.getByRole('link', { name: /LAMBERT/i }).first().click();
  await doctor.getByRole('link', { name: 'Documents du DMP' }).click();
  const dmpTable = doctor.getByRole('table', { name: 'Documents du DMP' });
  await dmpTable.waitFor();
  await checkA11y(doctor, 'documents du DMP');
  await checkNoHorizontalScroll(doctor, 'documents du DMP');
  const letterRow = dmpTable.locator('tr', { hasText: 'Lettre de liaison' }).first();
  const [dmpPdf] = await Promise.all([
    doctor.waitForEvent('download'),
    letterRow.getByRole('link', { name: 'Ouvrir' }).click(),
  ]);
  const dmpBytes = readFileSync(await dmpPdf.path());
  expect(dmpBytes.subarray(0, 5).toString('latin1') === '%PDF-', 'la lettre du DMP ouverte en PDF');
  console.log(`  médecin : DMP de Mme Lambert lu depuis son dossier (ITI-67 puis ITI-68), lettre ouverte (${dmpBytes.length} octets)`);

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

  // A private surgeon's mail arrives in the clinic's mailbox: filed on
  // Mme Lambert (by INS, her traits agreeing) and forwarded to the DMP.
  const sample = join(root, '..', 'shared', 'fixtures', 'cda', 'examples', 'DOC_NON_STRUCTURE_CDA-R2-N1.xml');
  const received = execFileSync(prepared.mail.python, [join(root, 'tests', 'e2e', 'surgeon_mail.py'), String(prepared.mail.mxPort), sample,
    '261044523410185', 'LAMBERT', 'MONIQUE', '19610412', 'secretariat@clinique.mssante.fr']).toString().trim();
  const t1 = Date.now();
  await desk.goto(`${base}/documents/recus`);
  const inRow = () => desk.getByRole('table', { name: 'Documents arrivés dans la boîte de messagerie sécurisée' })
    .locator('tr', { hasText: 'Compte rendu opératoire — cholécystectomie' });
  for (let i = 0; i < 75; i++) {
    if ((await inRow().count()) > 0 && (await inRow().first().textContent()).includes('remis')) break;
    await new Promise((r) => setTimeout(r, 200));
    await desk.reload();
  }
  const line = await inRow().first().textContent();
  expect(line.includes('classé') && line.includes('rattaché automatiquement (INS)') && line.includes('remis'), `document reçu : ${line}`);
  console.log(`  messagerie entrante : document ${received} classé sur Mme Lambert et remis au DMP en ${Date.now() - t1} ms`);
  await checkA11y(desk, 'documents reçus');
  await checkNoHorizontalScroll(desk, 'documents reçus');
  // The demo's surgeon report about someone unknown waits for a human.
  await desk.getByRole('link', { name: 'à rattacher' }).first().click();
  await desk.getByRole('heading', { name: 'Rattacher un document reçu' }).waitFor();
  expect((await desk.locator('#traits').textContent()).includes('GARNIER Hélène'), 'les traits lus dans le document');
  await checkA11y(desk, 'document à rattacher');
  await desk.getByRole('button', { name: 'Classer dans ce dossier' }).click();
  expect((await desk.getByRole('alert').textContent()).includes('choisissez un patient'), 'classer sans choisir est refusé');
  await desk.goto(`${base}/documents/recus`);
  await inRow().first().getByRole('link').first().click();
  await desk.waitForURL(/\/patients\/[0-9a-f-]+\/documents$/);
  expect((await desk.locator('main').textContent()).includes('Compte rendu opératoire — cholécystectomie'), 'classé dans le dossier de Mme Lambert');
  const inDmp = await (await fetch(`${prepared.dmp.base}/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|261044523410185`, { headers: { authorization: `Bearer ${token}` } })).json();
  expect((inDmp.entry ?? []).some((e) => e.resource.masterIdentifier?.value?.includes(received)), `le DMP a le document reçu : ${JSON.stringify(inDmp).slice(0, 300)}`);
  console.log('  DMP : le document reçu y est, trouvé par INS');

  // The doctor corrects the letter: a new version replaces the first everywhere.
  await doctor.goto(`${base}/documents/${doc}`);
  await doctor.getByRole('button', { name: 'Corriger (nouvelle version)' }).click();
  await doctor.waitForURL(/\/documents\/[0-9a-f-]+$/);
  const v2 = doctor.url().split('/documents/')[1];
  expect(v2 !== doc, 'une nouvelle version');
  const v2text = await doctor.getByLabel('Texte').inputValue();
  await doctor.getByLabel('Texte').fill(v2text.replace('dans un mois', 'dans trois semaines'));
  await doctor.getByLabel('Messagerie sécurisée du médecin traitant').fill('dr.generaliste@medecin.mssante.fr');
  await doctor.getByRole('button', { name: 'Valider et envoyer' }).click();
  await doctor.getByRole('table', { name: 'Envois' }).waitFor();
  expect((await doctor.locator('main').textContent()).includes('Corrige et remplace'), 'la version 2 dit ce qu\'elle remplace');
  await checkA11y(doctor, 'version corrigée');
  for (let i = 0; i < 50; i++) {
    const r = await (await fetch(`${prepared.dmp.base}/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|261044523410185`, { headers: { authorization: `Bearer ${token}` } })).json();
    const letters = (r.entry ?? []).map((e) => e.resource).filter((x) => x.type.coding[0].code === '11490-0');
    if (letters.some((x) => x.status === 'superseded') && letters.some((x) => x.status === 'current')) {
      console.log(`  correction : version 2 validée, la version 1 remplacée au DMP (${letters.length} versions, une courante)`);
      return;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('le DMP n\'a pas remplacé la version 1');
}
