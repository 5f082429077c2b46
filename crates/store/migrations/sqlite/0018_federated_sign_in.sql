-- Sign-in through an OpenID Connect provider (Pro Santé Connect, a GHT's own),
-- and API clients authenticated by signed assertions (SMART Backend Services).
-- A login under way: its `state` (SHA-256), bound to the browser that started it
-- (SHA-256 of a cookie), with its nonce and PKCE verifier, and the account
-- asking to link the provider's identity to itself, if that is what it is; taken once.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    link_user TEXT,
    expires_at_ms BIGINT NOT NULL
);
-- A provider's subject linked to an account (by an admin, or by the account
-- itself after a password sign-in): a match that needs no national id.
CREATE TABLE oidc_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities(user_id);
-- The ID token a session was opened with, for the provider's logout.
CREATE TABLE oidc_sessions (
    session_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    id_token TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
-- API clients as SMART Backend Services: their public keys (a JWKS, or where to
-- fetch it) for private_key_jwt, and the system scopes they may be granted
-- (NULL: not narrowed beyond the establishment policy).
ALTER TABLE api_clients ADD COLUMN jwks TEXT;
ALTER TABLE api_clients ADD COLUMN jwks_url TEXT;
ALTER TABLE api_clients ADD COLUMN scopes TEXT;
-- The scopes a token was granted (NULL: a token asked without scopes).
ALTER TABLE access_tokens ADD COLUMN scopes TEXT;
-- Client assertions seen (their jti), kept until they expire: none is used twice.
CREATE TABLE client_assertions (
    client_pk TEXT NOT NULL REFERENCES api_clients(id),
    jti TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (client_pk, jti)
);
