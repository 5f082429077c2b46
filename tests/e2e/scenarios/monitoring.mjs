// Scenario "monitoring": the patient answers the weekly questionnaire with grade 3
// diarrhoea and is told at once what to do; the alert appears on the nurse's open
// queue within 2 seconds without a reload (WebSocket); the nurse takes it and
// escalates it; the doctor closes it; the timeline shows every step; the
// hospital's MLLP listener (started here, before the server) receives the ORU^R01
// and hl7apy accepts it; the dashboard counts the alert; the patient raises an
// alert with a photo and writes to the team, the nurse sees both and answers.
// The nurse mutes the patient's known hand-foot syndrome (grade 2, one month)
// from the patient's monitoring history: the next grade-2 answer is recorded
// as muted and never reaches the queue. She sets the team's opening hours and
// puts the oncologist on call. The clinic's desk reads the month's billing
// statement and exports it; the patient chooses SMS and reads her notices.
// The pages pass axe-core and the patient's fit a phone.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bookableSlot, expect, login } from './common.mjs';

/** A real 1×1 PNG (the photo the patient sends). */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** A hospital's MLLP receiver on a free loopback port: keeps each message, answers AA. */
export async function prepare() {
  const received = [];
  const server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const start = buf.indexOf(0x0b);
        const end = buf.indexOf(0x1c, start + 1);
        if (start < 0 || end < 0) return;
        const text = buf.subarray(start + 1, end).toString('utf8');
        buf = buf.subarray(end + 2);
        received.push(text);
        const control = (text.split('\r')[0].split('|')[9]) ?? '';
        const ts = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
        const ack = `MSH|^~\\&|DPI|CHVL|PARCOURS|PARCOURS|${ts}||ACK^R01^ACK|A${control.slice(0, 19)}|P|2.5\rMSA|AA|${control}\r`;
        socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(ack, 'utf8'), Buffer.from([0x1c, 0x0d])]));
      }
    });
    socket.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    env: { PARCOURS_ORU_DESTINATION: `mllp://127.0.0.1:${port}` },
    received,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Validates HL7 v2.5 messages with hl7apy (strict), through scripts/validate_hl7.py. */
