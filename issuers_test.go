package introspect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// tenants routes /a/... to the first issuer and /b/... to the second (and
// so on by letter), each a ClientContext naming the issuer only: endpoint,
// method and keys come from its discovery. A path of no tenant is a 400.
func tenants(issuers ...string) introspect.ClientStore {
	return introspect.ClientStoreFunc(func(r *http.Request) (introspect.ClientContext, error) {
		seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(seg) == 1 && seg[0] >= 'a' && int(seg[0]-'a') < len(issuers) {
			return introspect.ClientContext{
				Issuer:      issuers[seg[0]-'a'],
				Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret},
			}, nil
		}
		return introspect.ClientContext{}, introspect.ErrInvalidRequest
	})
}

// hookErrors records the errors of the introspection calls.
type hookErrors struct {
	mu   sync.Mutex
	errs []error
}

func (h *hookErrors) hooks() *introspect.Hooks {
	return &introspect.Hooks{IntrospectDone: func(_ context.Context, info introspect.IntrospectDoneInfo) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.errs = append(h.errs, info.Err)
	}}
}

func (h *hookErrors) last() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil
	}
	return h.errs[len(h.errs)-1]
}

// serveAt sends a request for path with a bearer token through mw to a
// handler that writes the verdict's source, subject and issuer.
func serveAt(mw *introspect.Middleware, path, token string) *httptest.ResponseRecorder {
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		_, _ = w.Write([]byte(ti.Source.String() + " " + ti.Subject + " " + ti.Issuer))
	}))
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func tenantMW(t *testing.T, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	mw, err := introspect.New(append([]introspect.Option{introspect.WithTimeout(2 * time.Second)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

func withLRU(t *testing.T) introspect.Option { return introspect.WithCache(newLRU(t, 100)) }

// One middleware accepts the JWTs of WithIssuer and WithJWTIssuers, each
// verified with its own issuer's keys, fetched once per issuer; a JWT of
// another issuer is introspected (hybrid) and a JWT claiming one issuer but
// signed by another's key is refused.
func TestSeveralJWTIssuers(t *testing.T) {
	as1, as2, as3 := discoAS(t), discoAS(t), discoAS(t)
	clk := newFakeClock()
	mw := tenantMW(t,
		introspect.WithClock(clk.Now),
		introspect.WithIssuer(as1.Issuer),
		introspect.WithJWTIssuers(as2.Issuer),
		introspect.WithValidation(introspect.ValidateHybrid),
		introspect.WithJWTAudience(jwtResource),
		introspect.WithClientCredentials(discoClientID, discoSecret),
		withLRU(t),
	)
	claims := func(sub string) introspecttest.Claims {
		return introspecttest.Claims{Subject: sub, ClientID: "app", Scope: "api", Audience: []string{jwtResource}}
	}

	rec := serveAt(mw, "/api", as1.IssueJWT(claims("alice")))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "jwt alice "+as1.Issuer, rec.Body.String())
	rec = serveAt(mw, "/api", as2.IssueJWT(claims("bob")))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "jwt bob "+as2.Issuer, rec.Body.String())
	assert.Zero(t, as1.Calls()+as2.Calls(), "JWTs of configured issuers cost no introspection")
	assert.Equal(t, int64(1), as1.JWKSCalls())
	assert.Equal(t, int64(1), as2.JWKSCalls())

	// Not a configured issuer: the authorization server of the context
	// (WithIssuer's) decides, and does not know the token.
	rec = serveAt(mw, "/api", as3.IssueJWT(claims("carol")))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, int64(1), as1.Calls())
	assert.Zero(t, as3.JWKSCalls()+as3.DiscoveryCalls(), "an issuer nobody configured is never contacted")

	// Past the least time between two refreshes for an unknown kid.
	clk.Advance(31 * time.Second)

	// A token of as2's key claiming as1: routed to as1's keys, refused,
	// with no call.
	forged := as2.IssueJWT(introspecttest.Claims{Subject: "mallory", Issuer: as1.Issuer, Audience: []string{jwtResource}})
	ti, err := mw.Verify(context.Background(), forged)
	require.Error(t, err)
	assert.Nil(t, ti)
	var jerr *introspect.JWTError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, "no key of the issuer matches its kid", jerr.Reason)
	assert.Equal(t, int64(1), as1.Calls())

	// as2 rotates its key: its new tokens are accepted after one refresh
	// of its keys only.
	as2.RotateSigningKey()
	rec = serveAt(mw, "/api", as2.IssueJWT(claims("dave")))
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, int64(2), as2.JWKSCalls())
	assert.Equal(t, int64(2), as1.JWKSCalls(), "the forged kid refreshed as1's keys once")
}

