package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// ErrDiscovery: the authorization server's metadata (RFC 8414) or its keys
// (jwks_uri) could not be fetched or were refused, and no good copy is at
// hand. It wraps [ErrUnavailable] (503): requests fail closed until
// discovery succeeds.
var ErrDiscovery = fmt.Errorf("%w: discovery", ErrUnavailable)

// Defaults of the discovery options.
const (
	// DefaultMetadataRefresh is how often metadata and keys are refreshed
	// when the server's Cache-Control gives no max-age.
	DefaultMetadataRefresh = time.Hour
	// minMetadataRefresh and maxMetadataRefresh bound a server's max-age.
	minMetadataRefresh = time.Minute
	maxMetadataRefresh = 24 * time.Hour
	// defaultKeyRefreshLimit is the least time between two refreshes of the
	// JWKS caused by an unknown "kid", so forged kids cannot cause a storm.
	defaultKeyRefreshLimit = 30 * time.Second
	// maxBackoff bounds the wait between attempts while the server fails.
	maxBackoff = 5 * time.Minute
	// maxFirstBackoff bounds it while there has never been a good copy: a
	// resource server started before its authorization server serves within
	// seconds of the server coming up.
	maxFirstBackoff = 5 * time.Second
	// maxJWKSKeys bounds the number of keys taken from a JWKS.
	maxJWKSKeys = 100
)

// ProviderMetadata is the part of an authorization server's metadata (RFC
// 8414 §2, RFC 8705 §5, RFC 9701 §7) the library uses. Only issuer is
// required; introspection_endpoint too, unless [WithEndpoint] is given or
// nothing is introspected ([ValidateJWT]), and jwks_uri when
// [WithJWTResponse] or local JWT validation ([WithValidation],
// [NewJWTValidator]) is on. OpenID-only members are never required.
type ProviderMetadata struct {
	Issuer                                    string
	IntrospectionEndpoint                     string
	TokenEndpoint                             string
	JWKSURI                                   string
	IntrospectionEndpointAuthMethodsSupported []string
	TokenEndpointAuthMethodsSupported         []string
	IntrospectionSigningAlgValuesSupported    []string
	IntrospectionEncryptionAlgValuesSupported []string
	// MTLSIntrospectionEndpoint is mtls_endpoint_aliases.introspection_endpoint.
	MTLSIntrospectionEndpoint string
	// UserinfoEndpoint is the OpenID Connect userinfo_endpoint, used by
	// [WithUserinfo].
	UserinfoEndpoint string
}

// authMethodsSupported is the list the client authentication method is
// chosen from (RFC 8414 §2: the introspection list, else the token
// endpoint's, else client_secret_basic).
func (m *ProviderMetadata) authMethodsSupported() []string {
	switch {
	case m.IntrospectionEndpointAuthMethodsSupported != nil:
		return m.IntrospectionEndpointAuthMethodsSupported
	case m.TokenEndpointAuthMethodsSupported != nil:
		return m.TokenEndpointAuthMethodsSupported
	}
	return []string{string(ClientSecretBasic)}
}

// WithIssuer configures the authorization server by discovery: its metadata
// is read from the RFC 8414 location (/.well-known/oauth-authorization-server,
// inserted before the issuer's path), else from the OpenID Connect one
// (issuer + /.well-known/openid-configuration). The document's issuer must
// equal iss exactly. It supplies the introspection endpoint (unless
// [WithEndpoint] overrides it), the client authentication method (unless
// [WithAuthMethod] fixes it; see [AuthMethod]), the audience of client
// assertions, and the keys and (unless [WithJWTResponseAlgorithms] sets
// them) the algorithms of signed answers.
//
// Metadata is refreshed in the background (after the server's Cache-Control
// max-age, else [WithMetadataRefresh]); while the server fails, the last good
// copy is kept and attempts back off. [New] does not wait for the server
// unless [WithEagerDiscovery] is given: until discovery succeeds, requests
// fail with [ErrDiscovery] (503). Close the middleware or client when done.
//
// An introspection answer naming an "iss" other than iss is refused
// ([ErrIssuerMismatch]); an answer without iss is not. With
// [WithClientStore], iss is the issuer of the contexts that name neither an
// endpoint nor an issuer ([ClientContext]). No default.
func WithIssuer(iss string) Option {
	return func(c *config) {
		if iss == "" {
			c.fail("WithIssuer: empty issuer")
			return
		}
		c.discoveryIssuer = iss
	}
}

