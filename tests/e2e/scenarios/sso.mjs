// Scenario "sso": Dr Martin signs in with Pro Santé Connect — a local
// `oidc-provider` configured like PSC (`tests/e2e/psc.mjs`) — and lands on her
// home page without a TOTP code; the provider's answer replayed, a used code
// sent again, a wrong nonce, a token signed by another key, an expired token, a
// token for another audience and a lower level (eidas0) are each refused with
// a clear page; sign-out goes through the provider's logout and back to our
// login page. Every page passes axe-core and fits a phone.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from './common.mjs';
import { startPsc } from '../psc.mjs';
import { freePort } from '../ports.mjs';

// Dr Martin's RPPS (the demo's body 1000001001 and its Luhn key), as PSC sends it.
const NATIONAL_ID = '810000010016';
const CLIENT_ID = 'parcours-e2e';
const CLIENT_SECRET = 'secret-du-client-e2e';

export async function prepare({ env }) {
  const base = env.PARCOURS_PUBLIC_URL;
  const port = await freePort();
  const psc = await startPsc({ port, base, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, nationalId: NATIONAL_ID });
  const dir = mkdtempSync(join(tmpdir(), 'parcours-sso-'));
  const secret = join(dir, 'psc.secret');
  writeFileSync(secret, `${CLIENT_SECRET}\n`);
  const config = join(dir, 'parcours.toml');
  writeFileSync(config, `[[oidc]]
id = "psc"
label = "Pro Santé Connect"
issuer = "${psc.issuer}"
client_id = "${CLIENT_ID}"
client_secret_file = "${secret}"
scopes = "openid scope_all"
acr = "eidas1"
`);
  console.log(`  fournisseur PSC de test (oidc-provider) sur ${psc.issuer}`);
  return {
    env: { PARCOURS_CONFIG: config },
    psc,
    close: async () => { await psc.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

export default async function sso({ page, browser, base, prepared, checkA11y, checkNoHorizontalScroll }) {
  // The login page offers PSC beside the password.
  await page.goto(`${base}/login`);
  await checkA11y(page, 'connexion avec PSC');
  await checkNoHorizontalScroll(page, 'connexion avec PSC');
  let callback = '';
  page.on('request', (r) => { if (r.url().includes('/connexion/oidc/psc/retour')) callback = r.url(); });
  await page.getByRole('link', { name: 'Se connecter avec Pro Santé Connect' }).click();
  await page.getByRole('button', { name: "Valider avec l'e-CPS" }).click();
  // Back at Parcours: straight to the home page, no TOTP asked.
  await page.waitForURL(`${base}/`);
  const home = await page.textContent('body');
  expect(home.includes('Claire Martin'), `accueil après PSC : ${home.slice(0, 300)}`);
  expect(!page.url().includes('/login/totp'), 'aucun code TOTP demandé');
  await checkA11y(page, 'accueil après PSC');
  console.log('  dr.martin connectée par PSC (eidas1), sans second facteur');

  // The provider's answer replayed: refused, said plainly.
  expect(callback.includes('code='), `retour du fournisseur observé : ${callback}`);
  const replay = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'fr-FR' });
  const again = await replay.newPage();
  const r = await again.goto(callback);
  expect(r.status() === 400, `rejeu du retour : HTTP ${r.status()}`);
  const said = await again.textContent('main, body');
  expect(said.includes('inconnue, déjà utilisée'), `page du rejeu : ${said.slice(0, 300)}`);
  await checkA11y(again, 'rejeu refusé');
  await checkNoHorizontalScroll(again, 'rejeu refusé');
  await replay.close();
  console.log('  rejeu du retour PSC : refusé (400), page claire');

  // Sign-out: through the provider, back to our login page.
  await page.getByRole('button', { name: /Se déconnecter|Déconnexion/ }).click();
  await page.getByRole('button', { name: 'Oui, me déconnecter' }).click();
  await page.waitForURL(`${base}/login`);
  console.log('  déconnexion : passée par le fournisseur, retour à la page de connexion');

  // A fresh login whose answer is spoiled: each refused, said plainly.
  // `swap(state)`, when given, replaces the provider's answer: the browser is
  // sent back to Parcours with the URL it returns (the login's own state).
  const attempt = async (label, swap) => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'fr-FR' });
    const p = await ctx.newPage();
    let state = null;
    p.on('request', (r) => {
      const u = new URL(r.url());
      if (u.origin === prepared.psc.issuer && u.searchParams.get('state')) state = u.searchParams.get('state');
    });
    await p.goto(`${base}/login`);
    await p.getByRole('link', { name: 'Se connecter avec Pro Santé Connect' }).click();
    if (swap) {
      await p.getByRole('button', { name: "Valider avec l'e-CPS" }).waitFor();
      expect(state !== null, `${label} : demande au fournisseur non observée`);
      await p.goto(swap(state));
    } else {
      await p.getByRole('button', { name: "Valider avec l'e-CPS" }).click();
      await p.waitForURL(/\/connexion\/oidc\/psc\/retour/);
    }
    const text = await p.textContent('body');
    const home = await p.goto(`${base}/`);
    expect(home.url().includes('/login'), `${label} : aucune session ne doit être ouverte (${text.slice(0, 300)})`);
    await ctx.close();
    return text;
  };
  // The code of the first sign-in, sent again with a new login's state.
  const usedCode = new URL(callback).searchParams.get('code');
  const replayed = await attempt('code rejoué', (state) =>
    `${base}/connexion/oidc/psc/retour?code=${encodeURIComponent(usedCode)}&state=${encodeURIComponent(state)}`);
  expect(replayed.includes('le fournisseur d\'identité a refusé la demande'), `code rejoué : ${replayed.slice(0, 400)}`);
  console.log('  code déjà utilisé, renvoyé : refusé par le fournisseur, page claire');
  for (const [how, said] of [
    ['nonce', 'sans le nonce de la demande'],
    ['key', 'signature invalide'],
    ['expired', "jeton d'identité expiré"],
    ['audience', 'destiné à une autre application'],
  ]) {
    prepared.psc.setTamper(how);
    const text = await attempt(how);
    prepared.psc.setTamper(null);
    expect(text.includes(said), `jeton altéré (${how}) : ${text.slice(0, 400)}`);
    console.log(`  jeton altéré (${how}) : refusé — « ${said} »`);
  }

  // A lower level (eidas0): refused with the level required.
  prepared.psc.setLevel('eidas0');
  const low = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'fr-FR' });
  const p = await low.newPage();
  await p.goto(`${base}/login`);
  await p.getByRole('link', { name: 'Se connecter avec Pro Santé Connect' }).click();
  await p.getByRole('button', { name: "Valider avec l'e-CPS" }).click();
  await p.waitForURL(/\/connexion\/oidc\/psc\/retour/);
  const refused = await p.textContent('body');
  expect(refused.includes("niveau d'authentification insuffisant (eidas0) : eidas1 est exigé"), `niveau faible : ${refused.slice(0, 400)}`);
  await checkA11y(p, 'niveau insuffisant');
  const home2 = await p.goto(`${base}/`);
  expect(home2.url().includes('/login'), 'aucune session ouverte au niveau eidas0');
  await low.close();
  prepared.psc.setLevel('eidas1');
  console.log('  niveau eidas0 : refusé, eidas1 exigé');
}
