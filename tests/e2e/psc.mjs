// A local identity provider configured like Pro Santé Connect, built on the
// certified OpenID Provider `oidc-provider` (panva): the authorization code
// flow with PKCE, client_secret_basic, RS256 ID tokens, the claim
// `SubjectNameID` (the national id, `8` + RPPS) behind the scope `scope_all`,
// the authentication levels `eidas1` (CPS card, e-CPS) and `eidas0`, and
// RP-initiated logout. Its sign-in page stands for the e-CPS app: one button,
// at the level the scenario chooses. The scenario may also have the next ID
// token spoiled on its way out (another nonce, another key, expired, another
// audience), as an attacker between the two would. Listens on 127.0.0.1 only.
import http from 'node:http';
import { generateKeyPairSync, sign } from 'node:crypto';
import Provider from 'oidc-provider';

/**
 * Starts the provider on `port` for the relying party at `base`; `nationalId`
 * is who signs in. Returns { issuer, setLevel(acr), close() }.
 */
export async function startPsc({ port, base, clientId, clientSecret, nationalId }) {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // Another key, for a token "signed by someone else" under the same kid.
  const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'psc-test-1', use: 'sig', alg: 'RS256' };
  let level = 'eidas1';
  // How the next ID token is spoiled on its way out of the token endpoint
  // (null: as the provider made it).
  let tamper = null;
  const subject = `psc-${nationalId}`;
  const oidc = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [`${base}/connexion/oidc/psc/retour`],
      post_logout_redirect_uris: [`${base}/login`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [jwk] },
    scopes: ['openid', 'scope_all'],
    claims: { openid: ['sub'], scope_all: ['SubjectNameID'] },
    acrValues: ['eidas0', 'eidas1'],
    cookies: { keys: ['cle-de-test-des-cookies-du-fournisseur'] },
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 300, IdToken: 300, AuthorizationCode: 60 },
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, SubjectNameID: nationalId }),
    }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Déconnexion PSC</title></head>
<body><main><h1>Se déconnecter de Pro Santé Connect ?</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Oui, me déconnecter</button></main></body></html>`;
        },
      },
    },
  });
  oidc.proxy = false;

  const b64 = (buf) => Buffer.from(buf).toString('base64url');
  /** The provider's ID token changed as `tamper` says, signed again (RS256). */
  function spoil(idToken) {
    const [h, p] = idToken.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const now = Math.floor(Date.now() / 1000);
    if (tamper === 'nonce') claims.nonce = 'un-autre-nonce';
    if (tamper === 'expired') { claims.iat = now - 900; claims.exp = now - 600; }
    if (tamper === 'audience') claims.aud = 'une-autre-application';
    const payload = b64(JSON.stringify(claims));
    const key = tamper === 'key' ? otherKey : privateKey;
    return `${h}.${payload}.${b64(sign('RSA-SHA256', Buffer.from(`${h}.${payload}`), key))}`;
  }
  oidc.use(async (ctx, next) => {
    await next();
    if (tamper && ctx.path === '/token' && ctx.body && typeof ctx.body.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: spoil(ctx.body.id_token) };
    }
  });

  const page = (uid) => `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect (test)</title></head>
<body><main><h1>Pro Santé Connect</h1><p>Carte CPS ou application e-CPS.</p>
<form method="post" action="/interaction/${uid}"><button type="submit">Valider avec l'e-CPS</button></form></main></body></html>`;

  const callback = oidc.callback();
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url.startsWith('/interaction/')) {
        const details = await oidc.interactionDetails(req, res);
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(page(details.uid));
          return;
        }
        const grant = details.grantId
          ? await oidc.Grant.find(details.grantId)
          : new oidc.Grant({ accountId: subject, clientId: details.params.client_id });
        grant.addOIDCScope(String(details.params.scope ?? 'openid'));
        const grantId = await grant.save();
        await oidc.interactionFinished(req, res, {
          login: { accountId: subject, acr: level },
          consent: { grantId },
        }, { mergeWithLastSubmission: false });
        return;
      }
      callback(req, res);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`fournisseur de test : ${e.message}`);
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    issuer,
    setLevel: (acr) => { level = acr; },
    /** 'nonce' | 'key' | 'expired' | 'audience' | null */
    setTamper: (how) => { tamper = how; },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
