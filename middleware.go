package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrorResponder writes the response to a refused request. err matches one of
// the verdicts of [StatusCode]. It has the signature of
// httputil.ReverseProxy.ErrorHandler.
type ErrorResponder func(w http.ResponseWriter, r *http.Request, err error)

// InactiveTokenResponder writes the response to a token that is not active or
// that a local check refused. ti is the authorization server's answer; it may
// say active when a local check (expiry, issuer, audience, binding) refused
// the token, and it is nil when there was no answer.
type InactiveTokenResponder func(w http.ResponseWriter, r *http.Request, ti *Introspection)

// Middleware protects handlers with token introspection. It is safe for
// concurrent use and immutable after [New].
type Middleware struct {
	cfg    *config
	client *Client
	// onError and onInactive are the effective responders (defaults applied).
	onError    ErrorResponder
	onInactive InactiveTokenResponder
	obs        observer
	flights    flights        // coalesces calls per cache key
	dpop       *DPoPVerifier  // nil when DPoP is off
	jwt        *JWTValidator  // nil when JWTs are not validated locally (WithValidation)
	lru        *LRUCache      // the cache, when it is the in-memory one
	fenced     FencedCache    // the cache, when it is fenced (shared by processes)
	sem        chan struct{}  // the bulkhead: one slot per call in flight
	refreshing sync.Map       // CacheKey -> struct{}: background refreshes running
	evictions  atomic.Uint64  // Evict calls so far: a call spanning one does not cache
	bg         sync.WaitGroup // background refreshes

	mu     sync.Mutex // guards closed
	closed bool
}

// New returns a middleware configured by opts. It needs an endpoint and client
// credentials ([WithEndpoint] and [WithClientCredentials] or
// [WithClientCredentialsFunc]) or a [WithClientStore].
//
// Every mistake New can see is an error from it: a missing endpoint or
// credentials, options that contradict each other or are out of range, a
// cache policy option without [WithCache], and static credentials that
// cannot perform their method (an empty client secret for
// client_secret_basic, client_secret_post or client_secret_jwt, explicit or
// chosen; a missing or unsuitable private key; a TLS method without a
// certificate; a client ID with ':' under [WithRawBasicAuth]).
//
// New cannot know whether the authorization server is reachable
// ([WithEagerDiscovery] checks discovery at once), whether it accepts the
// credentials (a wrong secret, an unregistered client or key, an assertion
// audience it refuses), the secret a [WithClientCredentialsFunc] function
// will return, or the credentials a [ClientStore] will. Each of those shows
// as a 503 for the requests: the error reaches [Hooks].IntrospectDone (a
// [*ResponseError] 400/401 invalid_client for refused credentials,
// [ErrClientConfig], [ErrDiscovery]), and [WithLogger] logs it at warn
// level, never with the secret.
func New(opts ...Option) (*Middleware, error) {
	cfg := newConfig(opts)
	if err := errors.Join(cfg.checkCache(), cfg.checkUserinfo()); err != nil {
		return nil, err // before newClient, which may start discovery
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.extractor == nil {
		be := BearerExtractor{}
		if cfg.validation.usesJWT() && cfg.jwtMaxSize > DefaultMaxTokenLength {
			be.MaxLength = cfg.jwtMaxSize // a JWT of that size is taken off the request
		}
		cfg.extractor = be
	}
	m := &Middleware{
		cfg: cfg, client: c, onError: cfg.onError, onInactive: cfg.onInactive,
		obs: observer{h: cfg.hooks, log: cfg.logger},
		sem: make(chan struct{}, cfg.maxConcurrent),
	}
	if cfg.validation.usesJWT() {
		m.jwt = newJWTValidator(c)
	}
	if err := m.setUpDPoP(); err != nil {
		_ = c.Close()
		return nil, err
	}
	m.lru, _ = cfg.cache.(*LRUCache)
	m.fenced, _ = cfg.cache.(FencedCache)
	if m.onError == nil {
		var algs []string
		if m.dpop != nil {
			algs = m.dpop.Algorithms()
		}
		m.onError = defaultErrorResponder(cfg.realm, cfg.resourceMetadata, cfg.dpopMode, algs)
	}
	if m.onInactive == nil {
		m.onInactive = func(w http.ResponseWriter, r *http.Request, _ *Introspection) {
			m.onError(w, r, ErrInactiveToken)
		}
	}
	return m, nil
}

// Client returns the introspection client the middleware uses.
func (m *Middleware) Client() *Client { return m.client }

// Leeway is the clock skew the middleware allows on exp, nbf and iat
// ([WithLeeway]).
func (m *Middleware) Leeway() time.Duration { return m.cfg.leeway }

// Handler protects next: a request reaches it only with an active token, whose
// [*Introspection] is on the request context ([FromContext]), or without a
// token when [WithOptionalToken] is set, or when [WithSkipper] skips it.
// Every other request is answered by the responders.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.cfg.skip != nil && m.cfg.skip(r) {
			next.ServeHTTP(w, r)
			return
		}
		ti, err := m.Authenticate(r)
		if err != nil {
			if m.AllowsAnonymous(err) {
				m.obs.decided(r, Decision{Allowed: true, Status: http.StatusOK})
				next.ServeHTTP(w, r)
				return
			}
			m.WriteError(w, r, ti, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), ti)))
	})
}