// WithEagerDiscovery makes [New], [NewClient] and [NewJWTValidator] fetch
// the metadata (and the keys, with [WithJWTResponse] or local JWT
// validation) and fail when they cannot. Default off: the constructor
// succeeds while the authorization server is down, and requests answer 503
// until discovery succeeds.
func WithEagerDiscovery() Option {
	return func(c *config) { c.eagerDiscovery = true }
}

// WithMetadataRefresh sets how often the metadata and keys of every issuer
// ([WithIssuer], [WithJWTIssuers], [ClientContext].Issuer) are refreshed
// when the server's Cache-Control has no max-age. A max-age is
// honoured between 1 minute and 24 hours. Default 1 h.
func WithMetadataRefresh(d time.Duration) Option {
	return func(c *config) {
		if d < minMetadataRefresh {
			c.fail("WithMetadataRefresh: %v is shorter than %v", d, minMetadataRefresh)
			return
		}
		c.metadataRefresh = d
	}
}

// checkIssuer applies the RFC 8414 §2 rules to an issuer identifier: an
// absolute https URL (or http to loopback, or with InsecureAllowHTTP) without
// query or fragment.
func checkIssuer(iss string, insecure bool) error {
	if err := checkEndpoint(iss, insecure); err != nil {
		return errors.New("introspect: issuer: " + strings.TrimPrefix(err.Error(), "introspect: "))
	}
	u, _ := url.Parse(iss)
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("introspect: issuer must not contain a query")
	}
	return nil
}

// metadataURLs are the places to look for iss's metadata, in order: RFC 8414
// §3.1 (well-known segment inserted between host and path), then OpenID
// Connect Discovery 1.0 §4 (appended to the path).
func metadataURLs(iss string) []string {
	u, err := url.Parse(iss)
	if err != nil {
		return nil
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	oauth := *u
	oauth.RawPath = ""
	oauth.Path = ""
	oidc := oauth
	oauthURL := oauth.String() + "/.well-known/oauth-authorization-server" + path
	oidcURL := oidc.String() + path + "/.well-known/openid-configuration"
	return []string{oauthURL, oidcURL}
}

// needsKeys reports whether the issuer's JWKS is used: for signed answers
// or for JWT access tokens validated locally.
func (c *config) needsKeys() bool { return c.jwtResponse || c.validation.usesJWT() }

// provider holds the discovered state of one issuer and refreshes it in
// the background.
type provider struct {
	c      *Client
	issuer string
	role   providerRole

	meta *refresher[providerState]
	keys *refresher[jwk.Set] // nil unless signed answers or local JWT validation are on

	ctx    context.Context // the fetches' base, cancelled by close
	cancel context.CancelFunc
	// loopCtx ends the refresh loop: cancelled by close, and by retire,
	// which leaves the fetches alone.
	loopCtx  context.Context
	stopLoop context.CancelFunc
	done     chan struct{} // closed when the refresh loop has ended
	once     sync.Once

	index atomic.Pointer[keyIndex] // the verification keys of the current JWKS
}

// providerRole says what an issuer is to the client, which decides what its
// metadata must name.
type providerRole uint8

const (
	// rolePrimary is the issuer of WithIssuer: the static credentials'
	// endpoint and method come from it.
	rolePrimary providerRole = iota
	// roleJWT is an issuer of WithJWTIssuers: only its keys are needed.
	roleJWT
	// roleContext is an issuer a ClientContext names (one per tenant, say).
	roleContext
)

// needsKeys reports whether the issuer's JWKS must be listed and kept fresh.
func (p *provider) needsKeys() bool { return p.role == roleJWT || p.c.cfg.needsKeys() }

// providerState is one good copy of the metadata and what follows from it
// for the static credentials.
type providerState struct {
	meta ProviderMetadata
	cc   ClientContext // endpoint and credentials with the method chosen
	// endpoint is cc.Endpoint parsed.
	endpoint *url.URL
	algs     []string // algorithms accepted for signed answers
}

func newProvider(c *Client, issuer string, role providerRole) *provider {
	ctx, cancel := context.WithCancel(context.Background())
	p := &provider{c: c, issuer: issuer, role: role, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	p.loopCtx, p.stopLoop = context.WithCancel(ctx)
	cfg := c.cfg
	obs := observer{h: cfg.hooks, log: cfg.logger}
	panicked := func(v any, stack []byte) { obs.panicked(ctx, v, stack) }
	p.meta = &refresher[providerState]{
		load: p.loadMetadata, now: cfg.now, base: ctx, timeout: cfg.timeout,
		defaultTTL: cfg.metadataRefresh, forceLimit: cfg.keyRefreshLimit, panicked: panicked,
		doc: "metadata", obs: obs,
	}
	if p.needsKeys() || cfg.userinfo != nil {
		// With userinfo alone, the keys are fetched when a signed answer
		// first needs them, then refreshed (tick).
		p.keys = &refresher[jwk.Set]{
			load: p.loadKeys, now: cfg.now, base: ctx, timeout: cfg.timeout,
			defaultTTL: cfg.metadataRefresh, forceLimit: cfg.keyRefreshLimit, panicked: panicked,
			doc: "jwks", obs: obs,
		}
	}
	return p
}

// start runs the refresh loop. With eager set it first fetches everything
// and reports failure.
func (p *provider) start(eager bool) error {
	if eager {
		ctx, cancel := context.WithTimeout(p.ctx, 2*p.c.cfg.timeout)
		defer cancel()
		_, err := p.meta.refresh(ctx, false)
		if err == nil && p.keys != nil && p.needsKeys() {
			_, err = p.keys.refresh(ctx, false)
		}
		if err != nil {
			close(p.done) // no loop to wait for
			return err
		}
	}
	go p.loop()
	return nil
}

func (p *provider) close() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
	})
}

