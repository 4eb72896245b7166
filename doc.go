// Package introspect protects HTTP APIs with OAuth 2.0 bearer tokens that are
// validated by asking the authorization server (token introspection, RFC 7662).
//
// # Pipeline
//
// A request goes through these steps, each usable alone:
//
//   - Extract: an [Extractor] takes the token off the request (RFC 6750);
//     [BearerExtractor] is the strict default, [ExtractAuthorization] runs it alone.
//   - Resolve the client: static credentials ([WithClientCredentials]), lazy ones
//     ([WithClientCredentialsFunc]) or one client per request ([ClientStore]).
//   - Introspect: a [Client] POSTs the token to the introspection endpoint and
//     parses the answer into an [Introspection].
//   - Validate: active must be the JSON true; exp, nbf and iat are checked locally
//     on every request with a leeway; issuer, audience and client allow-lists when
//     configured; proof-of-possession bindings (cnf).
//   - Authorize: [Middleware.RequireScope], [Middleware.RequireAudience] or any
//     predicate with [Middleware.Require].
//
// [New] composes the chain into a [Middleware] whose [Middleware.Handler] has the
// universal shape func(http.Handler) http.Handler. Handlers read the verdict with
// [FromContext].
//
// # Responses
//
// Refused requests get the RFC 6750 §3 answers: 401 without an error code when
// there is no token, 400 invalid_request for a malformed request, 401
// invalid_token for an inactive or locally refused token, 403 insufficient_scope
// from the guards, and 503 when no verdict was possible (the authorization
// server is down, slow, refuses our credentials or answers garbage). Every
// failure denies: the package fails closed. [StatusCode] maps errors to
// statuses; [WithErrorResponder] and [WithInactiveTokenResponder] replace the
// responses.
//
// # Security
//
// Tokens and client secrets never appear in errors, responses or logs; every
// read from the network is bounded; calls to the authorization server have a
// timeout, never follow redirects and require https except to loopback hosts.
package introspect