// Without WithIssuer, ValidateJWT accepts the tokens of WithJWTIssuers'
// issuers only.
func TestJWTIssuersOnly(t *testing.T) {
	as1, as2, as3 := discoAS(t), discoAS(t), discoAS(t)
	v, err := introspect.NewJWTValidator(introspect.WithJWTIssuers(as1.Issuer, as2.Issuer), introspect.WithJWTAudience(jwtResource))
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	assert.Contains(t, fmt.Sprint(v), `jwt_issuers: "`+as1.Issuer+","+as2.Issuer+`"`)
	for _, as := range []*introspecttest.Server{as1, as2} {
		ti, err := v.Validate(context.Background(), as.IssueJWT(introspecttest.Claims{Subject: "s", Audience: []string{jwtResource}}))
		require.NoError(t, err)
		assert.Equal(t, as.Issuer, ti.Issuer)
	}
	_, err = v.Validate(context.Background(), as3.IssueJWT(introspecttest.Claims{Subject: "s", Audience: []string{jwtResource}}))
	var jerr *introspect.JWTError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, "iss is not an accepted issuer", jerr.Reason)
	assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
}

// Each tenant's ClientContext names its issuer: endpoint and method come
// from that issuer's discovery, made once; verdicts are cached per tenant; a
// tenant's token is unknown at another tenant; an answer naming another
// issuer is refused; one tenant's outage leaves the other serving.
func TestClientContextIssuers(t *testing.T) {
	asA := discoAS(t)
	asB := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) {
		m["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
	}))
	var he hookErrors
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), withLRU(t), introspect.WithHooks(he.hooks()))

	tokA := asA.Issue(introspecttest.Claims{Subject: "alice", Scope: "api"})
	tokB := asB.Issue(introspecttest.Claims{Subject: "bob", Scope: "api"})
	for range 2 {
		rec := serveAt(mw, "/a/x", tokA)
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "introspection alice "+asA.Issuer, rec.Body.String())
	}
	assert.Equal(t, int64(1), asA.Calls(), "the second request is served from the cache")
	assert.Equal(t, "client_secret_basic", asA.LastRequest().AuthMethod)

	rec := serveAt(mw, "/b/x", tokB)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "client_secret_post", asB.LastRequest().AuthMethod, "the method comes from the tenant's issuer's metadata")

	rec = serveAt(mw, "/b/x", tokA)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "tenant a's token is unknown to tenant b's server")
	assert.Equal(t, int64(1), asA.Calls())
	assert.Equal(t, int64(1), asA.DiscoveryCalls())
	assert.Equal(t, int64(1), asB.DiscoveryCalls())

	// asB vouches for a token naming asA as its issuer: refused.
	mixed := asB.Issue(introspecttest.Claims{Subject: "eve", Issuer: asA.Issuer})
	ti, err := mw.VerifyAs(context.Background(), introspect.ClientContext{Issuer: asB.Issuer,
		Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}, mixed)
	require.ErrorIs(t, err, introspect.ErrIssuerMismatch)
	assert.Equal(t, asA.Issuer, ti.Issuer)
	assert.Equal(t, http.StatusUnauthorized, serveAt(mw, "/b/x", mixed).Code)

	// Evict on a context naming only the issuer removes the cached verdict.
	require.NoError(t, mw.EvictAs(context.Background(), introspect.ClientContext{Issuer: asA.Issuer,
		Credentials: introspect.Credentials{ClientID: discoClientID}}, tokA))
	assert.Equal(t, http.StatusOK, serveAt(mw, "/a/x", tokA).Code)
	assert.Equal(t, int64(2), asA.Calls(), "evicted, asked again")

	// A path of no tenant: the store's 400.
	assert.Equal(t, http.StatusBadRequest, serveAt(mw, "/z/x", tokA).Code)
	assert.NoError(t, he.last())
}

