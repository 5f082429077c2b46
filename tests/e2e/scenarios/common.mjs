// What several scenarios share: assertions and logging in as a demo user.
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