// retire stops the refresh loop of a provider that requests may still
// hold. Its fetches are not cancelled: those in progress end for their
// waiters, and a request still holding it fetches what it needs, each fetch
// bounded by the call timeout.
func (p *provider) retire() {
	p.stopLoop()
	<-p.done
}

// loop refreshes what is due: first right away, then after each copy's
// lifetime, or after the backoff while attempts fail.
func (p *provider) loop() {
	defer close(p.done)
	for {
		p.tick()
		wait := p.meta.wait()
		if p.keysInUse() {
			wait = min(wait, p.keys.wait())
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.loopCtx.Done():
			t.Stop()
			return
		}
	}
}

// keysInUse reports whether the background loop keeps the JWKS fresh: when
// signed answers or local JWT validation need it, or once a signed userinfo
// answer has fetched it.
func (p *provider) keysInUse() bool {
	return p.keys != nil && (p.needsKeys() || p.keys.current() != nil)
}

// tick refreshes each document that is due. Errors are kept by the
// refreshers and served to requests until a later attempt succeeds.
func (p *provider) tick() {
	if p.meta.due() {
		_, _ = p.meta.refresh(p.loopCtx, false)
	}
	if p.keysInUse() && p.keys.due() && p.meta.current() != nil {
		_, _ = p.keys.refresh(p.loopCtx, false)
	}
}

// state returns the current metadata, fetching it now (coalesced, subject to
// the backoff) if there has never been a good copy.
func (p *provider) state(ctx context.Context) (*providerState, error) {
	if st := p.meta.current(); st != nil {
		return st, nil
	}
	return p.meta.refresh(ctx, false)
}

// keySet returns the JWKS, fetching it if there is none yet, or, with force
// set (an unknown kid), fetching it again at most once per refresh limit.
func (p *provider) keySet(ctx context.Context, force bool) (jwk.Set, error) {
	if !force {
		if ks := p.keys.current(); ks != nil {
			return *ks, nil
		}
	}
	ks, err := p.keys.refresh(ctx, force)
	if ks == nil {
		return nil, err
	}
	return *ks, err
}

