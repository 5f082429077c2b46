// Scenario "teleconsultation": the secretary books a video appointment for a
// patient she finds; the patient opens its waiting room, checks camera and
// microphone (Chromium's fake devices) and says she is ready; the doctor lets
// her in; her page moves to the room by itself; the WebRTC connection reaches
// "connected" on both sides and each receives video frames; the chat goes both
// ways; the patient shares a photo. The doctor closes with a prescription; the
// patient's download is refused; she pays through a local stand-in of the
// payment provider (Stripe's checkout API and its signed webhook); the doctor
// approves; the download now gives a PDF. An interpreter joins the call by a
// single-use link (a third browser with fake media): she checks her devices,
// waits, the doctor lets her in from the room, and the three browsers each
// receive the two others' video; she sees no record, and leaves when the
// consultation closes. axe-core on the patient's and the guest's pages.
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bookLambertWithMartin, login, expect, receivesVideo, receivesVideos } from './common.mjs';

const SECRET_KEY = 'sk_test_e2e';
const WEBHOOK_SECRET = 'whsec_e2e';

/**
 * A stand-in for the payment provider: `POST /v1/checkout/sessions` (bearer
 * key, form-encoded, as Stripe), its hosted page `/c/pay/{id}` with a pay
 * button, and on paying the `checkout.session.completed` event posted to the
 * platform's webhook, signed as Stripe documents it (`Stripe-Signature:
 * t=…,v1=HMAC-SHA256(secret, "t.body")`), before sending the browser back.
 */