function hl7apy(root, messages) {
  const dir = mkdtempSync(join(tmpdir(), 'parcours-hl7-'));
  try {
    const file = join(dir, 'messages.json');
    writeFileSync(file, JSON.stringify(messages));
    const r = spawnSync('python3', [join(root, 'scripts', 'validate_hl7.py'), file], { encoding: 'utf8' });
    expect(r.status === 0, `hl7apy refuse l'ORU:\n${r.stdout}${r.stderr}`);
    console.log(`  ${r.stdout.trim()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function monitoring({ browser, base, root, prepared, track, checkA11y, checkNoHorizontalScroll }) {
  // The clinic's nurse keeps the queue open (a desk screen).
  const nurse = track(await login(browser, base, 'ide.petit', { viewport: { width: 1280, height: 800 } }));
  await nurse.goto(`${base}/alertes`);
  await nurse.getByRole('heading', { name: 'Alertes de télésurveillance' }).waitFor();
  await checkA11y(nurse, 'file des alertes');
  const before = await nurse.locator('tr[data-item="diarrhoea"]').count();
  expect(before === 0, `aucune alerte diarrhée attendue au départ, ${before} trouvée(s)`);
  // Wait for the WebSocket to be open: the push, not the 5-second poll, must bring the alert.
  await nurse.locator('html[data-live-ws="open"]').waitFor({ state: 'attached' });

  // The patient, on a phone, answers the weekly questionnaire.
  const patient = track(await login(browser, base, 'patient.lambert', { totpStep: false }));
  await patient.getByRole('link', { name: 'Mon suivi' }).click();
  await patient.getByRole('heading', { name: 'Mon suivi' }).waitFor();
  await checkA11y(patient, 'mon suivi');
  await checkNoHorizontalScroll(patient, 'mon suivi');
  await patient.getByRole('link', { name: 'Répondre au questionnaire' }).first().click();
  await patient.getByRole('button', { name: 'Envoyer mes réponses' }).waitFor();
  await checkA11y(patient, 'questionnaire');
  await checkNoHorizontalScroll(patient, 'questionnaire');
  const groups = patient.getByRole('group');
  const n = await groups.count();
  for (let i = 0; i < n; i += 1) {
    const g = groups.nth(i);
    const legend = (await g.locator('legend').innerText()).trim();
    const radios = g.getByRole('radio');
    if (await radios.count() > 0) {
      // Grade 3 diarrhoea, nothing else.
      await radios.nth(legend === 'Avez-vous eu la diarrhée ?' ? 3 : 0).check();
    } else {
      await g.getByRole('textbox').fill(legend.includes('poids') ? '68,5' : '37,2');
    }
  }
  const sentAt = Date.now();
  await patient.getByRole('button', { name: 'Envoyer mes réponses' }).click();
  await patient.getByRole('heading', { name: 'À faire maintenant' }).waitFor();
  const advice = await patient.getByRole('alert').innerText();
  expect(advice.includes("Appelez tout de suite l'hôpital de jour"), `conseil urgent attendu: ${advice}`);
  expect(await patient.getByRole('link', { name: 'Appeler le 15' }).getAttribute('href') === 'tel:15', 'bouton « Appeler le 15 » attendu');
  await checkA11y(patient, 'conseil urgent');
  await checkNoHorizontalScroll(patient, 'conseil urgent');

  // The nurse's queue shows it within 2 seconds, without a reload.
  track(nurse);
  await nurse.locator('tr[data-item="diarrhoea"]').waitFor({ timeout: 2_000 });
  console.log(`  alerte visible dans la file de l'infirmière ${Date.now() - sentAt} ms après l'envoi`);
  const row = await nurse.locator('tr[data-item="diarrhoea"]').innerText();
  expect(row.startsWith('urgent'), `niveau urgent attendu: ${row}`);
  await nurse.locator('tr[data-item="diarrhoea"]').getByRole('link', { name: 'LAMBERT Monique' }).click();
  await nurse.getByRole('button', { name: 'Prendre en charge' }).click();
  await nurse.locator('#status').filter({ hasText: 'prise en charge' }).waitFor();
  await checkA11y(nurse, 'alerte prise en charge');
  await nurse.getByLabel('Note pour le médecin').fill('Diarrhée grade 3 sous capécitabine, 7 selles par jour');
  await nurse.getByRole('button', { name: 'Transmettre au médecin' }).click();
  await nurse.locator('#status').filter({ hasText: 'transmise' }).waitFor();
  const alertUrl = nurse.url();

  // The doctor closes it.
  const doctor = track(await login(browser, base, 'dr.martin', { viewport: { width: 1280, height: 800 } }));
  await doctor.goto(alertUrl);
  await doctor.getByLabel('Issue', { exact: true }).selectOption('teleconsultation');
  await doctor.getByLabel('Décision du médecin').fill('Arrêt de la capécitabine 48 h, consultation demain');
  await doctor.getByRole('button', { name: 'Clore' }).click();
  await doctor.locator('#status').filter({ hasText: 'close' }).waitFor();
  const timeline = await doctor.locator('ol.timeline').innerText();
  for (const step of ['alerte reçue', 'prise en charge', 'transmise au médecin', 'Diarrhée grade 3 sous capécitabine', 'close', 'Arrêt de la capécitabine 48 h']) {
    expect(timeline.includes(step), `la chronologie ne montre pas « ${step} »:\n${timeline}`);
  }
  await checkA11y(doctor, 'alerte close');

  // From the alert, the nurse opens the patient's monitoring history and mutes
  // her known hand-foot syndrome, up to grade 2, for a month.
  track(nurse);
  await nurse.goto(alertUrl);
  await nurse.getByRole('link', { name: /Historique du suivi/ }).click();
  await nurse.getByRole('heading', { name: /Suivi de télésurveillance/ }).waitFor();
  await checkA11y(nurse, 'historique du suivi');
  await nurse.getByLabel('Symptôme', { exact: true }).selectOption('hand_foot');
  await nurse.getByLabel(/grade mis en sourdine/).selectOption('2');
  await nurse.getByLabel('Durée', { exact: true }).selectOption('30');
  await nurse.getByLabel(/^Motif \(connu/).fill('Syndrome mains-pieds de grade 2 connu, stable sous crème');
  await nurse.getByRole('button', { name: 'Mettre en sourdine' }).click();
  const muted = await nurse.locator('li[data-mute="Syndrome mains-pieds"]').innerText();
  expect(muted.includes("jusqu'au grade 2") && muted.includes('stable sous crème'), `sourdine attendue: ${muted}`);
  await checkA11y(nurse, 'sourdine enregistrée');
  const historyUrl = nurse.url();

  // The team's opening hours (Monday to Friday) and the oncologist on call.
  await nurse.goto(`${base}/telesurveillance/equipe`);
  await nurse.getByRole('heading', { name: 'Équipe de télésurveillance' }).waitFor();
  for (let day = 1; day <= 3; day += 1) {
    await nurse.getByLabel(`Jour, ligne ${day}`).selectOption(String(day));
    await nurse.getByLabel(`Ouverture, ligne ${day}`).fill('08:30');
    await nurse.getByLabel(`Fermeture, ligne ${day}`).fill('18:00');
  }
  await nurse.getByRole('button', { name: 'Enregistrer les horaires' }).click();
  await nurse.getByText("Horaires de l'équipe enregistrés.").waitFor();
  await nurse.getByLabel('Médecin', { exact: true }).selectOption({ label: 'Dr Claire Martin' });
  await nurse.getByRole('button', { name: "Ajouter l'astreinte" }).click();
  await nurse.locator('li[data-on-call="Dr Claire Martin"]').waitFor();
  await checkA11y(nurse, "horaires et astreinte de l'équipe");
  await checkNoHorizontalScroll(nurse, "horaires et astreinte de l'équipe");

  // The programme's dashboard counts the new urgent alert, handled by a person.
  await doctor.getByRole('link', { name: 'Télésurveillance' }).click();
  await doctor.getByRole('heading', { name: 'Tableau de bord de télésurveillance' }).waitFor();
  const urgent = (await doctor.locator('section[data-programme^="Suivi des thérapies orales"] [data-figure="urgent"]').innerText()).trim();
  expect(urgent === '1', `1 alerte urgente attendue au tableau de bord, ${urgent} affichée(s)`);
  const byConsultation = (await doctor.locator('section[data-programme^="Suivi des thérapies orales"] [data-outcome="teleconsultation"]').innerText()).trim();
  expect(Number(byConsultation) >= 1, `issue « téléconsultation » attendue au tableau de bord, ${byConsultation}`);
  await checkA11y(doctor, 'tableau de bord');
  await checkNoHorizontalScroll(doctor, 'tableau de bord');

  // The patient raises an alert with a photo, and writes to the team.
  track(patient);
  await patient.goto(`${base}/suivi`);
  await patient.getByRole('link', { name: 'Signaler un problème' }).first().click();
  await patient.getByRole('heading', { name: 'Signaler un problème' }).waitFor();
  await checkA11y(patient, 'signaler un problème');
  await checkNoHorizontalScroll(patient, 'signaler un problème');
  await patient.getByRole('radio', { name: 'Éruption cutanée' }).check();
  await patient.getByLabel('Décrivez en quelques mots').fill('Plaques rouges sur les avant-bras depuis hier soir');
  await patient.getByLabel(/Une photo/).setInputFiles({ name: 'bras.png', mimeType: 'image/png', buffer: Buffer.from(PNG_1X1, 'base64') });
  await patient.getByRole('button', { name: "Envoyer l'alerte" }).click();
  await patient.getByRole('heading', { name: 'Votre alerte est envoyée' }).waitFor();
  await checkA11y(patient, 'alerte envoyée');
  await patient.goto(`${base}/suivi`);
  await patient.getByRole('link', { name: /Messages avec l'équipe/ }).first().click();
  await patient.getByLabel('Votre message').fill('Puis-je mettre une crème sur les plaques ?');
  await patient.getByRole('button', { name: 'Envoyer' }).click();
  await patient.getByText('Puis-je mettre une crème sur les plaques ?').waitFor();
  await checkA11y(patient, 'messages du patient');
  await checkNoHorizontalScroll(patient, 'messages du patient');

  // Next week's questionnaire: the hand-foot syndrome at grade 2, nothing else.
  await patient.goto(`${base}/suivi`);
  await patient.getByRole('link', { name: 'Répondre au questionnaire' }).first().click();
  await patient.getByRole('button', { name: 'Envoyer mes réponses' }).waitFor();
  for (let i = 0; i < n; i += 1) {
    const g = groups.nth(i);
    const legend = (await g.locator('legend').innerText()).trim();
    const radios = g.getByRole('radio');
    if (await radios.count() > 0) {
      await radios.nth(legend.startsWith('Avez-vous des rougeurs ou des douleurs aux mains') ? 2 : 0).check();
    } else {
      await g.getByRole('textbox').fill(legend.includes('poids') ? '68,5' : '37,2');
    }
  }
  await patient.getByRole('button', { name: 'Envoyer mes réponses' }).click();
  await patient.getByRole('heading', { name: 'Merci, vos réponses sont enregistrées' }).waitFor();

  // She books a video consultation with her oncologist, from her phone.
  await patient.goto(`${base}/`);
  await patient.getByRole('link', { name: 'Mes rendez-vous' }).click();
  await patient.getByRole('heading', { name: 'Mes rendez-vous' }).waitFor();
  await checkA11y(patient, 'mes rendez-vous');
  await checkNoHorizontalScroll(patient, 'mes rendez-vous');
  await patient.getByRole('link', { name: 'Prendre rendez-vous' }).click();
  await patient.getByRole('link', { name: /Dr Claire Martin/ }).click();
  await checkA11y(patient, 'créneaux libres');
  await checkNoHorizontalScroll(patient, 'créneaux libres');
  await (await bookableSlot(patient)).click();
  await patient.getByRole('heading', { name: /Rendez-vous du/ }).waitFor();
  const booked = await patient.locator('#status').innerText();
  expect(booked.includes('confirmé'), `rendez-vous confirmé attendu: ${booked}`);
  await checkA11y(patient, 'rendez-vous confirmé');
  // The waiting room: Chromium's fake camera and microphone pass the check.
  await patient.getByRole('link', { name: "Entrer en salle d'attente" }).click();
  await patient.getByRole('button', { name: 'Vérifier mes appareils' }).click();
  await patient.locator('#camera').filter({ hasText: 'fonctionne' }).waitFor();
  await patient.locator('#microphone').filter({ hasText: 'fonctionne' }).waitFor();
  await patient.getByRole('button', { name: 'Je suis prêt(e)' }).click();
  await patient.locator('html[data-presence="open"]').waitFor({ state: 'attached' });
  await checkA11y(patient, "salle d'attente");
  await checkNoHorizontalScroll(patient, "salle d'attente");

  // The muted answer is on her history, not in the queue.
  track(nurse);
  await nurse.goto(historyUrl);
  const mutedRow = nurse.locator('tr[data-muted="1"]');
  await mutedRow.first().waitFor();
  const mutedText = await mutedRow.first().innerText();
  expect(mutedText.includes('Syndrome mains-pieds') && mutedText.includes('en sourdine'), `alerte en sourdine attendue: ${mutedText}`);
  await nurse.goto(`${base}/alertes`);
  await nurse.locator('tr[data-item="rash"]').waitFor();
  expect(await nurse.locator('tr[data-item="hand_foot"]').count() === 0, "l'alerte en sourdine ne doit pas entrer dans la file");

  // The nurse sees the new alert with its photo, and the unread message, live.
  await nurse.goto(`${base}/alertes`);
  await nurse.locator('tr[data-item="rash"]').getByRole('link', { name: 'LAMBERT Monique' }).click();
  const photo = nurse.getByRole('img', { name: 'Photo envoyée par le patient avec son alerte' });
  await photo.waitFor();
  expect(await photo.evaluate((img) => img.complete && img.naturalWidth === 1), 'la photo du patient doit s\'afficher');
  await checkA11y(nurse, 'alerte avec photo');
  // From the alert, one step to a teleconsultation with the oncologist.
  await nurse.getByRole('button', { name: 'Prendre en charge' }).click();
  await nurse.locator('#status').filter({ hasText: 'prise en charge' }).waitFor();
  await nurse.getByLabel('Médecin', { exact: true }).selectOption({ label: 'Dr Claire Martin' });
  await nurse.getByRole('button', { name: /Programmer une téléconsultation/ }).click();
  await nurse.locator('#status').filter({ hasText: 'close' }).waitFor();
  const ended = await nurse.locator('#outcome').innerText();
  expect(ended === 'téléconsultation programmée', `issue attendue: ${ended}`);
  const steps = await nurse.locator('ol.timeline').innerText();
  expect(steps.includes('Téléconsultation le') && steps.includes('avec Dr Claire Martin'), `chronologie:\n${steps}`);
  await nurse.goto(`${base}/alertes`);
  await nurse.locator('ul.threads').getByRole('link', { name: 'LAMBERT Monique' }).click();
  await nurse.getByLabel('Votre message').fill('Oui, la crème prescrite, deux fois par jour. Je vous appelle cet après-midi.');
  await nurse.getByRole('button', { name: 'Envoyer' }).click();
  await nurse.getByText('Je vous appelle cet après-midi.').waitFor();

  // The hospital received the ORU^R01 messages (outbox, MLLP): the questionnaire's
  // results, then the alert's outcome; hl7apy accepts them.
  const until = Date.now() + 10_000;
  const outcome = () => prepared.received.find((m) => m.includes('TLSV-ALERTE'));
  while (!outcome() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  expect(outcome(), `l'ORU de l'issue de l'alerte est attendu par l'hôpital (${prepared.received.length} message(s) reçu(s))`);
  expect(outcome().includes('Arrêt de la capécitabine 48 h'), `ORU inattendu:\n${outcome().replaceAll('\r', '\n')}`);
  const results = prepared.received.find((m) => m.includes('TLSV-QUESTIONNAIRE'));
  expect(results && results.includes('|diarrhoea^Diarrhée^L||3^'), 'ORU des résultats du questionnaire attendu, avec la diarrhée de grade 3');
  hl7apy(root, prepared.received);

  // The clinic's desk reads this month's remote-monitoring statement and
  // exports it for the billing office.
  const desk = track(await login(browser, base, 'sec.durand', { viewport: { width: 1280, height: 800 } }));
  await desk.getByRole('link', { name: 'Facturation' }).click();
  await desk.getByRole('heading', { name: 'Facturation de la télésurveillance' }).waitFor();
  const month = new Date().toISOString().slice(0, 7);
  await desk.getByLabel('Mois').fill(month);
  await desk.getByRole('button', { name: 'Afficher' }).click();
  await desk.locator('table.billing').waitFor();
  const due = await desk.locator('table.billing td[data-fee="TLS-TEC"]').first().innerText();
  expect(due.startsWith('dû') || due.startsWith('non dû'), `forfait technique attendu: ${due}`);
  await checkA11y(desk, 'relevé de facturation');
  await checkNoHorizontalScroll(desk, 'relevé de facturation');
  const [download] = await Promise.all([
    desk.waitForEvent('download'),
    desk.getByRole('link', { name: 'Exporter en CSV' }).click(),
  ]);
  expect(download.suggestedFilename() === `telesurveillance-oral-oncology-${month}.csv`, `fichier CSV inattendu: ${download.suggestedFilename()}`);

  // The patient chooses SMS for her notices, and reads them on the portal:
  // her alert was taken in hand (without an SMS centre here, they stay there).
  track(patient);
  await patient.goto(`${base}/mon-compte`);
  await patient.getByRole('radio', { name: /par SMS/ }).check();
  await patient.getByRole('button', { name: 'Enregistrer mon choix' }).click();
  await patient.getByText('vos avis vous parviendront par SMS').waitFor();
  await checkA11y(patient, 'mes coordonnées');
  await checkNoHorizontalScroll(patient, 'mes coordonnées');
  await patient.goto(`${base}/mes-avis`);
  await patient.getByRole('heading', { name: 'Mes avis' }).waitFor();
  const notices = await patient.locator('ul.notices').innerText();
  expect(notices.includes('a pris en charge votre alerte'), `avis de prise en charge attendu:\n${notices}`);
  await checkA11y(patient, 'mes avis');
  await checkNoHorizontalScroll(patient, 'mes avis');
}
