// Scenario "teleconsultation" (first part of the scenario): the patient
// opens the waiting room of her video appointment, checks camera and microphone
// (Chromium's fake devices) and says she is ready; the doctor lets her in from
// the appointment; her page moves to the room by itself; the WebRTC connection
// reaches "connected" on both sides and each receives video frames; the chat
// goes both ways; the patient shares a photo the doctor can open. axe-core on
// the patient's pages.
import { login } from './common.mjs';

/** A real 1×1 PNG (the photo the patient shares). */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function receivesVideo(page, label) {
  await page.locator('html[data-rtc="connected"]').waitFor({ state: 'attached', timeout: 20_000 });
  await page.waitForFunction(() => {
    const v = document.getElementById('remote');
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, null, { timeout: 20_000 });
  const size = await page.evaluate(() => { const v = document.getElementById('remote'); return `${v.videoWidth}x${v.videoHeight}`; });
  console.log(`  ${label} : WebRTC connecté, vidéo reçue ${size}`);
}

export default async function teleconsultation({ browser, base, track, checkA11y, checkNoHorizontalScroll }) {
  const patient = track(await login(browser, base, 'patient.lambert', { totpStep: false }));
  await patient.getByRole('link', { name: 'Mes rendez-vous' }).click();
  await patient.locator('ul.appointments a').first().click();
  await patient.getByRole('link', { name: "Entrer en salle d'attente" }).click();
  await patient.getByRole('button', { name: 'Vérifier mes appareils' }).click();
  await patient.locator('#camera').filter({ hasText: 'fonctionne' }).waitFor();
  await patient.getByRole('button', { name: 'Je suis prêt(e)' }).click();
  await patient.locator('html[data-presence="open"]').waitFor({ state: 'attached' });
  await checkA11y(patient, "salle d'attente");
  const appointment = patient.url().split('/rdv/')[1].split('/')[0];

  const doctor = track(await login(browser, base, 'dr.martin', { viewport: { width: 1280, height: 800 } }));
  await doctor.goto(`${base}/rdv/${appointment}`);
  await doctor.getByRole('button', { name: 'Faire entrer le patient' }).click();
  await doctor.waitForURL(`${base}/consultation/${appointment}`);
  await patient.waitForURL(`${base}/consultation/${appointment}`, { timeout: 5_000 });

  await receivesVideo(doctor, 'médecin');
  await receivesVideo(track(patient), 'patiente');
  await checkA11y(patient, 'salle de consultation');
  await checkNoHorizontalScroll(patient, 'salle de consultation');

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
}
