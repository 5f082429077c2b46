// Scenario "login": a doctor logs in with password and TOTP, searches a patient,
// opens the patient's page and corrects her phone number on the record's form (the
// INS traits of her qualified identity are locked there). Every page passes
// axe-core and fits a phone screen.
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
  const facts = await page.locator('dl').first().innerText();
  expect(facts.includes('IPP') && facts.includes('INS'), `page patient incomplète: ${facts}`);
  expect(!facts.includes('non qualifiée'), 'identité qualifiée attendue pour la patiente de démonstration');
  await checkA11y(page, 'page patient');
  await checkNoHorizontalScroll(page, 'page patient');
  const contacts = await page.getByRole('region', { name: 'Coordonnées' }).innerText();
  expect(contacts.includes('Personne de confiance') && contacts.includes('Claire DUPONT'), `coordonnées incomplètes: ${contacts}`);

  // The record's form: the traits of a qualified identity are locked; a wrong
  // number is refused with what was typed kept; a right one is saved.
  await page.getByRole('link', { name: "Modifier l'identité et les coordonnées" }).click();
  await page.getByRole('heading', { name: /Modifier le dossier/ }).waitFor();
  expect(await page.getByLabel('Nom de naissance').isDisabled(), 'traits INS verrouillés attendus (identité qualifiée)');
  await checkA11y(page, 'dossier: identité et coordonnées');
  await checkNoHorizontalScroll(page, 'dossier: identité et coordonnées');
  await page.getByLabel('Téléphone portable').fill('06 12 34');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await page.getByRole('alert').filter({ hasText: 'numéro de téléphone' }).waitFor();
  expect((await page.getByLabel('Téléphone portable').inputValue()) === '06 12 34', 'la saisie est conservée après un refus');
  await checkA11y(page, 'dossier: refus');
  await page.getByLabel('Téléphone portable').fill('06 12 34 56 78');
  await page.getByRole('button', { name: 'Enregistrer' }).click();
  await page.getByRole('heading', { name: 'LAMBERT Monique' }).waitFor();
  const saved = await page.getByRole('region', { name: 'Coordonnées' }).innerText();
  expect(saved.includes('06 12 34 56 78'), `numéro enregistré attendu: ${saved}`);

  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.waitForURL(`${base}/login`);
}
