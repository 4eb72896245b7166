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
// [FromContext]. Framework adapters wrap [Middleware.Authenticate] and
// [Middleware.WriteError].
//
// # Authorization servers
//
// [WithEndpoint] names the introspection endpoint; [WithIssuer] discovers it (RFC
// 8414, then OpenID configuration) with the server's keys and authentication
// methods. Clients authenticate with a secret (Basic or form), a client assertion
// ([WithPrivateKey], client_secret_jwt), a TLS client certificate
// ([WithClientCertificate]) or a bearer token ([WithBearerCredentials]).
// [WithJWTResponse] requires signed answers (RFC 9701).
//
// # Cache
//
// [WithCache] with an [LRUCache] (or the Redis cache of the cache/redis module)
// makes one call to the authorization server per token per TTL window:
// concurrent misses are coalesced, active verdicts live at most [WithMaxTTL] and
// never past exp, inactive ones [WithNegativeTTL] in their own space, errors are
// never cached. [WithStaleIfError] and [WithRefreshAhead] are opt-in;
// [Middleware.Evict] drops a revoked token at once. [Hooks] and [WithLogger]
// report what happens, without tokens or secrets.
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
// timeout, are bounded in number ([WithMaxConcurrentIntrospections]), never
// follow redirects and require https except to loopback hosts. Tokens bound to
// a TLS client certificate or a DPoP key (cnf) are checked by default.
package introspect
