// Scenario "cluster": three nodes on one PostgreSQL database and the NATS
// server, behind HAProxy (tests/e2e/cluster.mjs). The doctor's browser is
// pinned to node 1 and the patient's to node 2 (HAProxy's cookie). The doctor
// opens a video slot within the hour, the secretary books it for the patient;
// the patient waits and the doctor's list shows her without a reload; the
// doctor lets her in, video connects (Chromium's fake camera) and the chat
// flows. Node 2 is killed with SIGKILL mid-call: the patient's page reconnects
// through the load balancer to another node, the call is negotiated again and
// the chat goes on. An ADT admission sent to node 3's MLLP port updates the
// regional view open on node 1 without a reload.
import { startCluster } from '../cluster.mjs';
import { bookLambertWithMartin, expect, freeIcuAtHospital, icuAdmission, login, receivesVideo, sendMllp } from './common.mjs';

export const ownServers = true;

export async function prepare({ bin }) {
  const cluster = await startCluster({ bin });
  return { base: cluster.base, mllpPort: cluster.mllpPort, cluster, env: {}, close: cluster.stop };
}

/** Paris date (YYYY-MM-DD) and time (HH:MM) of `d`. */
function paris(d) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('fr-FR', {
    timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(d).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}`, minutes: Number(parts.hour) * 60 + Number(parts.minute) };
}

/** A one-hour opening starting at the next quarter hour (tomorrow's first hour near midnight). */
function nextHour() {
  const now = new Date();
  const p = paris(now);
  let start = Math.ceil((p.minutes + 1) / 15) * 15;
  let { date } = p;
  if (start + 60 > 23 * 60 + 59) {
    date = paris(new Date(now.getTime() + 3 * 3600_000)).date;
    start = 0;
  }
  const hm = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return { date, start: hm(start), end: hm(start + 60) };
}

async function nodeOf(page) {
  const c = (await page.context().cookies()).find((k) => k.name === 'PARCOURS_NODE');
  return c?.value;
}

export default async function cluster({ browser, base, prepared, track, checkA11y }) {
  const { nodes } = prepared.cluster;
  const pin = (id) => [{ name: 'PARCOURS_NODE', value: id }];
  const desktop = { width: 1280, height: 800 };

  // The doctor, on node 1, opens a video slot within the hour.
  const doctor = track(await login(browser, base, 'dr.martin', { viewport: desktop, cookies: pin('node1') }));
  await doctor.getByRole('link', { name: 'Horaires de consultation et absences' }).click();
  const slot = nextHour();
  await doctor.getByLabel('Date', { exact: true }).fill(slot.date);
  await doctor.getByLabel('Début', { exact: true }).fill(slot.start);
  await doctor.getByLabel('Fin', { exact: true }).fill(slot.end);
  await doctor.getByRole('button', { name: "Ajouter l'ouverture" }).click();
  await doctor.getByText(`de ${slot.start} à ${slot.end}`).waitFor();
  console.log(`  médecin (node1) : ouverture vidéo le ${slot.date} de ${slot.start} à ${slot.end}`);

  // The secretary, on node 3, books the first video slot for Mme Lambert.
  const desk = track(await login(browser, base, 'sec.durand', { viewport: desktop, cookies: pin('node3') }));
  const appointment = await bookLambertWithMartin(desk, base);
  console.log(`  secrétaire (node3) : rendez-vous ${appointment}`);

  // The doctor's waiting list, live, on node 1.
  await doctor.goto(`${base}/salle-attente`);
  await doctor.locator('html[data-live-ws="open"]').waitFor({ state: 'attached' });
  await doctor.evaluate(() => { window.__sansRechargement = true; });

  // The patient, on node 2, waits.
  const patient = track(await login(browser, base, 'patient.lambert', { totpStep: false, cookies: pin('node2') }));
  await patient.goto(`${base}/rdv/${appointment}/salle`);
  await patient.getByRole('button', { name: 'Vérifier mes appareils' }).click();
  await patient.locator('#camera').filter({ hasText: 'fonctionne' }).waitFor();
  await patient.getByRole('button', { name: 'Je suis prêt(e)' }).click();
  await patient.locator('html[data-presence="open"]').waitFor({ state: 'attached' });
  expect(await nodeOf(doctor) === 'node1', `médecin sur ${await nodeOf(doctor)}`);
  expect(await nodeOf(patient) === 'node2', `patiente sur ${await nodeOf(patient)}`);

  // Node 1 shows her waiting, pushed from node 2 over NATS.
  await doctor.locator('#salle [data-presence="en attente"]').filter({ hasText: 'caméra ok' }).waitFor({ timeout: 10_000 });
  expect(await doctor.evaluate(() => window.__sansRechargement === true), 'la liste a été rechargée');
  await checkA11y(doctor, "salle d'attente du médecin (node1)");
  console.log('  médecin (node1) : la patiente attend (vue sans rechargement)');

  // Let in on node 1; the page on node 2 goes to the room by itself.
  await doctor.goto(`${base}/rdv/${appointment}`);
  await doctor.getByRole('button', { name: 'Faire entrer le patient' }).click();
  await doctor.waitForURL(`${base}/consultation/${appointment}`);
  await patient.waitForURL(`${base}/consultation/${appointment}`, { timeout: 10_000 });
  await receivesVideo(doctor, 'médecin (node1)');
  await receivesVideo(track(patient), 'patiente (node2)');
  await patient.getByLabel('Votre message').fill('Bonjour docteur.');
  await patient.getByRole('button', { name: 'Envoyer' }).click();
  await doctor.locator('#chat-log').getByText('Bonjour docteur.').waitFor();
  await doctor.getByLabel('Votre message').fill('Bonjour Madame Lambert.');
  await doctor.getByRole('button', { name: 'Envoyer' }).click();
  await patient.locator('#chat-log').getByText('Bonjour Madame Lambert.').waitFor();

  // Node 2 dies mid-call.
  await nodes[1].kill('SIGKILL');
  console.log('  node2 tué (SIGKILL)');
  await patient.locator('html[data-signal="closed"]').waitFor({ state: 'attached', timeout: 10_000 });
  await patient.locator('html[data-signal="open"]').waitFor({ state: 'attached', timeout: 20_000 });
  const now = await nodeOf(patient);
  expect(now && now !== 'node2', `patiente toujours sur ${now}`);
  console.log(`  patiente reconnectée par HAProxy sur ${now}`);
  await receivesVideo(patient, 'patiente, appel repris');
  await patient.getByLabel('Votre message').fill('Je suis toujours là.');
  await patient.getByRole('button', { name: 'Envoyer' }).click();
  await doctor.locator('#chat-log').getByText('Je suis toujours là.').waitFor();
  await doctor.getByLabel('Votre message').fill('Je vous entends.');
  await doctor.getByRole('button', { name: 'Envoyer' }).click();
  await patient.locator('#chat-log').getByText('Je vous entends.').waitFor();

  // The coordinator's regional view on node 1; an admission to node 3's MLLP.
  const coord = track(await login(browser, base, 'coord.garnier', { viewport: desktop, cookies: pin('node1') }));
  await coord.goto(`${base}/region`);
  await coord.locator('html[data-live-ws="open"]').waitFor({ state: 'attached' });
  const [free] = (await freeIcuAtHospital(coord)).split('/').map(Number);
  await coord.evaluate(() => { window.__sansRechargement = true; });
  const ack = await sendMllp(nodes[2].mllpPort, icuAdmission('CLUSTER-1', 'CL1', 'Grappe', 2));
  expect(ack.includes('MSA|AA|CLUSTER-1'), `ACK attendu AA, reçu ${ack}`);
  // Pushed at once (the fallback poll runs every 5 s; the push comes first).
  await coord.waitForFunction(
    (want) => document.querySelector('tr[data-unit="REA"][data-establishment="450000021"] td.free')?.textContent.trim() === want,
    `${free - 1}/12`,
    { timeout: 4_000 },
  );
  expect(await coord.evaluate(() => window.__sansRechargement === true), 'la vue régionale a été rechargée');
  console.log(`  coordinatrice (node1) : réanimation ${free}/12 → ${free - 1}/12 après l'admission reçue par node3`);
}