// AllowsAnonymous reports whether a request that [Middleware.Authenticate]
// refused with err may go on without a token: [WithOptionalToken] is set and
// err says only that there is no bearer token. Handler decides so; adapters
// call it to do the same.
func (m *Middleware) AllowsAnonymous(err error) bool {
	return m.cfg.optional && isMissing(err)
}

// HandlerFunc is Handler for a function.
func (m *Middleware) HandlerFunc(next http.HandlerFunc) http.Handler { return m.Handler(next) }

// Authenticate runs the whole check for one request: extract the token,
// choose the client, ask the authorization server, check the answer. It is
// the core that framework adapters wrap. A nil error means an active, valid
// token. On an error matching [ErrInactiveToken] the answer is returned too,
// when there was one.
//
// When [ExtractAuthorization] ran in front (the request context says so),
// its finding is used, a missing token included, and the middleware's own
// extractor is not.
func (m *Middleware) Authenticate(r *http.Request) (*Introspection, error) {
	tok, ok := extracted(r.Context())
	if !ok {
		var err error
		if tok, err = m.cfg.extractor.Extract(r); err != nil {
			return nil, classify(err)
		}
	}
	if tok.Value == "" {
		return nil, ErrMissingToken
	}
	return m.AuthenticateToken(r, tok)
}

// AuthenticateToken is [Middleware.Authenticate] for a token already taken off
// the request, for adapters whose frameworks carry it elsewhere (gRPC
// metadata, say).
func (m *Middleware) AuthenticateToken(r *http.Request, tok Token) (*Introspection, error) {
	// The client context goes by pointer to the cache lookup: it is a few
	// hundred bytes, copied at every call otherwise. Nothing on the way
	// writes it (the static one is shared) or keeps the pointer.
	var own ClientContext
	cc := &own
	if m.cfg.store == nil {
		cc = m.client.staticContextRef()
	} else {
		var err error
		if own, err = m.cfg.store.ClientContext(r); err != nil {
			return nil, classify(err)
		}
	}
	ti, err := m.check(r.Context(), cc, tok, r)
	if err == nil {
		m.obs.decided(r, Decision{Allowed: true, Status: http.StatusOK, Introspection: ti})
	}
	return ti, err
}

// Verify checks token for a caller that has no *http.Request: a consumer of
// a queue, a websocket after the upgrade, a custom protocol. It shares
// everything with [Middleware.Handler] (cache, coalescing, bulkhead, hooks,
// the local checks), reading ctx for the hooks and for how long to wait. A
// nil error means an active, valid token; errors are those of
// [Middleware.Authenticate], with [StatusCode] and [ErrorCode] for a
// protocol's own answer. The token must be a b64token (RFC 6750 §2.1) of at
// most [DefaultMaxTokenLength] bytes, or the extractor's MaxLength when the
// middleware's extractor is a [BearerExtractor].
//
// There is no connection to check a binding against: a token bound to a
// certificate or a DPoP key (cnf) is refused, unless
// [InsecureSkipTokenBinding] is set. Refusals are not reported through
// [Hooks].Rejected: the caller answers them. The middleware must use static or
// lazy credentials; with a ClientStore, use [Middleware.VerifyAs].
func (m *Middleware) Verify(ctx context.Context, token string) (*Introspection, error) {
	if m.cfg.store != nil {
		return nil, fmt.Errorf("%w: Verify: the middleware uses a ClientStore: call VerifyAs", ErrClientConfig)
	}
	return m.VerifyAs(ctx, m.client.staticContext(), token)
}