// A tenant whose issuer is down answers 503 while the others serve; the
// failure reaches the hooks as a discovery error.
func TestClientContextIssuerOutage(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	asA.SetDiscoveryFault(introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"))
	var he hookErrors
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), withLRU(t), introspect.WithHooks(he.hooks()))

	rec := serveAt(mw, "/a/x", asA.Issue(introspecttest.Claims{Subject: "alice"}))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.ErrorIs(t, he.last(), introspect.ErrDiscovery)
	assert.Zero(t, asA.Calls())

	rec = serveAt(mw, "/b/x", asB.Issue(introspecttest.Claims{Subject: "bob"}))
	assert.Equal(t, http.StatusOK, rec.Code)
}

// The issuers a store names are checked like WithIssuer's; a metadata
// document naming another issuer is refused (mix-up): 503, and the server
// it points at is never asked about a token.
func TestClientContextIssuerRefused(t *testing.T) {
	asA := discoAS(t)
	asC := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["issuer"] = asA.Issuer }))
	tests := []struct {
		name, issuer, want string
	}{
		{"not https", "http://as.example", "https"},
		{"query", "https://as.example/?tenant=1", "query"},
		{"mix-up", asC.Issuer, "metadata issuer does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var he hookErrors
			mw := tenantMW(t, introspect.WithClientStore(tenants(tt.issuer)), introspect.WithHooks(he.hooks()))
			tok := asA.Issue(introspecttest.Claims{Subject: "alice"})
			rec := serveAt(mw, "/a/x", tok)
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			err := he.last()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), tok)
			assert.Zero(t, asC.Calls()+asA.Calls())
		})
	}
}

// Signed answers (RFC 9701) per tenant: each tenant's answers are verified
// with its own issuer's keys and must name its issuer.
func TestClientContextIssuersSignedAnswers(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), introspect.WithJWTResponse())
	for _, tc := range []struct {
		path string
		as   *introspecttest.Server
	}{{"/a/x", asA}, {"/b/x", asB}} {
		rec := serveAt(mw, tc.path, tc.as.Issue(introspecttest.Claims{Subject: "alice"}))
		assert.Equal(t, http.StatusOK, rec.Code, tc.path)
		assert.Equal(t, int64(1), tc.as.JWKSCalls(), tc.path)
	}

	// asB's answers signed with a key of its own that is not in its JWKS
	// (as a key of another tenant's server would be): refused, 503.
	asB.SetSignedAnswerHook(func(a *introspecttest.SignedAnswer) { a.Header["kid"] = "not-ours" })
	rec := serveAt(mw, "/b/x", asB.Issue(introspecttest.Claims{Subject: "mallory"}))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)

	// A context naming no issuer cannot have its answers verified.
	mw2 := tenantMW(t, introspect.WithClientStore(introspect.StaticClientStore{Endpoint: asA.IntrospectionURL(),
		Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}), introspect.WithJWTResponse())
	_, err := mw2.Verify(context.Background(), "x")
	require.Error(t, err) // Verify refuses a store; VerifyAs goes through
	_, err = mw2.VerifyAs(context.Background(), introspect.ClientContext{Endpoint: asA.IntrospectionURL(),
		Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}, asA.Issue(introspecttest.Claims{Subject: "a"}))
	require.ErrorIs(t, err, introspect.ErrClientConfig)
	assert.Contains(t, err.Error(), "names no issuer")
}

