// What several scenarios share: assertions and logging in as a demo user.
import { connect } from 'node:net';
import { totp } from './totp.mjs';

/** The demo's TOTP secret (every demo professional has it). */
export const SECRET = 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU';

export function expect(cond, message) {
  if (!cond) throw new Error(message);
}

/**
 * Logs a demo user in, in a new phone-sized browser context; professionals give
 * their TOTP code, patients only their password. Resolves with the home page.
 */
export async function login(browser, base, username, { totpStep = true, viewport = { width: 390, height: 844 }, cookies = [] } = {}) {
  const context = await browser.newContext({ viewport, locale: 'fr-FR', bypassCSP: true });
  // A load balancer's cookie pins the browser to one node (the cluster scenario).
  if (cookies.length) await context.addCookies(cookies.map((c) => ({ url: base, ...c })));
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/login`);
  await page.getByLabel('Identifiant').fill(username);
  await page.getByLabel('Mot de passe').fill('parcours-demo');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  if (totpStep) {
    await page.waitForURL(`${base}/login/totp`);
    await page.getByLabel('Code à 6 chiffres').fill(totp(SECRET));
    await page.getByRole('button', { name: 'Valider' }).click();
  }
  await page.waitForURL(`${base}/`);
  return page;
}

/** Sends one HL7 message over MLLP and resolves with the ACK text. */
export function sendMllp(port, message) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('ACK MLLP non reçu en 10 s')); }, 10_000);
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])])));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf(0x1c);
      if (buf[0] === 0x0b && end > 0) {
        clearTimeout(timer);
        socket.end();
        resolve(buf.subarray(1, end).toString('utf8'));
      }
    });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * An IHE PAM France admission (ADT^A01) from the hospital's GAM of a new
 * patient `name` (IPP `id`, visit `V{id}`) to ICU bed `bed`, control id `control`.
 */
export function icuAdmission(control, id, name, bed) {
  const ts = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 12);
  return [
    `MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|${ts}||ADT^A01^ADT_A01|${control}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8`,
    `EVN||${ts}`,
    `PID|1||${id}^^^CHVL&450000021&M^PI||${name}^Anne^^^^^L||19600101|F`,
    `PV1|1|I|REA^4^${bed}||||||||||||||||V${id}`,
    `ZBE|${id}-1^CHVL|${ts}||INSERT|N`,
  ].join('\r') + '\r';
}

/**
 * The button of the first listed slot that starts at least two minutes from now.
 * A slot that starts while the click travels is rightly refused as past (a run at
 * 08:59:51, Paris time, was shown the 09:00 slot and told it had passed).
 */
export async function bookableSlot(page) {
  const forms = page.locator('.slots form');
  await forms.first().waitFor();
  const starts = await forms.locator('input[name="debut"]').evaluateAll((xs) => xs.map((x) => Number(x.value)));
  const i = starts.findIndex((ms) => ms > Date.now() + 120_000);
  if (i < 0) throw new Error(`aucun créneau à plus de deux minutes parmi ${starts.length}`);
  return forms.nth(i).locator('button');
}

/** The secretary (page `desk`) books Mme Lambert's first bookable video slot with Dr Martin; the appointment's id. */
export async function bookLambertWithMartin(desk, base) {
  await desk.goto(`${base}/patients?nom=Lambert`);
  await desk.getByRole('link', { name: /LAMBERT/i }).first().click();
  await desk.getByRole('link', { name: 'Prendre rendez-vous' }).click();
  await desk.getByRole('link', { name: /Dr Claire Martin/ }).click();
  await (await bookableSlot(desk)).click();
  await desk.waitForURL(/\/rdv\/[0-9a-f-]+$/);
  const appointment = desk.url().split('/rdv/')[1];
  await desk.locator('#status').getByText('confirmé').waitFor();
  return appointment;
}

/** The hospital ICU's free beds in the regional view, as "free/capacity". */
export const freeIcuAtHospital = async (page) =>
  (await page.locator('tr[data-unit="REA"][data-establishment="450000021"] td.free').innerText()).trim();

/** Waits until WebRTC is connected and video frames arrive from the other side. */
export async function receivesVideo(page, label) {
  await page.locator('html[data-rtc="connected"]').waitFor({ state: 'attached', timeout: 20_000 });
  await page.waitForFunction(() => {
    const v = document.getElementById('remote');
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, null, { timeout: 20_000 });
  const size = await page.evaluate(() => { const v = document.getElementById('remote'); return `${v.videoWidth}x${v.videoHeight}`; });
  console.log(`  ${label} : WebRTC connecté, vidéo reçue ${size}`);
}

/** Waits until this page receives video frames from `n` other participants (a mesh). */
export async function receivesVideos(page, label, n) {
  await page.waitForFunction((count) => {
    const vs = [...document.querySelectorAll('video.remote')].filter((v) => v.videoWidth > 0 && v.readyState >= 2);
    return vs.length >= count;
  }, n, { timeout: 30_000 });
  console.log(`  ${label} : vidéo reçue de ${n} participants`);
}
