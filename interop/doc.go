// Package interop runs introspect against node oidc-provider, a third-party
// OAuth 2.0 and OpenID Connect server: discovery, every client
// authentication method it supports, RFC 9701 signed answers, and active,
// revoked, expired and never-issued tokens.
//
// Install the server with `npm ci` in this directory, then `go test ./...`.
// Without Node.js or the installed package the tests are skipped with a
// message, except under CI=true, where they fail.
package interop