// Past WithMaxIssuers, the least recently used issuer is dropped and
// discovered again when named.
func TestMaxIssuers(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), introspect.WithMaxIssuers(1))
	for _, path := range []string{"/a/x", "/a/y", "/b/x", "/a/z"} {
		as := asA
		if path[1] == 'b' {
			as = asB
		}
		assert.Equal(t, http.StatusOK, serveAt(mw, path, as.Issue(introspecttest.Claims{Subject: "s"})).Code, path)
	}
	assert.Equal(t, int64(2), asA.DiscoveryCalls(), "dropped for b, discovered again")
	assert.Equal(t, int64(1), asB.DiscoveryCalls())
}

// A request accepts the JWTs of its context's issuer: tenant a's JWT is
// validated locally on tenant a's routes and, in hybrid mode, introspected
// (and refused) on tenant b's. In jwt+introspect mode the token must be of
// the context's issuer.
func TestClientContextIssuerJWTs(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	store := tenants(asA.Issuer, asB.Issuer)
	claims := introspecttest.Claims{Subject: "alice", Audience: []string{jwtResource}}

	hybrid := tenantMW(t, introspect.WithClientStore(store), introspect.WithValidation(introspect.ValidateHybrid),
		introspect.WithJWTAudience(jwtResource), withLRU(t))
	tokA := asA.IssueJWT(claims)
	rec := serveAt(hybrid, "/a/x", tokA)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "jwt alice "+asA.Issuer, rec.Body.String())
	assert.Zero(t, asA.Calls())
	assert.Equal(t, http.StatusUnauthorized, serveAt(hybrid, "/b/x", tokA).Code)
	assert.Equal(t, int64(1), asB.Calls(), "not b's JWT: introspected at b, which does not know it")

	jwtOnly := tenantMW(t, introspect.WithClientStore(store), introspect.WithValidation(introspect.ValidateJWT),
		introspect.WithJWTAudience(jwtResource))
	assert.Equal(t, http.StatusOK, serveAt(jwtOnly, "/a/x", tokA).Code)
	assert.Equal(t, http.StatusUnauthorized, serveAt(jwtOnly, "/b/x", tokA).Code)

	both := tenantMW(t, introspect.WithClientStore(store),
		introspect.WithValidation(introspect.ValidateJWTAndIntrospect), introspect.WithJWTAudience(jwtResource), withLRU(t))
	rec = serveAt(both, "/a/x", tokA)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "jwt+introspection alice "+asA.Issuer, rec.Body.String())
	assert.Equal(t, int64(1), asA.Calls())
	_, err := both.VerifyAs(context.Background(), introspect.ClientContext{Issuer: asA.Issuer,
		Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}, asB.IssueJWT(claims))
	var jerr *introspect.JWTError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, "iss is not an accepted issuer", jerr.Reason, "b's JWT on a's context")
	assert.Equal(t, int64(1), asB.Calls(), "no call for b's JWT: it is refused before introspection")
	assert.Equal(t, int64(1), asA.Calls())
}

// Userinfo comes from the endpoint of the tenant's issuer, signed answers
// verified with that issuer's keys.
func TestClientContextIssuerUserinfo(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	asB.SetSignedUserinfo(true, nil)
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), introspect.WithUserinfo(), withLRU(t))
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		var name string
		if ok, err := ti.UserinfoClaim("name", &name); !ok || err != nil {
			http.Error(w, "no name", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(name))
	}))
	for _, tc := range []struct {
		path string
		as   *introspecttest.Server
	}{{"/a/x", asA}, {"/b/x", asB}} {
		tok := tc.as.Issue(introspecttest.Claims{Subject: "alice", Extra: map[string]any{"name": "Alice " + tc.path}})
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusOK, rec.Code, tc.path+": "+rec.Body.String())
		assert.Equal(t, int64(1), tc.as.UserinfoCalls(), tc.path)
	}
	assert.Positive(t, asB.JWKSCalls(), "b's signed userinfo was verified with b's keys")
}