// loadMetadata fetches and checks the metadata.
func (p *provider) loadMetadata(ctx context.Context) (*providerState, time.Duration, error) {
	var errs []error
	for _, u := range metadataURLs(p.issuer) {
		data, maxAge, err := p.c.getDocument(ctx, u, "metadata "+redactURL(u), "application/json")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := p.newState(data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return st, maxAge, nil
	}
	return nil, 0, fmt.Errorf("%w: %w", ErrDiscovery, errors.Join(errs...))
}

// newState parses a metadata document and derives the client context.
func (p *provider) newState(data []byte) (*providerState, error) {
	meta, err := parseMetadata(data)
	if err != nil {
		return nil, err
	}
	cfg := p.c.cfg
	if meta.Issuer != p.issuer {
		// The server's value is not repeated: it is the server's text.
		return nil, fmt.Errorf("introspect: metadata issuer does not match the configured issuer %s%s", p.issuer, issuerMismatch(meta.Issuer, p.issuer))
	}
	issuerLoopback := false
	if u, err := url.Parse(p.issuer); err == nil {
		issuerLoopback = isLoopback(u.Hostname())
	}
	check := func(name, raw string, required bool) error {
		if raw == "" {
			if required {
				return fmt.Errorf("introspect: metadata has no %s", name)
			}
			return nil
		}
		// Plain http to loopback passes for an issuer on loopback only: an
		// issuer elsewhere must not point the library at this host's own
		// services (an http jwks_uri is fetched, an http introspection
		// endpoint gets tokens and credentials in clear).
		if checkEndpoint(raw, cfg.insecureHTTP) != nil {
			return fmt.Errorf("introspect: metadata %s: %s", name, endpointProblem(raw))
		}
		if u, _ := url.Parse(raw); u.Scheme == "http" && !cfg.insecureHTTP && !issuerLoopback {
			return fmt.Errorf("introspect: metadata %s: plain http to loopback from an issuer that is not on loopback (use InsecureAllowHTTP to allow it)", name)
		}
		return nil
	}
	// Only the issuer of WithIssuer must name its introspection endpoint
	// here; a client context's issuer must when the context names none.
	if err := errors.Join(
		check("introspection_endpoint", meta.IntrospectionEndpoint, p.role == rolePrimary && cfg.endpoint == "" && cfg.validation.introspects()),
		check("jwks_uri", meta.JWKSURI, p.needsKeys()),
		check("mtls_endpoint_aliases.introspection_endpoint", meta.MTLSIntrospectionEndpoint, false),
	); err != nil {
		return nil, err
	}
	// WithUserinfoEndpoint stands for WithIssuer's userinfo_endpoint only:
	// a client context's issuer's is used, so checked, whatever it says.
	if cfg.userinfo != nil && (cfg.userinfo.endpoint == "" || p.role != rolePrimary) {
		if err := check("userinfo_endpoint", meta.UserinfoEndpoint, false); err != nil {
			return nil, err
		}
	}
	st := &providerState{meta: *meta}
	if p.role != rolePrimary {
		// Client contexts bring their own credentials: resolve completes
		// them per request. The endpoint is parsed once here.
		st.cc = ClientContext{Issuer: p.issuer, Endpoint: meta.IntrospectionEndpoint}
		st.endpoint = parseEndpoint(meta.IntrospectionEndpoint)
	} else {
		cr := cfg.creds
		cr.AuthMethod = chooseAuthMethod(cr, p.c.hasCert(), meta.authMethodsSupported())
		st.cc = ClientContext{Issuer: p.issuer, Endpoint: cfg.endpoint, Credentials: cr}
		if st.cc.Endpoint == "" {
			st.cc.Endpoint = meta.IntrospectionEndpoint
			if cr.AuthMethod.isTLS() && meta.MTLSIntrospectionEndpoint != "" {
				st.cc.Endpoint = meta.MTLSIntrospectionEndpoint
			}
		}
		if st.endpoint = parseEndpoint(st.cc.Endpoint); st.endpoint == nil && cfg.validation.introspects() {
			return nil, fmt.Errorf("introspect: discovery: bad introspection endpoint")
		}
	}
	switch {
	case cfg.jwtResponse && cfg.jwtResponseAlgs != nil:
		st.algs = cfg.jwtResponseAlgs // replaces the server's list
	case cfg.jwtResponse:
		st.algs = signingAlgs(meta.IntrospectionSigningAlgValuesSupported)
		if len(st.algs) == 0 {
			return nil, errors.New("introspect: metadata lists no acceptable introspection_signing_alg_values_supported (none and HMAC are refused)")
		}
	}
	return st, nil
}

// issuerMismatch describes how got, the issuer of the metadata, differs from
// want, the configured one, when the difference is a common slip; else "".
// It never repeats got.
func issuerMismatch(got, want string) string {
	switch {
	case strings.TrimSuffix(got, "/") == strings.TrimSuffix(want, "/"):
		return " (they differ by a trailing slash)"
	case strings.EqualFold(got, want):
		return " (they differ in letter case)"
	}
	return ""
}

// endpointProblem says why checkEndpoint refuses raw, a URL of the
// metadata, in the same order and words but without the URL, which is the
// server's text.
func endpointProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "not an absolute URL"
	case u.User != nil:
		return "URL must not contain credentials"
	case u.Fragment != "":
		return "URL must not contain a fragment"
	case u.Scheme == "http":
		return "not https (use InsecureAllowHTTP to allow it)"
	}
	return "scheme must be https"
}