// VerifyAs is [Middleware.Verify] with the endpoint and credentials of cc,
// for example from the middleware's ClientStore for the tenant at hand.
func (m *Middleware) VerifyAs(ctx context.Context, cc ClientContext, token string) (*Introspection, error) {
	if token == "" {
		return nil, ErrMissingToken
	}
	max := DefaultMaxTokenLength
	if be, ok := m.cfg.extractor.(BearerExtractor); ok && be.MaxLength > 0 {
		max = be.MaxLength
	}
	if err := checkToken(token, max); err != nil {
		return nil, err
	}
	return m.check(ctx, &cc, Token{Value: token, Scheme: "Bearer"}, nil)
}

// check asks for the verdict on tok and applies the local checks; r is the
// request for the binding checks, nil when there is none. cc is read, never
// written, nor kept.
func (m *Middleware) check(ctx context.Context, cc *ClientContext, tok Token, r *http.Request) (*Introspection, error) {
	if m.cfg.dpopMode == DPoPRequired && !m.cfg.skipBinding && !isDPoP(tok) {
		return nil, ErrDPoPRequired // no call for a token that cannot pass
	}
	now := m.cfg.now()
	var ti *Introspection
	var err error
	switch mode := m.cfg.validation; mode {
	case ValidateIntrospect:
		ti, err = m.introspected(ctx, cc, tok.Value, now)
	case ValidateJWTAndIntrospect:
		ti, err = m.jwtAndIntrospected(ctx, cc, tok.Value, now)
	default:
		var ours bool
		ti, ours, err = m.jwt.validate(ctx, tok.Value, now, m.client.contextIssuer(cc))
		if mode == ValidateHybrid && !ours {
			// Not a JWT of the issuer: the authorization server decides.
			ti, err = m.introspected(ctx, cc, tok.Value, now)
		}
	}
	if err != nil {
		return ti, err
	}
	if !m.cfg.skipBinding {
		if err := m.checkBinding(r, tok, ti); err != nil {
			return ti, err
		}
	}
	if m.cfg.userinfo != nil {
		return m.withUserinfo(ctx, *cc, tok, ti, now)
	}
	return ti, nil
}

// introspected is the authorization server's verdict on token (cached or
// not) with the local checks applied.
func (m *Middleware) introspected(ctx context.Context, cc *ClientContext, token string, now time.Time) (*Introspection, error) {
	// When the context cannot be completed (its issuer not discovered),
	// verdict has no endpoint to key the cache by: it makes the call
	// uncached, which fails for want of metadata where the hooks see it (or
	// answers, if discovery has just succeeded).
	// A context with an endpoint is complete: keyContext would return it
	// as is, at the cost of two copies of it on every request.
	if cc.Endpoint == "" {
		if rc, err := m.client.keyContext(ctx, *cc); err == nil {
			cc = &rc
		}
	}
	ti, err := m.verdict(ctx, cc, token, now)
	if err != nil {
		return ti, err
	}
	return ti, m.client.validateFor(ti, now, cc.Issuer)
}

// jwtAndIntrospected validates token locally, then asks the authorization
// server (through the cache), which must say it is active: the claims of
// the JWT are the verdict. A token refused locally costs no call.
func (m *Middleware) jwtAndIntrospected(ctx context.Context, cc *ClientContext, token string, now time.Time) (*Introspection, error) {
	// Only the context's issuer's JWTs are accepted (WithJWTIssuers does not
	// apply in this mode): the token is asked about where the context says.
	ti, _, err := m.jwt.validate(ctx, token, now, m.client.contextIssuer(cc))
	if err != nil {
		return ti, err
	}
	answer, err := m.introspected(ctx, cc, token, now)
	if err != nil {
		return answer, err
	}
	// The token is bound if either verdict binds it: an answer's cnf that
	// the JWT lacks still counts, and two bindings that differ are refused.
	if ac := answer.Confirmation; ac != nil {
		if tc := ti.Confirmation; tc != nil && !sameConfirmation(tc, ac) {
			return nil, ErrTokenBinding
		}
		if ti.Confirmation == nil {
			withCnf := *ti
			withCnf.Confirmation = ac
			ti = &withCnf
		}
	}
	ti.Source = VerdictJWTIntrospected
	return ti, nil
}

