// panva's oidc-provider doing the benchmark's job: client_credentials with
// client_secret_basic, a resource indicator, RFC 9068 JWT access tokens signed
// with ES256 (or RS256), and an extraTokenClaims hook adding the two claims
// Tessera's client-claims plugin adds, from the client's metadata.
//
//   PORT=8081 ALG=ES256 NODE_ENV=production node server.mjs
//
// Prints "listening on 127.0.0.1:PORT" once it accepts connections.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 8081);
const alg = process.env.ALG ?? 'ES256';
const audience = 'https://orders.example.com';
const namespace = 'https://claims.example.com/';

const { privateKey } = alg === 'RS256'
  ? generateKeyPairSync('rsa', { modulusLength: 2048 })
  : generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: 'bench' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'acme-sync',
    client_secret: 'demo-acme-secret-do-not-use-in-production',
    client_name: 'ACME order sync',
    app_type: 'machine',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read:orders write:orders',
    id_token_signed_response_alg: alg,
  }],
  scopes: ['read:orders', 'write:orders'],
  extraClientMetadata: { properties: ['app_type'] },
  jwks: { keys: [jwk] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== audience) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'read:orders write:orders',
          audience,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
  extraTokenClaims: (ctx) => ({
    [`${namespace}client_name`]: ctx.oidc.client.clientName,
    [`${namespace}client_app_type`]: ctx.oidc.client.app_type,
  }),
});

const server = createServer(provider.callback());
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${port}`);
});