export async function prepare() {
  const sessions = new Map();
  const state = { webhook: null, deliveries: [] };
  const body = (req) => new Promise((resolve) => { let b = ''; req.on('data', (d) => { b += d; }); req.on('end', () => resolve(b)); });
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/v1/checkout/sessions') {
      const form = new URLSearchParams(await body(req));
      if (req.headers.authorization !== `Bearer ${SECRET_KEY}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { message: 'Invalid API Key provided' } }));
      }
      const id = `cs_test_${sessions.size + 1}`;
      sessions.set(id, {
        id,
        reference: form.get('client_reference_id'),
        amount: Number(form.get('line_items[0][price_data][unit_amount]')),
        currency: form.get('line_items[0][price_data][currency]'),
        label: form.get('line_items[0][price_data][product_data][name]'),
        success: form.get('success_url'),
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ id, object: 'checkout.session', url: `http://127.0.0.1:${server.address().port}/c/pay/${id}` }));
    }
    const m = url.pathname.match(/^\/c\/pay\/(cs_test_\d+)$/);
    const s = m && sessions.get(m[1]);
    if (s && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(`<!doctype html><html lang="fr"><title>Paiement</title><main><h1>${s.label}</h1><p>${(s.amount / 100).toFixed(2)} ${s.currency}</p><form method="post"><button>Payer</button></form></main></html>`);
    }
    if (s && req.method === 'POST') {
      const event = JSON.stringify({
        id: `evt_${s.id}`, object: 'event', type: 'checkout.session.completed',
        data: { object: { id: s.id, object: 'checkout.session', client_reference_id: s.reference, payment_status: 'paid', amount_total: s.amount, currency: s.currency } },
      });
      const t = Math.floor(Date.now() / 1000);
      const v1 = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${event}`).digest('hex');
      const r = await fetch(state.webhook, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1}` }, body: event });
      state.deliveries.push({ status: r.status, body: await r.text() });
      res.writeHead(303, { location: s.success });
      return res.end();
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    env: {
      PARCOURS_PAYMENT_API_URL: `http://127.0.0.1:${server.address().port}`,
      PARCOURS_PAYMENT_SECRET_KEY: SECRET_KEY,
      PARCOURS_PAYMENT_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
    payment: state,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** A real 1×1 PNG (the photo the patient shares). */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

export default async function teleconsultation({ browser, base, prepared, track, checkA11y, checkNoHorizontalScroll }) {
  prepared.payment.webhook = `${base}/paiement/webhook`;
  // The secretary finds the patient and books her first video slot with her oncologist.
  const desk = track(await login(browser, base, 'sec.durand', { viewport: { width: 1280, height: 800 } }));
  const appointment = await bookLambertWithMartin(desk, base);
  console.log(`  secrétaire : rendez-vous vidéo ${appointment} pris pour la patiente`);

  const patient = track(await login(browser, base, 'patient.lambert', { totpStep: false }));
  await patient.getByRole('link', { name: 'Mes rendez-vous' }).click();
  await patient.locator(`ul.appointments a[href="/rdv/${appointment}"]`).click();
  await patient.getByRole('link', { name: "Entrer en salle d'attente" }).click();
  await patient.getByRole('button', { name: 'Vérifier mes appareils' }).click();
  await patient.locator('#camera').filter({ hasText: 'fonctionne' }).waitFor();
  await patient.getByRole('button', { name: 'Je suis prêt(e)' }).click();
  await patient.locator('html[data-presence="open"]').waitFor({ state: 'attached' });
  await checkA11y(patient, "salle d'attente");

  const doctor = track(await login(browser, base, 'dr.martin', { viewport: { width: 1280, height: 800 } }));
  await doctor.goto(`${base}/rdv/${appointment}`);
  // The doctor invites an interpreter; the link is shown to hand over.
  await doctor.getByLabel('Nom de la personne invitée').fill('Mme Haddad');
  await doctor.getByLabel('Qualité').selectOption('interprete');
  await doctor.getByRole('button', { name: 'Inviter' }).click();
  const link = await doctor.getByLabel("Lien d'invitation").inputValue();
  await checkA11y(doctor, 'invitation créée');
  const guestContext = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'fr-FR', bypassCSP: true });
  const guest = track(await guestContext.newPage());
  guest.setDefaultTimeout(10_000);
  await guest.goto(`${base}${new URL(link).pathname}`);
  const invitation = await guest.locator('main').innerText();
  expect(!invitation.includes('LAMBERT') && !invitation.includes('Monique'), "l'invitée ne voit aucun dossier");
  await guest.getByRole('button', { name: 'Vérifier mes appareils' }).click();
  await guest.locator('#camera').filter({ hasText: 'fonctionne' }).waitFor();
  await checkA11y(guest, "invitation de l'interprète");
  await checkNoHorizontalScroll(guest, "invitation de l'interprète");
  await guest.getByRole('button', { name: 'Je suis prêt(e)' }).click();
  await guest.getByText('va vous faire entrer').waitFor();
  track(doctor);
  await doctor.goto(`${base}/rdv/${appointment}`);
  await doctor.locator('li[data-guest="Mme Haddad"]').filter({ hasText: "en attente d'entrer" }).waitFor();
  await doctor.getByRole('button', { name: 'Faire entrer le patient' }).click();
  await doctor.waitForURL(`${base}/consultation/${appointment}`);
  await patient.waitForURL(`${base}/consultation/${appointment}`, { timeout: 5_000 });

  await receivesVideo(doctor, 'médecin');
  await receivesVideo(track(patient), 'patiente');
  await checkA11y(patient, 'salle de consultation');
  await checkNoHorizontalScroll(patient, 'salle de consultation');

  // The doctor lets the interpreter in from the room: a call of three.
  track(doctor);
  await doctor.getByRole('button', { name: 'Faire entrer Mme Haddad' }).click();
  track(guest);
  await guest.waitForURL(/\/invite\/[^/]+\/salle$/, { timeout: 10_000 });
  await receivesVideos(guest, 'interprète', 2);
  await receivesVideos(track(doctor), 'médecin', 2);
  await receivesVideos(track(patient), 'patiente', 2);
  const room = await guest.locator('main').innerText();
  expect(!room.includes('LAMBERT') && !room.includes('Monique'), "l'invitée ne voit que l'appel");
  await checkA11y(guest, 'salle de consultation (invitée)');
  await checkNoHorizontalScroll(guest, 'salle de consultation (invitée)');

  await patient.getByLabel('Votre message').fill('Bonjour docteur, je vous entends bien.');
  await patient.getByRole('button', { name: 'Envoyer' }).click();
  await doctor.locator('#chat-log').getByText('Bonjour docteur, je vous entends bien.').waitFor();
  await doctor.getByLabel('Votre message').fill('Bonjour Madame Lambert, je vous vois bien aussi.');
  await doctor.getByRole('button', { name: 'Envoyer' }).click();
  await patient.locator('#chat-log').getByText('je vous vois bien aussi').waitFor();
  // The patient shares a photo; the doctor gets its link at once.
  await patient.getByLabel(/Partager une photo ou un PDF/).setInputFiles({ name: 'main.png', mimeType: 'image/png', buffer: Buffer.from(PNG_1X1, 'base64') });
  await patient.getByRole('button', { name: 'Partager', exact: true }).click();
  await patient.getByText('Fichier partagé.').waitFor();
  await doctor.locator('#chat-log').getByRole('link', { name: 'main.png' }).waitFor();
  // The doctor turns the camera off: the patient is told.
  await doctor.getByRole('button', { name: 'Couper ma caméra' }).click();
  await patient.locator('#chat-log').getByText('a coupé sa caméra').waitFor();

  // The doctor closes with a prescription; the patient's page follows by itself.
  await doctor.getByRole('link', { name: "Terminer et rédiger l'ordonnance" }).click();
  await doctor.getByLabel(/Note de consultation/).fill('Nausées grade 1 sous chimiothérapie orale, bonne tolérance.');
  await doctor.locator('#medicament_1').fill('Ondansétron 8 mg comprimé');
  await doctor.locator('#dose_1').fill('1 comprimé');
  await doctor.locator('#frequence_1').fill('2 fois par jour');
  await doctor.locator('#duree_1').fill('5 jours');
  await doctor.getByRole('button', { name: "Clôturer et établir l'ordonnance" }).click();
  await doctor.waitForURL(`${base}/rdv/${appointment}`);
  await patient.waitForURL(`${base}/rdv/${appointment}`, { timeout: 5_000 });
  await guest.waitForURL(`${base}/invite/fin`, { timeout: 5_000 });
  await checkA11y(guest, 'consultation terminée (invitée)');
  await patient.locator('#withheld').getByText('après le règlement de la consultation et la validation du médecin').waitFor();
  expect(await patient.getByText('Ondansétron').count() === 0, "la patiente ne doit pas voir l'ordonnance avant règlement et validation");
  const refused = await patient.request.get(`${base}/rdv/${appointment}/ordonnance.pdf`);
  expect(refused.status() === 403, `téléchargement avant règlement : 403 attendu, reçu ${refused.status()}`);
  console.log('  patiente : téléchargement de l\'ordonnance refusé (403) avant règlement et validation');
  await checkA11y(patient, 'consultation terminée, à régler');
  await checkNoHorizontalScroll(patient, 'consultation terminée, à régler');

  // She pays on the provider's page (the stand-in), which confirms by its signed webhook.
  await patient.getByRole('button', { name: 'Payer 30,00 € en ligne' }).click();
  await checkA11y(patient, 'paiement');
  await patient.getByRole('link', { name: 'Payer 30,00 € par carte' }).click();
  await patient.getByRole('button', { name: 'Payer' }).click();
  await patient.waitForURL(`${base}/rdv/${appointment}?paiement=retour`);
  await patient.locator('#payment-notice').getByText('votre paiement est enregistré').waitFor();
  const delivery = prepared.payment.deliveries.at(-1);
  expect(delivery && delivery.status === 200 && delivery.body.includes('"settled"'), `webhook : ${JSON.stringify(delivery)}`);
  console.log('  paiement : session de paiement du prestataire, webhook signé accepté (settled)');
  await patient.locator('#withheld').getByText("dès que le médecin l'aura validée").waitFor();
  const stillRefused = await patient.request.get(`${base}/rdv/${appointment}/ordonnance.pdf`);
  expect(stillRefused.status() === 403, `payée mais non validée : 403 attendu, reçu ${stillRefused.status()}`);

  // The doctor approves; now the download gives the PDF.
  await doctor.reload();
  await doctor.getByRole('button', { name: "Valider l'ordonnance" }).click();
  await doctor.locator('#approval').getByText('validée par le médecin').waitFor();
  await patient.reload();
  await patient.getByText('Ondansétron 8 mg comprimé').waitFor();
  await checkA11y(patient, 'ordonnance disponible');
  const [download] = await Promise.all([
    patient.waitForEvent('download'),
    patient.getByRole('link', { name: "Télécharger l'ordonnance (PDF)" }).click(),
  ]);
  const pdf = readFileSync(await download.path());
  expect(pdf.subarray(0, 8).toString('latin1') === '%PDF-1.4', 'le téléchargement doit être un PDF');
  expect(download.suggestedFilename().startsWith('ordonnance-ORD-'), `nom du fichier : ${download.suggestedFilename()}`);
  console.log(`  patiente : ordonnance téléchargée (${download.suggestedFilename()}, ${pdf.length} octets)`);
}