// A request that comes before the first discovery has ended waits for it
// and caches its verdict under the discovered endpoint's key: the next
// request for the token is a cache hit, and Evict removes the entry.
func TestVerdictBeforeFirstDiscoveryIsCached(t *testing.T) {
	as := discoAS(t)
	release := make(chan struct{})
	as.SetDiscoveryFault(introspecttest.Block(release))
	mw := tenantMW(t, introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(discoClientID, discoSecret), withLRU(t))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})

	done := make(chan int)
	go func() { done <- serveAt(mw, "/api", tok).Code }()
	for as.DiscoveryCalls() == 0 {
		time.Sleep(time.Millisecond) // until the discovery is held
	}
	close(release)
	require.Equal(t, http.StatusOK, <-done)
	require.Equal(t, http.StatusOK, serveAt(mw, "/api", tok).Code)
	assert.Equal(t, int64(1), as.Calls(), "the second request is a cache hit")

	require.NoError(t, mw.Evict(context.Background(), tok))
	require.Equal(t, http.StatusOK, serveAt(mw, "/api", tok).Code)
	assert.Equal(t, int64(2), as.Calls(), "evicted, asked again")
}

// A verdict fetched for a context whose issuer could not be discovered when
// its key was to be made is not cached: another tenant whose discovery
// fails is never served it.
func TestUndiscoveredIssuerNotCached(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	down := introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down")
	asA.SetDiscoveryFault(down)
	asB.SetDiscoveryFault(down)
	clk := newFakeClock()
	lru, err := introspect.NewLRUCache(100)
	require.NoError(t, err)
	var he hookErrors
	hooks := he.hooks()
	var once sync.Once
	// a's discovery fails when the key would be made; by the time the call
	// resolves the context again, a's server is up and its backoff over.
	hooks.IntrospectStart = func(context.Context, string) {
		once.Do(func() { asA.SetDiscoveryFault(introspecttest.Fault{}); clk.Advance(10 * time.Second) })
	}
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), introspect.WithCache(lru),
		introspect.WithClock(clk.Now), introspect.WithHooks(hooks))

	tok := asA.Issue(introspecttest.Claims{Subject: "alice"})
	assert.Equal(t, http.StatusOK, serveAt(mw, "/a/x", tok).Code, "answered, uncached")
	active, negative := lru.Len()
	assert.Zero(t, active+negative, "no key without the endpoint")

	rec := serveAt(mw, "/b/x", tok)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "b cannot be discovered: no verdict, none of a's")
	assert.ErrorIs(t, he.last(), introspect.ErrDiscovery)
	assert.Zero(t, asB.Calls())

	assert.Equal(t, http.StatusOK, serveAt(mw, "/a/x", tok).Code)
	active, negative = lru.Len()
	assert.Equal(t, 1, active+negative, "a discovered: cached under its endpoint")
}

// EvictAs fails, rather than pretending, when the context's issuer cannot
// be discovered; once it can, the entry goes.
func TestEvictAsUndiscoveredIssuer(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	clk := newFakeClock()
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), withLRU(t),
		introspect.WithMaxIssuers(1), introspect.WithClock(clk.Now))
	tokA := asA.Issue(introspecttest.Claims{Subject: "alice"})
	require.Equal(t, http.StatusOK, serveAt(mw, "/a/x", tokA).Code)
	require.Equal(t, http.StatusOK, serveAt(mw, "/b/x", asB.Issue(introspecttest.Claims{Subject: "bob"})).Code) // drops a

	asA.SetDiscoveryFault(introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"))
	cc := introspect.ClientContext{Issuer: asA.Issuer, Credentials: introspect.Credentials{ClientID: discoClientID}}
	err := mw.EvictAs(context.Background(), cc, tokA)
	require.ErrorIs(t, err, introspect.ErrDiscovery)

	asA.SetDiscoveryFault(introspecttest.Fault{})
	clk.Advance(10 * time.Second) // past the backoff
	require.NoError(t, mw.EvictAs(context.Background(), cc, tokA))
	require.Equal(t, http.StatusOK, serveAt(mw, "/a/x", tokA).Code)
	assert.Equal(t, int64(2), asA.Calls(), "evicted: asked again")
}

