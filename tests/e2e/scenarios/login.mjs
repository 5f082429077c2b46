// Scenario "login": a doctor logs in with password and TOTP, searches a patient and
// opens the patient's page. Every page passes axe-core and fits a phone screen.
import { totp } from './totp.mjs';

const DEMO_TOTP_SECRET = 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU';

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

export default async function login({ page, base, checkA11y, checkNoHorizontalScroll }) {
  await page.goto(`${base}/`);
  expect(page.url() === `${base}/login`, `non connecté: redirection attendue vers /login, obtenu ${page.url()}`);
  await page.getByRole('heading', { name: 'Connexion' }).waitFor();
  await checkA11y(page, 'connexion');
  await checkNoHorizontalScroll(page, 'connexion');

  // A wrong password first: a clear message, still on the login page.
  await page.getByLabel('Identifiant').fill('dr.martin');
  await page.getByLabel('Mot de passe').fill('mauvais');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.getByRole('alert').filter({ hasText: 'incorrect' }).waitFor();

  await page.getByLabel('Identifiant').fill('dr.martin');
  await page.getByLabel('Mot de passe').fill('parcours-demo');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.waitForURL(`${base}/login/totp`);
  await checkA11y(page, 'code de vérification');
  await page.getByLabel('Code à 6 chiffres').fill(totp(DEMO_TOTP_SECRET));
  await page.getByRole('button', { name: 'Valider' }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole('heading', { name: 'Bonjour Dr Claire Martin' }).waitFor();
  await checkA11y(page, 'accueil médecin');
  await checkNoHorizontalScroll(page, 'accueil médecin');

  await page.getByRole('link', { name: 'Rechercher un patient' }).click();
  await page.getByLabel('Nom', { exact: true }).fill('lambert');
  await page.getByRole('button', { name: 'Rechercher' }).click();
  await page.getByText('1 résultat(s)').waitFor();
  await checkA11y(page, 'recherche de patients');
  await checkNoHorizontalScroll(page, 'recherche de patients');

  await page.getByRole('link', { name: 'LAMBERT Monique' }).click();
  await page.getByRole('heading', { name: 'LAMBERT Monique' }).waitFor();
  const facts = await page.locator('dl').innerText();
  expect(facts.includes('IPP') && facts.includes('INS'), `page patient incomplète: ${facts}`);
  expect(!facts.includes('non qualifiée'), 'identité qualifiée attendue pour la patiente de démonstration');
  await checkA11y(page, 'page patient');
  await checkNoHorizontalScroll(page, 'page patient');

  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.waitForURL(`${base}/login`);
}