// parseMetadata decodes the members the library uses, matching names
// exactly. Unknown members, OpenID ones included, are ignored.
func parseMetadata(data []byte) (*ProviderMetadata, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: metadata is not a JSON object", ErrMalformedResponse)
	}
	md := &ProviderMetadata{}
	var err error
	str := func(mm map[string]json.RawMessage, name string, dst *string) {
		if err == nil {
			err = decodeString(mm, name, dst)
		}
	}
	list := func(name string, dst *[]string) {
		raw, ok := m[name]
		if err != nil || !ok || isNull(raw) {
			return
		}
		if json.Unmarshal(raw, dst) != nil {
			err = fmt.Errorf("%w: metadata %q is not an array of strings", ErrMalformedResponse, name)
		}
		if *dst == nil {
			*dst = []string{}
		}
	}
	str(m, "issuer", &md.Issuer)
	str(m, "introspection_endpoint", &md.IntrospectionEndpoint)
	str(m, "token_endpoint", &md.TokenEndpoint)
	str(m, "jwks_uri", &md.JWKSURI)
	str(m, "userinfo_endpoint", &md.UserinfoEndpoint)
	list("introspection_endpoint_auth_methods_supported", &md.IntrospectionEndpointAuthMethodsSupported)
	list("token_endpoint_auth_methods_supported", &md.TokenEndpointAuthMethodsSupported)
	list("introspection_signing_alg_values_supported", &md.IntrospectionSigningAlgValuesSupported)
	list("introspection_encryption_alg_values_supported", &md.IntrospectionEncryptionAlgValuesSupported)
	if raw, ok := m["mtls_endpoint_aliases"]; ok && err == nil && !isNull(raw) {
		var aliases map[string]json.RawMessage
		if json.Unmarshal(raw, &aliases) != nil {
			err = fmt.Errorf("%w: metadata \"mtls_endpoint_aliases\" is not an object", ErrMalformedResponse)
		} else {
			str(aliases, "introspection_endpoint", &md.MTLSIntrospectionEndpoint)
		}
	}
	if err != nil {
		return nil, err
	}
	if md.Issuer == "" {
		return nil, errors.New("introspect: metadata has no issuer")
	}
	return md, nil
}

// loadKeys fetches the JWKS named by the current metadata.
func (p *provider) loadKeys(ctx context.Context) (*jwk.Set, time.Duration, error) {
	st := p.meta.current()
	if st == nil {
		var err error
		if st, err = p.meta.refresh(ctx, false); err != nil {
			return nil, 0, err
		}
	}
	if st.meta.JWKSURI == "" {
		return nil, 0, fmt.Errorf("%w: metadata has no jwks_uri", ErrDiscovery)
	}
	data, maxAge, err := p.c.getDocument(ctx, st.meta.JWKSURI, "jwks_uri", "application/jwk-set+json, application/json")
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	set, err := parseKeys(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: jwks_uri: %w", ErrDiscovery, err)
	}
	return &set, maxAge, nil
}

