// Scenario "beds": an ADT admission to the ICU lowers the free ICU beds in the
// regional view without a reload; a bed manager closes two beds; an orientation
// request goes to two SSR centres, one refuses, one accepts, the requester
// confirms, and the timeline shows it all. The hospital's administrator then
// reviews a message the GAM sent in error (replay, purge) and the outbound
// messages that failed for good. Every page passes axe-core.
import { expect, freeIcuAtHospital, icuAdmission, login, sendMllp } from './common.mjs';

export default async function beds({ browser, base, mllpPort, track, checkA11y, checkNoHorizontalScroll }) {
  // Every page that comes to the front is the one a failure screenshot shows.
  const as = async (user) => track(await login(browser, base, user));
  // The coordinator watches the regional view.
  const coord = await as('coord.garnier');
  await coord.goto(`${base}/region`);
  await coord.getByRole('heading', { name: /Disponibilité des lits/ }).waitFor();
  await checkA11y(coord, 'vue régionale');
  await checkNoHorizontalScroll(coord, 'vue régionale');
  // The demo's GAM fed the ICU over the last day: some beds are taken already.
  const [freeAtStart, capacity] = (await freeIcuAtHospital(coord)).split('/').map(Number);
  expect(capacity === 12 && freeAtStart < 12 && freeAtStart > 3, `réanimation de l'hôpital partiellement occupée attendue, lu ${await freeIcuAtHospital(coord)}`);
  await coord.evaluate(() => { window.__sansRechargement = true; });

  // An ADT admission to the ICU, over MLLP, from the hospital's GAM.
  const ack = await sendMllp(mllpPort, icuAdmission('E2E-1', 'E2E1', 'Navigateur', 1));
  expect(ack.includes('MSA|AA|E2E-1'), `ACK attendu AA, reçu ${ack}`);
  await coord.waitForFunction(
    (want) => document.querySelector('tr[data-unit="REA"][data-establishment="450000021"] td.free')?.textContent.trim() === want,
    `${freeAtStart - 1}/12`,
    { timeout: 15_000 },
  );
  expect(await coord.evaluate(() => window.__sansRechargement === true), 'la vue régionale a été rechargée');

  // The bed manager closes two ICU beds.
  const beds = await as('lits.moreau');
  await beds.goto(`${base}/lits`);
  await checkA11y(beds, 'gestion des lits');
  await checkNoHorizontalScroll(beds, 'gestion des lits');
  const icu = beds.locator('section.unit', { has: beds.getByRole('heading', { name: /Réanimation/ }) });
  await icu.getByLabel('Lits à fermer').fill('2');
  await icu.getByLabel('Motif').selectOption('Travaux');
  await icu.getByRole('button', { name: 'Fermer' }).click();
  await beds.waitForURL(`${base}/lits`);
  expect((await icu.locator('.figures').innerText()).includes(`${freeAtStart - 3} libre(s) sur 12`), await icu.locator('.figures').innerText());
  await coord.waitForFunction(
    (want) => document.querySelector('tr[data-unit="REA"][data-establishment="450000021"] td.free')?.textContent.trim() === want,
    `${freeAtStart - 3}/12`,
    { timeout: 15_000 },
  );

  // The hospital's doctor asks two SSR centres for a place for the patient just admitted.
  const doctor = await as('dr.bernard');
  await doctor.goto(`${base}/patients?nom=navigateur`);
  await doctor.getByRole('link', { name: 'NAVIGATEUR Anne' }).click();
  await doctor.getByRole('link', { name: /Demander une orientation/ }).click();
  await checkA11y(doctor, "demande d'orientation");
  await doctor.getByLabel('Besoins cliniques').fill('Rééducation après réanimation, marche avec aide');
  await doctor.getByLabel('Centre de rééducation Les Tilleuls (démo)').check();
  await doctor.getByLabel('SSR des Bords de Loire (démo)').check();
  await doctor.getByRole('button', { name: 'Envoyer la demande' }).click();
  await doctor.getByRole('heading', { name: /Orientation SSR/ }).waitFor();
  const requestUrl = doctor.url();
  await checkA11y(doctor, "suivi de l'orientation");

  const loire = await as('med.loire');
  await loire.goto(requestUrl);
  const loireRow = loire.locator('tr', { hasText: 'SSR des Bords de Loire' });
  await loireRow.getByLabel('Motif du refus').fill('Pas de lit avant trois semaines');
  await loireRow.getByRole('button', { name: 'Refuser' }).click();
  await loire.getByText('refusée : Pas de lit avant trois semaines').waitFor();

  const tilleuls = await as('med.tilleuls');
  await tilleuls.goto(requestUrl);
  await tilleuls.locator('tr', { hasText: 'Les Tilleuls' }).getByRole('button', { name: 'Accepter' }).click();
  await tilleuls.getByText('acceptée').waitFor();

  track(doctor);
  await doctor.goto(requestUrl);
  await doctor.locator('tr', { hasText: 'Les Tilleuls' }).getByRole('button', { name: 'Confirmer cette place' }).click();
  await doctor.locator('#status', { hasText: 'place confirmée' }).waitFor();
  const timeline = await doctor.locator('ol.timeline').innerText();
  for (const step of ['demande envoyée', 'refus', 'Pas de lit avant trois semaines', 'place proposée', 'place confirmée par le demandeur']) {
    expect(timeline.includes(step), `chronologie sans « ${step} » : ${timeline}`);
  }
  await checkA11y(doctor, 'orientation confirmée');
  await checkNoHorizontalScroll(doctor, 'orientation confirmée');

  // The GAM merges a record Parcours does not know: AE, in the log for review.
  const errTs = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 12);
  const errAck = await sendMllp(mllpPort, [
    `MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|${errTs}||ADT^A40^ADT_A39|E2E-ERR-1|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8`,
    `EVN||${errTs}`,
    'PID|1||E2EKEEP^^^CHVL&450000021&M^PI||Garde^Anne^^^^^L||19500101|F',
    'PV1|1|N',
    'MRG|E2EGONE^^^CHVL&450000021&M^PI',
  ].join('\r') + '\r');
  expect(errAck.includes('MSA|AE|E2E-ERR-1'), `ACK attendu AE, reçu ${errAck}`);
  const admin = await as('admin.hopital');
  await admin.goto(`${base}/admin`);
  await admin.getByRole('link', { name: /Messages HL7 reçus/ }).click();
  await admin.getByRole('link', { name: 'E2E-ERR-1' }).click();
  await admin.getByRole('button', { name: 'Rejouer le message' }).waitFor();
  await checkA11y(admin, 'message HL7 en erreur');
  await checkNoHorizontalScroll(admin, 'message HL7 en erreur');
  await admin.getByRole('button', { name: 'Supprimer du journal' }).click();
  await admin.waitForURL(`${base}/admin/hl7`);
  expect(!(await admin.getByRole('link', { name: 'E2E-ERR-1' }).count()), 'message supprimé du journal attendu');
  await admin.goto(`${base}/admin/envois`);
  await admin.getByRole('heading', { name: 'Envois en échec' }).waitFor();
  await checkA11y(admin, 'envois en échec');
  await checkNoHorizontalScroll(admin, 'envois en échec');
}