// sameConfirmation reports whether a and b name the same binding, with no
// method beyond the two this package enforces.
func sameConfirmation(a, b *Confirmation) bool {
	return a.X5TS256 == b.X5TS256 && a.JKT == b.JKT && len(a.Extra) == 0 && len(b.Extra) == 0
}

// classify keeps errors that carry a verdict and turns others into
// ErrUnavailable, so a custom store or extractor always fails closed.
func classify(err error) error {
	for _, v := range []error{ErrInvalidRequest, ErrMissingToken, ErrInactiveToken, ErrInsufficientScope, ErrUnavailable} {
		if errors.Is(err, v) {
			return err
		}
	}
	return errors.Join(ErrUnavailable, err)
}

// isMissing reports a missing token and nothing worse.
func isMissing(err error) bool {
	return errors.Is(err, ErrMissingToken) && !errors.Is(err, ErrInvalidRequest)
}

// WriteError answers a refused request with the configured responders: the
// inactive-token responder for errors matching [ErrInactiveToken], the error
// responder for the others. ti is what [Middleware.Authenticate] returned
// with err. It reports the refusal first, through [Hooks].Rejected (or
// Canceled, for [ErrRequestCanceled]) and the logger, as Handler does, so
// adapters that call it report alike.
func (m *Middleware) WriteError(w http.ResponseWriter, r *http.Request, ti *Introspection, err error) {
	m.ReportRefusal(r, ti, err)
	// A bad DPoP proof is about the request, not the token: its answer
	// (invalid_dpop_proof, use_dpop_nonce with a nonce) is the error
	// responder's.
	if errors.Is(err, ErrInactiveToken) && !errors.Is(err, ErrInvalidDPoPProof) {
		m.onInactive(w, r, ti)
		return
	}
	m.onError(w, r, err)
}

// ReportRefusal reports a refused request through [Hooks].Rejected (or
// Canceled, for [ErrRequestCanceled]), [Hooks].Decided and the logger,
// without writing a response: for adapters whose frameworks answer on their
// own (gRPC). [Middleware.WriteError] calls it before it writes.
func (m *Middleware) ReportRefusal(r *http.Request, ti *Introspection, err error) {
	m.obs.rejected(r, ti, StatusCode(err), err)
}

// RequireScope returns a middleware that lets a request through only if the
// token on its context has every one of scopes; otherwise it answers 403
// insufficient_scope, with scopes in the challenge. A request without a token
// on its context is answered 401. Use it inside [Middleware.Handler].
//
// It panics if scopes is empty or a scope is not an RFC 6749 scope token
// (one or more printable ASCII characters other than space, '"' and '\\'),
// like [regexp.MustCompile]: a guard that no token or every token meets is a
// programming error, caught when the handler chain is built. Scopes are
// compared one by one: "read write" is not two scopes.
func (m *Middleware) RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return m.Require(scopeCheck("RequireScope", scopes, false))
}

// RequireAnyScope is [Middleware.RequireScope] satisfied by any one of
// scopes. It panics as RequireScope does.
func (m *Middleware) RequireAnyScope(scopes ...string) func(http.Handler) http.Handler {
	return m.Require(scopeCheck("RequireAnyScope", scopes, true))
}

// RequireAudience returns a middleware that lets a request through only if the
// token on its context has one of auds in its "aud"; otherwise 403. It panics
// if auds is empty or holds an empty string.
func (m *Middleware) RequireAudience(auds ...string) func(http.Handler) http.Handler {
	return m.Require(audienceCheck("RequireAudience", auds))
}

