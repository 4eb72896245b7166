// Package introspect protects HTTP APIs with OAuth 2.0 bearer tokens that are
// validated by asking the authorization server (token introspection, RFC 7662).
//
// # Pipeline
//
// A request goes through these steps, each usable alone:
//
//   - Extract: an [Extractor] takes the token off the request (RFC 6750);
//     [BearerExtractor] is the strict default. [ExtractAuthorization] runs it
//     as a step of its own; placed in front of [Middleware.Handler], what it
//     found (or did not) is what the middleware uses, and
//     [RequireAuthorization] between the two answers 401 to a request without
//     a token (presence, not validity).
//   - Resolve the client: static credentials ([WithClientCredentials]), lazy ones
//     ([WithClientCredentialsFunc]) or one client per request ([ClientStore]).
//   - Introspect: a [Client] POSTs the token to the introspection endpoint and
//     parses the answer into an [Introspection]; or, with [WithValidation], a
//     JWT access token (RFC 9068) is validated locally ([JWTValidator]).
//   - Validate: active must be the JSON true; exp, nbf and iat are checked locally
//     on every request with a leeway; issuer, audience and client allow-lists when
//     configured; proof-of-possession bindings (cnf): a certificate binding is
//     checked against the client certificate (the TLS connection's, or a
//     trusted proxy's header: [WithClientCertificateHeader]), a DPoP binding
//     against the request's proof ([WithDPoP], [DPoPVerifier]); any other
//     binding is refused. [WithUserinfo] then adds the userinfo claims.
//   - Authorize: [Middleware.RequireScope], [Middleware.RequireAudience] or any
//     predicate with [Middleware.Require].
//
// [New] composes the chain into a [Middleware] whose [Middleware.Handler] has the
// universal shape func(http.Handler) http.Handler. Handlers read the verdict with
// [FromContext], or decode it into their own type with [DecodeClaims].
// Framework adapters wrap [Middleware.Authenticate] and [Middleware.WriteError];
// callers without an *http.Request (a queue consumer, a websocket) use
// [Middleware.Verify], which shares the cache, coalescing and hooks.
//
// The guards ([Middleware.RequireScope], [AllScopes], ...) panic when they are
// built with no scopes, an empty scope or one that is not an RFC 6749 scope
// token, like [regexp.MustCompile]: such a guard would let every token
// through or none. Everything [New] can check is an error from New.
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
// report what happens, without tokens or secrets; [Hooks].Decided is an
// audit trail of every decision.
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
// Tokens, client secrets, private keys and cache keys never appear in errors,
// responses or logs, nor when the package's values are printed with fmt, slog
// or encoding/json; errors carry only text the package wrote, never text the
// authorization server or the network chose. Every read from the network is
// bounded; calls to the authorization server have a timeout, are bounded in
// number ([WithMaxConcurrentIntrospections]), never follow redirects and
// require https except to loopback hosts. A panic in a callback (a secret
// function, a cache, a hook) during a call is recovered and reported
// ([Hooks].Panicked), and the requests waiting for it get 503. Tokens bound to
// a client certificate (cnf "x5t#S256") are accepted only with that
// certificate; tokens bound to a DPoP key (cnf "jkt") only with the DPoP
// scheme and a valid proof of that key, checked on every request; tokens
// bound by any other cnf method, or whose cnf cannot be checked, are refused.
//
// # Examples
//
// The Example functions of this package run against the introspecttest package and are
// executed by the tests; go doc does not print them: read them in
// example_test.go or on the package's documentation site.
package introspect
