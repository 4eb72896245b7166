// Package interop runs introspect against node oidc-provider, a third-party
// OAuth 2.0 and OpenID Connect server: discovery, every client
// authentication method it supports, RFC 9701 signed answers, active,
// revoked, expired and never-issued tokens, and sender-constrained tokens:
// DPoP-bound ones (RFC 9449), also with a replay cache that two middlewares
// share in Redis, and certificate-bound ones (RFC 8705), issued over the
// provider's own mutual-TLS listener and checked behind a TLS-terminating
// reverse proxy that forwards the client certificate in a header. Its RFC
// 9068 JWT access tokens are validated locally (and refused when expired,
// for another audience, of an unknown key, re-signed HS256 with the public
// key, or without typ), also across a key rotation (the provider restarted
// on its port with a new signing key); userinfo is loaded for a user's
// token, plain and signed; two providers serve one middleware, as two JWT
// issuers and as two tenants each discovered by its issuer with signed
// answers.
//
// Install the server with `npm ci` in this directory (`make deps` does it,
// and installs redis-server), then `go test ./...`. Without Node.js, the
// installed package or redis-server, the tests that need them are skipped
// with a message, except under CI=true, where they fail.
package interop