// With WithIssuer and a store, a context naming its own endpoint is not
// WithIssuer's: its tokens are never sent to that issuer's userinfo
// endpoint, and its JWTs are not that issuer's either.
func TestEndpointContextIsNotWithIssuers(t *testing.T) {
	primary, tenant := discoAS(t), discoAS(t)
	store := introspect.StaticClientStore{Endpoint: tenant.IntrospectionURL(),
		Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}
	var he hookErrors
	mw := tenantMW(t, introspect.WithIssuer(primary.Issuer), introspect.WithClientStore(store), introspect.WithUserinfo(),
		introspect.WithHooks(he.hooks()))
	rec := serveAt(mw, "/x", tenant.Issue(introspecttest.Claims{Subject: "tina"}))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "no userinfo endpoint for this context")
	assert.Zero(t, primary.UserinfoCalls()+tenant.UserinfoCalls())
	assert.Equal(t, int64(1), tenant.Calls())

	hybrid := tenantMW(t, introspect.WithIssuer(primary.Issuer), introspect.WithClientStore(store),
		introspect.WithValidation(introspect.ValidateHybrid), introspect.WithJWTAudience(jwtResource))
	rec = serveAt(hybrid, "/x", primary.IssueJWT(introspecttest.Claims{Subject: "p", Audience: []string{jwtResource}}))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "introspected at the tenant's endpoint, which does not know it")
	assert.Equal(t, int64(2), tenant.Calls())
}

// A context naming its issuer accepts that issuer's JWTs and those of
// WithJWTIssuers, not WithIssuer's.
func TestContextIssuerIsolation(t *testing.T) {
	asP, asA, asG := discoAS(t), discoAS(t), discoAS(t)
	mw := tenantMW(t, introspect.WithIssuer(asP.Issuer), introspect.WithJWTIssuers(asG.Issuer),
		introspect.WithClientStore(tenants(asA.Issuer)), introspect.WithValidation(introspect.ValidateJWT),
		introspect.WithJWTAudience(jwtResource))
	claims := introspecttest.Claims{Subject: "s", Audience: []string{jwtResource}}
	assert.Equal(t, http.StatusOK, serveAt(mw, "/a/x", asA.IssueJWT(claims)).Code)
	assert.Equal(t, http.StatusOK, serveAt(mw, "/a/x", asG.IssueJWT(claims)).Code, "WithJWTIssuers: every route")
	assert.Equal(t, http.StatusUnauthorized, serveAt(mw, "/a/x", asP.IssueJWT(claims)).Code, "WithIssuer's is not tenant a's")
	_, err := mw.VerifyAs(context.Background(), introspect.ClientContext{Issuer: asA.Issuer}, asP.IssueJWT(claims))
	var jerr *introspect.JWTError
	require.ErrorAs(t, err, &jerr)
	assert.Equal(t, "iss is not an accepted issuer", jerr.Reason)
}

