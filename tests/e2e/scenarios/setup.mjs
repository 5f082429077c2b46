// Scenario "setup": a new organisation without the demo. `parcours init` and
// `parcours org apply` of a small clinic run on an empty database; the
// administrator follows the set-up link and enrols the second factor from the
// QR code (decoded here, as a phone would); invites a doctor, who enrols the
// same way and sets their hours, and a secretary; the clinic's GAM sends a
// patient's identity (ADT A28 over MLLP); the secretary invites the patient to
// the portal with a printed link; the patient chooses a password and books a
// video consultation; the admin disables the doctor, whose open page goes back
// to the login page. Every page passes axe-core and fits a phone.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import jsQR from 'jsqr';
import { bookableSlot, expect, sendMllp } from './common.mjs';
import { totp } from './totp.mjs';

export const command = 'serve';

const OID = '1.2.250.1.999.7';
const FINESS = '450000062';

/** Runs `parcours ARGS` on the scenario's database; its standard output. */
function parcours(bin, env, args) {
  const r = spawnSync(bin, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`parcours ${args.join(' ')} : code ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export async function prepare({ bin, env }) {
  const root = join(import.meta.dirname, '..', '..', '..');
  const init = parcours(bin, env, ['init', '--territory', 'GHT E2E', '--ipp-oid', OID, '--admin', 'admin.ght']);
  const link = (init.match(/\/lien\/[0-9a-f]{64}/) ?? [])[0];
  expect(link, `lien de mise en service absent : ${init}`);
  const applied = parcours(bin, env, ['org', 'apply', join(root, 'examples', 'org-clinique.toml')]);
  expect(applied.includes(`+ établissement ${FINESS}`), `org apply : ${applied}`);
  console.log(`  init et org apply : ${applied.trim().split('\n').pop()}`);
  return { env: {}, close: async () => {}, link };
}

/** Reads the QR code drawn on the page (an inline SVG) as a phone's camera would. */
async function scanQr(page) {
  const { width, height, data } = await page.evaluate(async () => {
    const svg = document.querySelector('.qr svg');
    const xml = new XMLSerializer().serializeToString(svg);
    const img = new Image();
    img.src = 'data:image/svg+xml;base64,' + btoa(unescape(encodeURIComponent(xml)));
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = 400;
    canvas.height = 400;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, 400, 400);
    ctx.drawImage(img, 0, 0, 400, 400);
    const d = ctx.getImageData(0, 0, 400, 400);
    return { width: d.width, height: d.height, data: Array.from(d.data) };
  });
  const code = jsQR(Uint8ClampedArray.from(data), width, height);
  expect(code, 'QR code illisible');
  return code.data;
}

async function newPage(browser, viewport = { width: 390, height: 844 }) {
  const context = await browser.newContext({ viewport, locale: 'fr-FR', bypassCSP: true });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

/** Follows a professional's one-time link: password, QR code, code; the secret. */
async function enrol(page, url, password, label, checkA11y, checkNoHorizontalScroll) {
  await page.goto(url);
  await checkA11y(page, `lien ${label}`);
  await checkNoHorizontalScroll(page, `lien ${label}`);
  await page.getByLabel('Mot de passe (12 caractères au moins)').fill(password);
  await page.getByLabel('Le même mot de passe, encore une fois').fill(password);
  const uri = await scanQr(page);
  expect(uri.startsWith('otpauth://totp/'), `URI TOTP attendue, lu ${uri}`);
  const secret = new URL(uri).searchParams.get('secret');
  await page.getByLabel('Code à 6 chiffres').fill(totp(secret));
  await page.getByRole('button', { name: 'Valider' }).click();
  await page.getByRole('heading', { name: "C'est fait" }).waitFor();
  const codes = await page.locator('[data-recovery-codes] code').count();
  expect(codes === 10, `10 codes de secours attendus, ${codes} affichés`);
  await checkA11y(page, `codes de secours ${label}`);
  console.log(`  ${label} : second facteur enrôlé depuis le QR code, ${codes} codes de secours`);
  return secret;
}

/** Logs in with a password and, for a professional, the TOTP of `secret`. */
async function logIn(page, base, username, password, secret) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Identifiant').fill(username);
  await page.getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  if (secret) {
    await page.waitForURL(`${base}/login/totp`);
    await page.getByLabel('Code à 6 chiffres').fill(totp(secret));
    await page.getByRole('button', { name: 'Valider' }).click();
  }
  await page.waitForURL(`${base}/`);
}

async function invite(admin, username, name, role, checkA11y) {
  await admin.getByLabel('Identifiant de connexion').fill(username);
  await admin.getByLabel('Nom affiché').fill(name);
  await admin.getByLabel('Établissement').first().selectOption({ label: 'Clinique des Acacias' });
  await admin.getByLabel('Rôle').first().selectOption(role);
  await admin.getByRole('button', { name: 'Inviter' }).click();
  await admin.getByText(`${name} est invité(e).`).waitFor();
  await checkA11y(admin, `invitation ${username}`);
  return (await admin.locator('code[data-link]').innerText()).trim();
}

export default async function setup({ browser, base, mllpPort, prepared, track, checkA11y, checkNoHorizontalScroll }) {
  // 1. The administrator's set-up link.
  const admin = track(await newPage(browser));
  const adminPw = 'administrateur du GHT';
  const adminSecret = await enrol(admin, `${base}${prepared.link}`, adminPw, 'administrateur', checkA11y, checkNoHorizontalScroll);
  await admin.goto(`${base}${prepared.link}`);
  await admin.getByText("Ce lien n'est plus valable").waitFor();
  await logIn(admin, base, 'admin.ght', adminPw, adminSecret);
  await admin.getByRole('link', { name: /Administration/ }).click();
  await checkA11y(admin, 'administration');
  await admin.getByRole('link', { name: /Établissements, unités/ }).click();
  await admin.getByText('Clinique des Acacias').first().waitFor();
  await checkA11y(admin, 'établissements');
  await checkNoHorizontalScroll(admin, 'établissements');

  // 2. The admin invites a doctor and a secretary.
  await admin.goto(`${base}/admin/personnes`);
  await checkA11y(admin, 'personnes');
  await checkNoHorizontalScroll(admin, 'personnes');
  const doctorLink = await invite(admin, 'dr.acacias', 'Dr Jeanne Acacia', 'doctor', checkA11y);
  const deskLink = await invite(admin, 'sec.acacias', 'Lucie Secrétaire', 'secretary', checkA11y);

  // 3. The doctor enrols and sets the week: every day, all day, 20-minute video slots.
  const doctor = track(await newPage(browser));
  const doctorPw = 'docteur des Acacias';
  const doctorSecret = await enrol(doctor, doctorLink, doctorPw, 'médecin', checkA11y, checkNoHorizontalScroll);
  await logIn(doctor, base, 'dr.acacias', doctorPw, doctorSecret);
  await doctor.getByRole('link', { name: 'Horaires de consultation et absences' }).click();
  await checkA11y(doctor, 'horaires');
  await checkNoHorizontalScroll(doctor, 'horaires');
  for (let day = 1; day <= 3; day++) {
    await doctor.getByLabel(`Jour, ligne ${day}`).selectOption(String(day));
    await doctor.getByLabel(`Début, ligne ${day}`).fill('00:00');
    await doctor.getByLabel(`Fin, ligne ${day}`).fill('23:40');
    await doctor.getByLabel(`Durée, ligne ${day}`).fill('20');
  }
  await doctor.getByRole('button', { name: 'Enregistrer la semaine type' }).click();
  await doctor.getByText('Semaine type enregistrée : 3 plage(s).').waitFor();
  // Three more days, on the empty rows the page now offers.
  for (let day = 4; day <= 6; day++) {
    await doctor.getByLabel(`Jour, ligne ${day}`).selectOption(String(day));
    await doctor.getByLabel(`Début, ligne ${day}`).fill('00:00');
    await doctor.getByLabel(`Fin, ligne ${day}`).fill('23:40');
    await doctor.getByLabel(`Durée, ligne ${day}`).fill('20');
  }
  await doctor.getByRole('button', { name: 'Enregistrer la semaine type' }).click();
  await doctor.getByText('Semaine type enregistrée : 6 plage(s).').waitFor();
  for (let day = 7; day <= 7; day++) {
    await doctor.getByLabel(`Jour, ligne ${day}`).selectOption(String(day));
    await doctor.getByLabel(`Début, ligne ${day}`).fill('00:00');
    await doctor.getByLabel(`Fin, ligne ${day}`).fill('23:40');
    await doctor.getByLabel(`Durée, ligne ${day}`).fill('20');
  }
  await doctor.getByRole('button', { name: 'Enregistrer la semaine type' }).click();
  await doctor.getByText('Semaine type enregistrée : 7 plage(s).').waitFor();
  console.log('  médecin : semaine type enregistrée (7 jours)');

  // 4. The clinic's GAM sends the patient's identity.
  const ts = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 12);
  const ack = await sendMllp(mllpPort, [
    `MSH|^~\\&|GAM|ACACIAS|PARCOURS|GHT|${ts}||ADT^A28^ADT_A05|SETUP-1|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8`,
    `EVN||${ts}`,
    'PID|1||SETUP1^^^ACACIAS&450000062&M^PI||Portail^Paulette^^^^^L||19590312|F',
    'PV1|1|N',
  ].join('\r') + '\r');
  expect(ack.includes('MSA|AA|SETUP-1'), `ACK attendu AA, reçu ${ack}`);

  // 5. The secretary enrols, finds the patient and prints her portal invitation.
  const desk = track(await newPage(browser));
  const deskPw = 'secrétariat des Acacias';
  const deskSecret = await enrol(desk, deskLink, deskPw, 'secrétaire', checkA11y, checkNoHorizontalScroll);
  await logIn(desk, base, 'sec.acacias', deskPw, deskSecret);
  await desk.goto(`${base}/patients?nom=Portail`);
  await desk.getByRole('link', { name: /PORTAIL Paulette/i }).click();
  await desk.getByRole('button', { name: 'Inviter sur le portail' }).click();
  await desk.getByRole('heading', { name: 'Invitation au portail patient' }).waitFor();
  await checkA11y(desk, 'invitation au portail');
  await checkNoHorizontalScroll(desk, 'invitation au portail');
  const patientLogin = (await desk.locator('[data-login]').innerText()).trim();
  const printed = await scanQr(desk);
  expect(printed === (await desk.locator('code[data-link]').innerText()).trim(), 'le QR code imprimé porte le lien');

  // 6. The patient chooses a password and books a video consultation.
  const patient = track(await newPage(browser));
  await patient.goto(printed);
  await checkA11y(patient, 'lien patient');
  const patientPw = 'mon mot de passe Parcours';
  await patient.getByLabel('Mot de passe (12 caractères au moins)').fill(patientPw);
  await patient.getByLabel('Le même mot de passe, encore une fois').fill(patientPw);
  await patient.getByRole('button', { name: 'Valider' }).click();
  await patient.getByRole('heading', { name: "C'est fait" }).waitFor();
  await logIn(patient, base, patientLogin, patientPw, null);
  await patient.goto(`${base}/rdv/prendre`);
  await patient.getByRole('link', { name: /Dr Jeanne Acacia/ }).click();
  await checkA11y(patient, 'créneaux');
  await checkNoHorizontalScroll(patient, 'créneaux');
  await (await bookableSlot(patient)).click();
  await patient.waitForURL(/\/rdv\/[0-9a-f-]+$/);
  await patient.locator('#status').getByText('confirmé').waitFor();
  await checkA11y(patient, 'rendez-vous pris');
  console.log(`  patiente ${patientLogin} : rendez-vous vidéo pris`);

  // 7. The admin disables the doctor, whose open waiting room goes to the login page.
  await doctor.goto(`${base}/salle-attente`);
  await doctor.locator('html[data-live-ws="open"]').waitFor({ state: 'attached' });
  await admin.goto(`${base}/admin/personnes`);
  await admin.locator('section[data-username="dr.acacias"]').getByRole('button', { name: 'Désactiver le compte' }).click();
  await admin.locator('section[data-username="dr.acacias"]').getByText('Compte désactivé').waitFor();
  await doctor.waitForURL(`${base}/login`, { timeout: 10_000 });
  console.log('  médecin désactivé : sa page ouverte est revenue à la connexion');
}
