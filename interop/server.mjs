// Starts node oidc-provider for the interoperability tests of introspect.
//
//   node server.mjs CONFIG.json
//
// CONFIG.json: {"port": 0, "clients": [...oidc-provider client metadata],
// "shortLived": ["client ids whose client_credentials tokens live 2 s"]}.
// The server listens on 127.0.0.1 only, prints "READY <issuer>" on stdout
// once it serves, and exits on SIGTERM, SIGINT or when stdin closes (so it
// never outlives the test that started it).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const shortLived = new Set(config.shortLived ?? []);

const signingKey = (type, options, alg) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  kid: `interop-${alg.toLowerCase()}`,
  alg,
  use: 'sig',
});

const server = createServer();
server.listen(config.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: {
      keys: [
        signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
        signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      ],
    },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        // Any authenticated confidential client may introspect any token: the
        // resource server is not the client the token was issued to.
        allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none',
      },
      jwtIntrospection: { enabled: true },
    },
    enabledJWA: {
      clientAuthSigningAlgValues: ['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256', 'EdDSA'],
    },
    ttl: {
      ClientCredentials: (ctx, token, client) => (shortLived.has(client.clientId) ? 2 : 600),
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(`READY ${issuer}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