// WithJWTIssuers is refused in jwt+introspect mode, WithUserinfoEndpoint
// with WithJWTIssuers.
func TestJWTIssuersRefusedCombinations(t *testing.T) {
	_, err := introspect.New(introspect.WithIssuer("https://as.example"), introspect.WithJWTIssuers("https://other.example"),
		introspect.WithValidation(introspect.ValidateJWTAndIntrospect), introspect.WithJWTAudience(jwtResource),
		introspect.WithClientCredentials("a", "b"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithJWTIssuers does not apply to WithValidation(jwt+introspect)")

	_, err = introspect.New(introspect.WithIssuer("https://as.example"), introspect.WithJWTIssuers("https://other.example"),
		introspect.WithValidation(introspect.ValidateHybrid), introspect.WithJWTAudience(jwtResource),
		introspect.WithClientCredentials("a", "b"), introspect.WithUserinfo(), introspect.WithUserinfoEndpoint("https://as.example/me"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithUserinfoEndpoint names one endpoint for every token")
}

// WithIssuer's issuer listed in WithJWTIssuers too is accepted on every
// route, a tenant's naming another issuer included.
func TestJWTIssuersListWithIssuers(t *testing.T) {
	as1, as2 := discoAS(t), discoAS(t)
	mw := tenantMW(t,
		introspect.WithIssuer(as1.Issuer),
		introspect.WithJWTIssuers(as1.Issuer),
		introspect.WithClientStore(tenants(as2.Issuer)),
		introspect.WithValidation(introspect.ValidateJWT),
		introspect.WithJWTAudience(jwtResource),
	)
	claims := introspecttest.Claims{Subject: "alice", Audience: []string{jwtResource}}
	rec := serveAt(mw, "/a/x", as1.IssueJWT(claims))
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "jwt alice "+as1.Issuer, rec.Body.String())
	rec = serveAt(mw, "/a/x", as2.IssueJWT(claims))
	assert.Equal(t, http.StatusOK, rec.Code, "the tenant's own issuer")
	require.NoError(t, mw.Close())
}

// Requests cycling through more issuers than WithMaxIssuers: a failing
// issuer keeps its backoff across its providers (one discovery attempt, the
// clock standing still), and concurrent requests of valid tokens all pass
// while providers are dropped under them.
func TestMaxIssuersThrash(t *testing.T) {
	asA, asB := discoAS(t), discoAS(t)
	asA.SetDiscoveryFault(introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"))
	clk := newFakeClock()
	mw := tenantMW(t, introspect.WithClientStore(tenants(asA.Issuer, asB.Issuer)), introspect.WithMaxIssuers(1),
		introspect.WithClock(clk.Now))
	assert.Equal(t, http.StatusServiceUnavailable, serveAt(mw, "/a/x", "t").Code)
	first := asA.DiscoveryCalls() // one attempt: the RFC 8414 and the OpenID locations
	require.Positive(t, first)
	for range 20 {
		assert.Equal(t, http.StatusUnauthorized, serveAt(mw, "/b/x", "t").Code)
		assert.Equal(t, http.StatusServiceUnavailable, serveAt(mw, "/a/x", "t").Code)
	}
	assert.Equal(t, first, asA.DiscoveryCalls(), "the down issuer is not asked again within its backoff")

	// The same for an issuer whose keys fail (its metadata does not).
	asK, asL := discoAS(t), discoAS(t)
	asK.SetJWKSFault(introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"))
	mw = tenantMW(t, introspect.WithClientStore(tenants(asK.Issuer, asL.Issuer)), introspect.WithMaxIssuers(1),
		introspect.WithClock(clk.Now), introspect.WithValidation(introspect.ValidateJWT), introspect.WithJWTAudience(jwtResource))
	tokK := asK.IssueJWT(introspecttest.Claims{Subject: "k", Audience: []string{jwtResource}})
	tokL := asL.IssueJWT(introspecttest.Claims{Subject: "l", Audience: []string{jwtResource}})
	assert.Equal(t, http.StatusServiceUnavailable, serveAt(mw, "/a/x", tokK).Code)
	firstKeys := asK.JWKSCalls()
	require.Positive(t, firstKeys)
	for range 20 {
		assert.Equal(t, http.StatusOK, serveAt(mw, "/b/x", tokL).Code)
		assert.Equal(t, http.StatusServiceUnavailable, serveAt(mw, "/a/x", tokK).Code)
	}
	assert.Equal(t, firstKeys, asK.JWKSCalls(), "the issuer whose keys fail is not asked again within its backoff")

	asC, asD, asE := discoAS(t), discoAS(t), discoAS(t)
	mw = tenantMW(t, introspect.WithClientStore(tenants(asC.Issuer, asD.Issuer, asE.Issuer)), introspect.WithMaxIssuers(1),
		introspect.WithValidation(introspect.ValidateHybrid), introspect.WithJWTAudience(jwtResource), withLRU(t))
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		wg.Go(func() {
			as := []*introspecttest.Server{asC, asD, asE}[i%3]
			tok := as.IssueJWT(introspecttest.Claims{Subject: "s", Audience: []string{jwtResource}})
			if i%2 == 0 {
				tok = as.Issue(introspecttest.Claims{Subject: "s"})
			}
			cc := introspect.ClientContext{Issuer: as.Issuer, Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}
			if _, err := mw.VerifyAs(context.Background(), cc, tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a valid token refused while issuers were dropped: %v", err)
	}
}

// Client.IntrospectAs checks the answer's iss against the issuer the
// context resolves to, also for a context naming none (WithIssuer's).
func TestIntrospectAsResolvedIssuer(t *testing.T) {
	as := discoAS(t)
	c := mustDiscoClient(t, as)
	tok := as.Issue(introspecttest.Claims{Subject: "s", Issuer: "https://other.example"})
	_, err := c.IntrospectAs(context.Background(), introspect.ClientContext{
		Credentials: introspect.Credentials{ClientID: discoClientID, ClientSecret: discoSecret}}, tok)
	require.ErrorIs(t, err, introspect.ErrIssuerMismatch)
}

// Ready says which configured issuers are not discovered yet, and nil once
// all are.
func TestClientReady(t *testing.T) {
	as1, as2 := discoAS(t), discoAS(t)
	release := make(chan struct{})
	as2.SetJWKSFault(introspecttest.Block(release))
	v, err := introspect.New(introspect.WithIssuer(as1.Issuer), introspect.WithJWTIssuers(as2.Issuer),
		introspect.WithValidation(introspect.ValidateJWT), introspect.WithJWTAudience(jwtResource))
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	c := v.Client()
	require.Eventually(t, func() bool { // as1 done; as2's metadata done, its keys held
		err := c.Ready()
		return err != nil && !strings.Contains(err.Error(), as1.Issuer) && strings.Contains(err.Error(), as2.Issuer+" (keys)")
	}, 10*time.Second, time.Millisecond)
	assert.ErrorIs(t, c.Ready(), introspect.ErrDiscovery)
	close(release)
	require.Eventually(t, func() bool { return c.Ready() == nil }, 10*time.Second, time.Millisecond)

	plain, err := introspect.NewClient(introspect.WithEndpoint(as1.IntrospectionURL()), introspect.WithClientCredentials(discoClientID, discoSecret))
	require.NoError(t, err)
	assert.NoError(t, plain.Ready(), "nothing to discover")

	// WithIssuer's issuer listed in WithJWTIssuers too is named once.
	as3 := discoAS(t)
	as3.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`))
	both, err := introspect.New(introspect.WithIssuer(as3.Issuer), introspect.WithJWTIssuers(as3.Issuer),
		introspect.WithValidation(introspect.ValidateJWT), introspect.WithJWTAudience(jwtResource))
	require.NoError(t, err)
	t.Cleanup(func() { _ = both.Close() })
	err = both.Client().Ready()
	require.ErrorIs(t, err, introspect.ErrDiscovery)
	assert.Equal(t, 1, strings.Count(err.Error(), as3.Issuer), err.Error())
}