// Require returns a middleware that lets a request through only if check
// accepts the token on its context. A non-nil error from check is answered
// through the responders: [AllScopes], [AnyScope] and [AnyAudience] return an
// [*InsufficientScopeError] (403).
func (m *Middleware) Require(check Check) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ti, _ := FromContext(r.Context())
			if err := Authorize(ti, check); err != nil {
				m.WriteError(w, r, ti, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Check is an authorization decision on an active token: nil allows.
type Check func(ti *Introspection) error

// AllScopes allows a token that has every one of scopes. It panics if scopes
// is empty or a scope is not an RFC 6749 scope token (see
// [Middleware.RequireScope]).
func AllScopes(scopes ...string) Check { return scopeCheck("AllScopes", scopes, false) }

// AnyScope allows a token that has at least one of scopes. It panics as
// [AllScopes] does.
func AnyScope(scopes ...string) Check { return scopeCheck("AnyScope", scopes, true) }

// AnyAudience allows a token whose "aud" contains at least one of auds. It
// panics if auds is empty or holds an empty string.
func AnyAudience(auds ...string) Check { return audienceCheck("AnyAudience", auds) }

// scopeCheck builds the check of AllScopes (any false) or AnyScope (any
// true), refusing a guard that no token or every token meets; fn names the
// caller in the panic.
func scopeCheck(fn string, scopes []string, any bool) Check {
	if problem := scopesProblem(scopes); problem != "" {
		panic("introspect: " + fn + ": " + problem)
	}
	scopes = slices.Clone(scopes)
	if any {
		return func(ti *Introspection) error {
			if slices.ContainsFunc(scopes, ti.HasScope) {
				return nil
			}
			return &InsufficientScopeError{Scopes: scopes}
		}
	}
	return func(ti *Introspection) error {
		for _, s := range scopes {
			if !ti.HasScope(s) {
				return &InsufficientScopeError{Scopes: scopes}
			}
		}
		return nil
	}
}

func audienceCheck(fn string, auds []string) Check {
	switch {
	case len(auds) == 0:
		panic("introspect: " + fn + ": no audiences: the guard would let every token through")
	case containsEmpty(auds):
		panic("introspect: " + fn + ": an empty audience: the guard could never be met")
	}
	auds = slices.Clone(auds)
	return func(ti *Introspection) error {
		if slices.ContainsFunc(auds, ti.HasAudience) {
			return nil
		}
		return &InsufficientScopeError{Audience: auds}
	}
}

// CheckScopes reports whether scopes can make a guard: at least one scope,
// each an RFC 6749 §3.3 scope token, one or more of the printable ASCII
// characters other than space, '"' and '\\'. "" can never be granted, and
// "read write" is two scopes, which a guard lists apart. Adapters use it to
// check their rules when they are built.
func CheckScopes(scopes []string) error {
	if problem := scopesProblem(scopes); problem != "" {
		return errors.New("introspect: " + problem)
	}
	return nil
}

func scopesProblem(scopes []string) string {
	if len(scopes) == 0 {
		return "no scopes: the guard would let every token through"
	}
	for _, s := range scopes {
		if !validScope(s) {
			return fmt.Sprintf("%q is not a scope token (RFC 6749 §3.3: printable ASCII without space, quote or backslash; list scopes apart): the guard could never be met", s)
		}
	}
	return ""
}

// validScope reports whether s is an RFC 6749 scope-token: 1*NQCHAR, NQCHAR
// being %x21 / %x23-5B / %x5D-7E.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Authorize applies check to ti the way [Middleware.Require] does: a nil ti
// is [ErrMissingToken], and an error that carries no verdict becomes one
// matching [ErrUnavailable], so a faulty check fails closed. Adapters use it.
func Authorize(ti *Introspection, check Check) error {
	if ti == nil {
		return ErrMissingToken
	}
	if err := check(ti); err != nil {
		return classify(err)
	}
	return nil
}

// defaultErrorResponder writes the RFC 6750 §3 responses: 400 invalid_request,
// 401 with or without invalid_token, 403 insufficient_scope, 503; and, unless
// dpop is DPoPOff, the RFC 9449 §7.1 DPoP challenge (with algs) next to the
// Bearer one, or alone when DPoP is required. The challenge of the scheme the
// request used carries the error. It never writes the error's text, the
// token or the Authorization header.
func defaultErrorResponder(realm, resourceMetadata string, dpop DPoPMode, algs []string) ErrorResponder {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status := StatusCode(err)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		code := ErrorCode(err)
		desc := descriptions[code]
		var scopes []string
		switch status {
		case http.StatusForbidden:
			var se *InsufficientScopeError
			if errors.As(err, &se) {
				scopes = se.Scopes
			}
		case http.StatusServiceUnavailable:
			var re *ResponseError
			if errors.As(err, &re) && re.RetryAfter > 0 {
				h.Set("Retry-After", strconv.Itoa(int(re.RetryAfter.Seconds())))
			}
			code, desc = "temporarily_unavailable", "the token cannot be verified now"
		}
		if status != http.StatusServiceUnavailable {
			meta := ""
			if status == http.StatusUnauthorized {
				meta = resourceMetadata
			}
			dpopErr := dpop == DPoPRequired || dpop == DPoPAllowed && requestScheme(r) == "DPoP"
			if dpop != DPoPRequired {
				if dpopErr {
					h.Add("WWW-Authenticate", Challenge(realm, "", "", nil, meta))
				} else {
					h.Add("WWW-Authenticate", Challenge(realm, code, desc, scopes, meta))
				}
			}
			if dpop != DPoPOff {
				if dpop != DPoPRequired {
					meta = "" // the Bearer challenge has it
				}
				if dpopErr {
					h.Add("WWW-Authenticate", dpopChallenge(realm, code, desc, scopes, algs, meta))
				} else {
					h.Add("WWW-Authenticate", dpopChallenge(realm, "", "", nil, algs, meta))
				}
			}
			var ne *DPoPNonceError
			if errors.As(err, &ne) && ne.Nonce != "" {
				h.Set("DPoP-Nonce", ne.Nonce)
			}
		}
		if code == "" {
			w.WriteHeader(status)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		// code and desc are constants of this function: no escaping needed.
		_, _ = w.Write([]byte(`{"error":"` + code + `","error_description":"` + desc + `"}` + "\n"))
	}
}

// descriptions are the fixed error_description texts of the default responses.
var descriptions = map[string]string{
	"invalid_request":    "the request is malformed",
	"invalid_token":      "the access token is not valid",
	"insufficient_scope": "the access token does not grant access to this resource",
	"invalid_dpop_proof": "the DPoP proof is not valid",
	"use_dpop_nonce":     "the DPoP proof must carry the server's nonce",
}

// ErrorCode is the RFC 6750 §3.1 error code for err: "invalid_request" (400),
// "invalid_token" (401) or "insufficient_scope" (403); "" for a missing
// token, which gets a challenge without a code, and for errors that are no
// authentication failure (503).
func ErrorCode(err error) string {
	switch StatusCode(err) {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		switch {
		case isMissing(err):
			return ""
		case errors.Is(err, ErrUseDPoPNonce):
			return "use_dpop_nonce"
		case errors.Is(err, ErrInvalidDPoPProof):
			return "invalid_dpop_proof"
		}
		return "invalid_token"
	case http.StatusForbidden:
		return "insufficient_scope"
	}
	return ""
}

// Challenge builds a WWW-Authenticate value for the Bearer scheme (RFC 6750
// §3, RFC 9728 §5.1). Each value is put in a quoted-string; characters that a
// quoted-string or the attribute's grammar does not allow (control
// characters, CR, LF, non-ASCII, and quotes and backslashes in error,
// error_description and scope) are dropped, so no input can inject into the
// header. An attribute with nothing valid left is left out.
func Challenge(realm, errorCode, description string, scopes []string, resourceMetadata string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	attr := func(name, v string, strict bool) {
		var q []byte
		for i := 0; i < len(v); i++ {
			c := v[i]
			switch {
			case c < 0x20 || c > 0x7e:
			case c == '"' || c == '\\':
				if !strict {
					q = append(q, '\\', c)
				}
			default:
				q = append(q, c)
			}
		}
		if len(q) == 0 {
			return // nothing valid is left: leave the attribute out
		}
		b.WriteString(sep)
		sep = ", "
		b.WriteString(name)
		b.WriteString(`="`)
		b.Write(q)
		b.WriteByte('"')
	}
	attr("realm", realm, false)
	attr("error", errorCode, true)
	attr("error_description", description, true)
	attr("scope", scopeList(scopes), true)
	attr("resource_metadata", resourceMetadata, false)
	return b.String()
}

// scopeList joins the scope tokens that are valid NQCHAR strings (RFC 6749
// §3.3) with spaces; invalid ones are left out.
func scopeList(scopes []string) string {
	var b strings.Builder
	for _, s := range scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return r < 0x21 || r > 0x7e || r == '"' || r == '\\'
		}) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}
