// Starts node oidc-provider for the interoperability tests of introspect.
//
//   node server.mjs CONFIG.json
//
// CONFIG.json: {"port": 0, "clients": [...oidc-provider client metadata],
// "shortLived": ["client ids whose client_credentials tokens live 2 s"],
// "mtls": {"key": "PEM", "cert": "PEM"},
// "resources": {"resource indicator": "JWS alg of its JWT access tokens"},
// "jwks": {"keys": [private JWKs]}}.
// A token requested with a "resource" of "resources" (RFC 8707) is an RFC
// 9068 JWT access token for it, signed with that algorithm. The provider
// signs with the first key of "jwks" that suits the algorithm and publishes
// all of them, so a key rotation is a restart with a new key first and the
// old ones after it; without "jwks" it generates an RS256 and an ES256 key.
// The grant type urn:introspect:interop:user (parameter "username") issues
// an opaque access token for that user with the scopes openid and profile,
// as an authorization code flow would after a login, so the userinfo
// endpoint answers for it: {"sub": username, "name": "User <username>"}.
// The server listens on 127.0.0.1 only. With "mtls" it also serves the
// provider over TLS with that key and certificate on a second port, asking
// every client for a certificate, and prints "MTLS <origin>" on stdout; a
// token requested there by a client registered with
// tls_client_certificate_bound_access_tokens is bound to the certificate of
// the connection (RFC 8705). It prints "READY <issuer>" once it serves, and
// exits on SIGTERM, SIGINT or when stdin closes (so it never outlives the
// test that started it).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTLSServer } from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const shortLived = new Set(config.shortLived ?? []);
const resources = config.resources ?? {};

const signingKey = (type, options, alg) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  kid: `interop-${alg.toLowerCase()}`,
  alg,
  use: 'sig',
});

// The certificate a client presented on the TLS connection of the request,
// if any. The TLS listener accepts any certificate: binding a token to it
// needs proof of possession of its key, which the handshake gives, not a
// chain to a trusted CA.
const clientCertificate = (ctx) => (ctx.socket?.encrypted ? ctx.socket.getPeerX509Certificate() : undefined);

const userGrant = 'urn:introspect:interop:user';

const listen = (srv, port) => new Promise((resolve) => {
  srv.listen(port, '127.0.0.1', () => resolve(srv.address().port));
});

const server = createServer();
const tlsServer = config.mtls
  ? createTLSServer({ key: config.mtls.key, cert: config.mtls.cert, requestCert: true, rejectUnauthorized: false })
  : undefined;

{
  const port = await listen(server, config.port ?? 0);
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: config.jwks ?? {
      keys: [
        signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
        signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      ],
    },
    scopes: ['api', 'openid', 'profile'],
    claims: { openid: ['sub'], profile: ['name'] },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, name: `User ${sub}` }),
    }),
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
      // Signed userinfo answers for clients registered with
      // userinfo_signed_response_alg.
      jwtUserinfo: { enabled: true },
      // A token request with a DPoP proof gets a token bound to its key
      // (cnf "jkt", token_type DPoP).
      dPoP: { enabled: true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        getCertificate: clientCertificate,
      },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (ctx, resource, client) => {
          if (!Object.hasOwn(resources, resource)) throw new errors.InvalidTarget();
          return {
            scope: 'api',
            audience: resource,
            accessTokenTTL: shortLived.has(client.clientId) ? 2 : 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: resources[resource] } },
          };
        },
      },
    },
    enabledJWA: {
      clientAuthSigningAlgValues: ['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256', 'EdDSA'],
    },
    ttl: {
      ClientCredentials: (ctx, token, client) => (shortLived.has(client.clientId) ? 2 : 600),
    },
  });
  provider.registerGrantType(userGrant, async (ctx) => {
    const { client, params } = ctx.oidc;
    if (!params.username) throw new errors.InvalidRequest('username is required');
    const grant = new provider.Grant({ accountId: params.username, clientId: client.clientId });
    grant.addOIDCScope('openid profile');
    const grantId = await grant.save();
    const at = new provider.AccessToken({
      accountId: params.username, client, grantId, gty: userGrant, scope: 'openid profile',
    });
    ctx.body = {
      access_token: await at.save(), token_type: 'Bearer', expires_in: at.expiration, scope: at.scope,
    };
  }, ['username']);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  if (tlsServer) {
    tlsServer.on('request', provider.callback());
    console.log(`MTLS https://127.0.0.1:${await listen(tlsServer, 0)}`);
  }
  console.log(`READY ${issuer}`);
}

const stop = () => {
  tlsServer?.close();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