// parseKeys reads a JWKS, keeping the public signature keys.
func parseKeys(data []byte) (jwk.Set, error) {
	var probe struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil || probe.Keys == nil {
		return nil, fmt.Errorf("%w: not a JWK set", ErrMalformedResponse)
	}
	if len(probe.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%w: JWK set holds more than %d keys", ErrMalformedResponse, maxJWKSKeys)
	}
	set := jwk.NewSet()
	for _, raw := range probe.Keys {
		k, err := jwk.ParseKey(raw)
		if err != nil {
			continue // a key of a type we cannot use is no reason to refuse the others
		}
		if u, _ := k.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
			continue
		}
		if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
			continue // never verify with (or keep) a private key a server leaked
		}
		if err := set.AddKey(k); err != nil {
			continue
		}
	}
	return set, nil
}

// getDocument GETs a discovery or JWKS document: no redirects, bounded by
// the configured size, status 200 required. name is how errors name the
// document: its URL when the user's configuration gave it (without user
// info or query), the metadata member otherwise, since a URL the server
// chose is the server's text. It returns the max-age of the answer's
// Cache-Control, 0 if none.
func (c *Client) getDocument(ctx context.Context, u, name, accept string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("introspect: fetching %s: bad URL", name)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("introspect: fetching %s: %w", name, exchangeFailure(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("introspect: fetching %s: status %d", name, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.HasSuffix(mt, "json") {
			return nil, 0, fmt.Errorf("%w: %s: content type is not JSON", ErrMalformedResponse, name)
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.maxBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("introspect: reading %s: %w", name, exchangeFailure(ctx, err))
	}
	if int64(len(data)) > c.cfg.maxBody {
		return nil, 0, fmt.Errorf("%w: %s", ErrResponseTooLarge, name)
	}
	return data, maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge reads max-age from a Cache-Control value; no-store and no-cache
// mean 0 (use the default).
func maxAge(cc string) time.Duration {
	var age time.Duration
	for _, d := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err == nil && n > 0 {
				age = time.Duration(min(n, int64(maxMetadataRefresh/time.Second))) * time.Second
			}
		}
	}
	return age
}

// refresher keeps the last good copy of a remote document: an atomic load
// for readers, one fetch at a time for writers, backoff after failures.
type refresher[T any] struct {
	load       func(ctx context.Context) (*T, time.Duration, error)
	now        func() time.Time
	base       context.Context // ends with the client
	timeout    time.Duration
	defaultTTL time.Duration
	forceLimit time.Duration // least time between forced refreshes
	// panicked reports a panic recovered in load (a callback of the HTTP
	// client's transport, say).
	panicked func(v any, stack []byte)
	// doc names the document to the hooks ("metadata" or "jwks"), which obs
	// calls.
	doc string
	obs observer

	cur atomic.Pointer[T]

	mu       sync.Mutex // guards call, next, retryAt, failures, lastErr, fetched
	call     *refreshCall
	next     time.Time // when the current copy is due for a refresh
	retryAt  time.Time // no attempt before this, after a failure
	failures int
	lastErr  error
	fetched  time.Time // when the current copy was fetched
}

type refreshCall struct {
	done chan struct{}
	err  error
}

var errRefreshLimited = errors.New("introspect: refresh attempted too recently")

// errFetchPanicked is the error of a fetch during which a callback panicked.
var errFetchPanicked = fmt.Errorf("%w: a callback panicked during a fetch", ErrDiscovery)

func (r *refresher[T]) current() *T { return r.cur.Load() }

// due reports whether a refresh should be attempted now.
func (r *refresher[T]) due() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.failures > 0 {
		return !now.Before(r.retryAt)
	}
	return r.cur.Load() == nil || !now.Before(r.next)
}

// wait is the time until the next attempt, at least a second.
func (r *refresher[T]) wait() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.next
	if r.failures > 0 || r.cur.Load() == nil {
		at = r.retryAt
	}
	return max(at.Sub(r.now()), time.Second)
}

