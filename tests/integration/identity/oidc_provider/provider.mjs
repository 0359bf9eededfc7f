// A real OpenID Connect provider on loopback for the integration tests (panva's oidc-provider).
//
// One static confidential client (client_secret_basic, PKCE required), the accounts the test
// passes (their claims, groups included), a fresh RSA signing key per run, and the
// development interactions: a login form that takes any password and a consent form, which the
// test submits like a browser would. Configured by the environment:
//   OIDC_PORT            port on 127.0.0.1 (the issuer is http://127.0.0.1:<port>)
//   OIDC_CLIENT_ID       the client's id          OIDC_CLIENT_SECRET  its secret
//   OIDC_REDIRECT_URIS   its redirect URIs, comma separated
//   OIDC_ACCOUNTS        JSON {login: {claim: value, ...}}; the login is the subject
// Prints "listening <issuer>" once it accepts connections.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: set ${name}`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(required('OIDC_ACCOUNTS'));
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: required('OIDC_CLIENT_ID'),
      client_secret: required('OIDC_CLIENT_SECRET'),
      redirect_uris: required('OIDC_REDIRECT_URIS').split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
  // The scopes' claims go into the ID token as well, as Cognito's cognito:groups does.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  jwks: { keys: [signingKey] },
  cookies: { keys: ['fraudrisk-tests-only-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
});

const server = provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