// refresh fetches the document, or joins the fetch in progress. While a
// failure's backoff runs it returns the last good copy with the last error
// at once. A forced refresh (an unknown key ID) happens at most once per
// forceLimit. The fetch runs on the refresher's own context and timeout, so
// a waiter's cancellation never fails the others.
func (r *refresher[T]) refresh(ctx context.Context, force bool) (*T, error) {
	r.mu.Lock()
	call := r.call
	if call == nil {
		now := r.now()
		switch {
		case r.failures > 0 && now.Before(r.retryAt):
			err := r.lastErr
			r.mu.Unlock()
			return r.cur.Load(), err
		case force && !r.fetched.IsZero() && now.Sub(r.fetched) < r.forceLimit:
			r.mu.Unlock()
			return r.cur.Load(), errRefreshLimited
		case !force && r.failures == 0 && r.cur.Load() != nil && now.Before(r.next):
			// A fetch that ended since the caller looked (the loop's, a
			// request's) left a fresh copy: no second fetch.
			cur := r.cur.Load()
			r.mu.Unlock()
			return cur, nil
		}
		call = &refreshCall{done: make(chan struct{})}
		r.call = call
		go r.run(call)
	}
	r.mu.Unlock()
	select {
	case <-call.done:
		return r.cur.Load(), call.err
	case <-ctx.Done():
		return r.cur.Load(), fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// failure is the refresher's failure state: consecutive failures, the time
// before which no attempt is made, the last error. n is 0 after a success.
type failure struct {
	n       int
	retryAt time.Time
	err     error
}

func (r *refresher[T]) failure() failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return failure{n: r.failures, retryAt: r.retryAt, err: r.lastErr}
}

// seed sets the failure state of a refresher that has not fetched yet, so
// that a provider made anew for an issuer keeps the backoff of the one it
// replaces.
func (r *refresher[T]) seed(f failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures, r.retryAt, r.lastErr = f.n, f.retryAt, f.err
}

func (r *refresher[T]) run(call *refreshCall) {
	ctx, end := r.base, noEnd
	r.hook(func() { ctx, end = r.obs.startSpan(ctx, SpanInfo{Op: r.doc}) })
	start := time.Now()
	v, age, err := r.loadRecovered(ctx)
	r.hook(func() {
		r.obs.discoveryDone(ctx, DiscoveryInfo{Document: r.doc, Duration: time.Since(start), Err: err})
	})
	r.hook(func() { end(err) })
	r.mu.Lock()
	now := r.now()
	if err != nil {
		r.failures++
		r.lastErr = err
		limit := maxBackoff
		if r.cur.Load() == nil {
			limit = maxFirstBackoff
		}
		r.retryAt = now.Add(backoff(r.failures, limit))
	} else {
		r.cur.Store(v)
		r.failures, r.lastErr = 0, nil
		r.fetched = now
		if age <= 0 {
			age = r.defaultTTL
		}
		r.next = now.Add(max(age, minMetadataRefresh))
	}
	call.err = err
	r.call = nil
	r.mu.Unlock()
	close(call.done)
}

// hook runs f, which calls hooks, on the refresher's goroutine, where
// nothing else would recover a panic: a panic in f is recovered and
// reported.
func (r *refresher[T]) hook(f func()) {
	defer func() {
		if p := recover(); p != nil && r.panicked != nil {
			r.panicked(p, debug.Stack())
		}
	}()
	f()
}

// loadRecovered runs load on ctx under the timeout. It runs at the top of a
// goroutine of its own: a panic in it is recovered, reported and made a
// failed fetch.
func (r *refresher[T]) loadRecovered(ctx context.Context) (v *T, age time.Duration, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, age, err = nil, 0, errFetchPanicked
			if r.panicked != nil {
				r.panicked(p, debug.Stack())
			}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.load(ctx)
}

// backoff is the wait after n consecutive failures: 1 s doubling up to
// limit, with up to 10 % jitter so a fleet does not retry in step.
func backoff(n int, limit time.Duration) time.Duration {
	d := limit
	if n < 20 {
		d = min(time.Second<<(n-1), limit)
	}
	return d + rand.N(d/10+1)
}

// hasCert reports whether a client certificate is on the transport.
func (c *Client) hasCert() bool { return c.cfg.clientCert != nil }

// Metadata returns the last good copy of the authorization server's
// metadata, and false when the client does not use discovery or discovery
// has not succeeded yet. The value is shared: treat it as read-only.
func (c *Client) Metadata() (*ProviderMetadata, bool) {
	if c.prov == nil {
		return nil, false
	}
	st := c.prov.meta.current()
	if st == nil {
		return nil, false
	}
	return &st.meta, true
}
