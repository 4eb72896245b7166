package introspect_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// uiServerText is text the userinfo endpoint puts in its answers; no
// response, error or log line may repeat it.
const uiServerText = "server-chosen-text-Kq93"

// uiURLSecret is a password in a configured URL.
const uiURLSecret = "url-secret-Vb71"

// uiMW builds a middleware for as with discovery, userinfo, an LRU cache
// and c capturing its logs and hook events.
func uiMW(t *testing.T, as *introspecttest.Server, c *capture, opts ...introspect.Option) (*introspect.Middleware, *introspect.LRUCache) {
	t.Helper()
	lru, err := introspect.NewLRUCache(100)
	require.NoError(t, err)
	base := []introspect.Option{
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithCache(lru),
		introspect.WithUserinfo(),
	}
	if c != nil {
		base = append(base, c.options()...)
	}
	mw, err := introspect.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return mw, lru
}

// uiHandler answers 200 with the verdict's subject and its userinfo claims
// as JSON ("null" without them).
var uiHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	ti, _ := introspect.FromContext(r.Context())
	b, _ := json.Marshal(ti.Userinfo)
	_, _ = io.WriteString(w, ti.Subject+" "+string(b))
})

func aliceClaims() introspecttest.Claims {
	return introspecttest.Claims{
		Subject: "alice", ClientID: rsClientID, Scope: "openid read",
		Extra: map[string]any{"email": "alice@example.com", "name": "Alice"},
	}
}

// The claims of the userinfo endpoint reach the handler on a copy of the
// verdict: the cached verdict stays without them, and the helpers decode
// them.
func TestUserinfoClaimsReachHandler(t *testing.T) {
	as := newAS(t)
	mw, lru := uiMW(t, as, nil)
	tok := as.Issue(aliceClaims())

	var got *introspect.Introspection
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = introspect.FromContext(r.Context())
	}))
	res := serve(h, bearer(tok))
	require.Equal(t, http.StatusOK, res.status)
	require.NotNil(t, got.Userinfo)

	var email string
	ok, err := got.UserinfoClaim("email", &email)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "alice@example.com", email)
	type profile struct {
		Sub   string `json:"sub"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	p, err := introspect.DecodeUserinfo[profile](got)
	require.NoError(t, err)
	assert.Equal(t, profile{Sub: "alice", Name: "Alice", Email: "alice@example.com"}, p)

	// The verdict's JSON form is RFC 7662's: no userinfo in it.
	b, err := json.Marshal(got)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "userinfo")

	md, ok := mw.Client().Metadata()
	require.True(t, ok)
	assert.Equal(t, as.UserinfoURL(), md.UserinfoEndpoint)

	// The first request's context predates discovery; the second one's
	// names the endpoint, as the key looked up below.
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
	e, found, err := lru.Get(context.Background(), introspect.NewCacheKey(as.IntrospectionURL(), rsClientID, tok))
	require.NoError(t, err)
	require.True(t, found)
	assert.Nil(t, e.Introspection.Userinfo, "the cached verdict must stay without userinfo")
	assert.NotSame(t, e.Introspection, got)

	// Verify gets them too.
	ti, err := mw.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, got.Userinfo, ti.Userinfo)

	_, err = introspect.DecodeUserinfo[profile](e.Introspection)
	assert.Error(t, err, "a verdict without userinfo")
}

// One userinfo call per token per TTL: concurrent misses share one call,
// later requests are served from the cache, and the claims expire with the
// verdict's cache entry or on Evict.
func TestUserinfoCachedAndCoalesced(t *testing.T) {
	as := newAS(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	mw, _ := uiMW(t, as, nil, introspect.WithClock(clock), introspect.WithMaxTTL(time.Minute))
	tok := as.Issue(aliceClaims())
	h := mw.Handler(uiHandler)

	release := make(chan struct{})
	as.SetUserinfoFault(introspecttest.Block(release))
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() { statuses[i] = serve(h, bearer(tok)).status })
	}
	require.Eventually(t, func() bool { return as.UserinfoCalls() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(200 * time.Millisecond) // the others join the call in flight
	as.SetUserinfoFault(introspecttest.Fault{})
	close(release)
	wg.Wait()
	for _, s := range statuses {
		assert.Equal(t, http.StatusOK, s)
	}
	assert.EqualValues(t, 1, as.UserinfoCalls(), "concurrent requests share one call")

	res := serve(h, bearer(tok))
	require.Equal(t, http.StatusOK, res.status)
	assert.Contains(t, res.body, "alice@example.com")
	assert.EqualValues(t, 1, as.UserinfoCalls(), "served from the cache")

	now.Add(int64(61 * time.Second)) // past the max TTL
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
	assert.EqualValues(t, 2, as.UserinfoCalls(), "the claims expire with the verdict")

	require.NoError(t, mw.Evict(context.Background(), tok))
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
	assert.EqualValues(t, 3, as.UserinfoCalls(), "Evict removes the claims too")
}

// Without a cache every accepted request asks the userinfo endpoint; a
// refused token costs no userinfo call.
func TestUserinfoWithoutCache(t *testing.T) {
	as := newAS(t)
	mw, err := introspect.New(
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithUserinfo(),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	h := mw.Handler(uiHandler)
	tok := as.Issue(aliceClaims())
	for range 2 {
		res := serve(h, bearer(tok))
		require.Equal(t, http.StatusOK, res.status)
		assert.Contains(t, res.body, `"name":"Alice"`)
	}
	assert.EqualValues(t, 2, as.UserinfoCalls())

	as.Revoke(tok)
	assert.Equal(t, http.StatusUnauthorized, serve(h, bearer(tok)).status)
	assert.EqualValues(t, 2, as.UserinfoCalls(), "an inactive token is not sent to userinfo")
}

// Locally validated JWT access tokens get their userinfo claims too.
func TestUserinfoWithLocalJWT(t *testing.T) {
	as := newAS(t)
	mw, _ := jwtMW(t, as, introspect.ValidateJWT, introspect.WithUserinfo())
	c := aliceClaims()
	c.Audience = []string{jwtResource}
	tok := as.IssueJWT(c)
	res := serve(mw.Handler(uiHandler), bearer(tok))
	require.Equal(t, http.StatusOK, res.status)
	assert.Contains(t, res.body, `"email":"alice@example.com"`)
	assert.EqualValues(t, 0, as.Calls(), "no introspection")
	assert.EqualValues(t, 1, as.UserinfoCalls())
}

// What each answer of the userinfo endpoint makes of a request: claims, a
// refusal (401) or 503; never the token, the secret or the endpoint's text
// in the response, the errors or the logs.
func TestUserinfoAnswers(t *testing.T) {
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signed := func(f func(*introspecttest.SignedAnswer)) func(*introspecttest.Server) {
		return func(as *introspecttest.Server) { as.SetSignedUserinfo(true, f) }
	}
	fault := func(f introspecttest.Fault) func(*introspecttest.Server) {
		return func(as *introspecttest.Server) { as.SetUserinfoFault(f) }
	}
	tests := []struct {
		name       string
		set        func(*introspecttest.Server)
		claims     func(*introspecttest.Claims)
		opts       []introspect.Option
		status     int
		want       string // in the body when 200
		bestEffort bool
	}{
		{name: "plain", status: 200, want: `"email":"alice@example.com"`},
		{name: "refused 401", set: fault(introspecttest.Respond(401, "application/json", `{"error":"invalid_token","error_description":"`+uiServerText+`"}`)), status: 401},
		{name: "forbidden 403", set: fault(introspecttest.Respond(403, "application/json", `{"error":"insufficient_scope","error_description":"`+uiServerText+`"}`)), status: 503},
		{name: "server error", set: fault(introspecttest.Respond(500, "text/plain", uiServerText)), status: 503},
		{name: "garbage", set: fault(introspecttest.Respond(200, "application/json", "not json "+uiServerText)), status: 503},
		{name: "array", set: fault(introspecttest.Respond(200, "application/json", `["`+uiServerText+`"]`)), status: 503},
		{name: "wrong content type", set: fault(introspecttest.Respond(200, "text/html", `{"sub":"alice"}`)), status: 503},
		{name: "no content type", set: fault(introspecttest.Respond(200, "", `{"sub":"alice"}`)), status: 503},
		{name: "oversized", set: fault(introspecttest.Respond(200, "application/json", `{"sub":"alice","x":"`+strings.Repeat("a", 2048)+`"}`)), opts: []introspect.Option{introspect.WithMaxResponseSize(1024)}, status: 503},
		{name: "sub not a string", set: fault(introspecttest.Respond(200, "application/json", `{"sub":42}`)), status: 503},
		{name: "sub mismatch", set: fault(introspecttest.Respond(200, "application/json", `{"sub":"mallory"}`)), status: 401},
		{name: "no sub", set: fault(introspecttest.Respond(200, "application/json", `{"email":"mallory@example.com"}`)), status: 503},
		{name: "best effort: no sub", set: fault(introspecttest.Respond(200, "application/json", `{"email":"mallory@example.com"}`)), bestEffort: true, status: 200, want: "alice null"},
		{name: "redirect", set: fault(introspecttest.Respond(302, "", "", "Location: http://127.0.0.1:1/userinfo")), status: 503},
		{name: "endpoint down", opts: []introspect.Option{introspect.WithUserinfoEndpoint("http://" + closedPort(t) + "/userinfo")}, status: 503},

		{name: "signed", set: signed(nil), status: 200, want: `"email":"alice@example.com"`},
		{name: "signed without aud", set: signed(nil), claims: func(c *introspecttest.Claims) { c.ClientID = "" }, status: 200, want: `"name":"Alice"`},
		{name: "signed forged signature", set: signed(func(a *introspecttest.SignedAnswer) { a.Key = otherKey }), status: 503},
		{name: "signed alg none", set: signed(func(a *introspecttest.SignedAnswer) { a.Alg = "none" }), status: 503},
		{name: "signed HMAC", set: signed(func(a *introspecttest.SignedAnswer) { a.Alg, a.Key = "HS256", []byte("public-key-as-secret") }), status: 503},
		{name: "signed other issuer", set: signed(func(a *introspecttest.SignedAnswer) { a.Claims["iss"] = "https://evil.example" }), status: 503},
		{name: "signed other audience", set: signed(func(a *introspecttest.SignedAnswer) { a.Claims["aud"] = "another-client" }), status: 503},
		{name: "signed for the token's client", set: signed(nil), claims: func(c *introspecttest.Claims) { c.ClientID = "the-app" }, status: 200, want: `"name":"Alice"`},
		{name: "signed for our client", set: signed(func(a *introspecttest.SignedAnswer) { a.Claims["aud"] = []string{"x", rsClientID} }), claims: func(c *introspecttest.Claims) { c.ClientID = "the-app" }, status: 200, want: `"name":"Alice"`},
		{name: "signed for another client than the token's", set: signed(func(a *introspecttest.SignedAnswer) { a.Claims["aud"] = "x" }), claims: func(c *introspecttest.Claims) { c.ClientID = "the-app" }, status: 503},
		{name: "signed expired", set: signed(func(a *introspecttest.SignedAnswer) { a.Claims["exp"] = time.Now().Add(-time.Hour).Unix() }), status: 503},
		{name: "signed access token typ", set: signed(func(a *introspecttest.SignedAnswer) { a.Header["typ"] = "at+jwt" }), status: 503},
		{name: "signed garbage", set: signed(func(a *introspecttest.SignedAnswer) { a.Body = "a.b.c" }), status: 503},
		{name: "signed encrypted", set: signed(func(a *introspecttest.SignedAnswer) { a.Body = "a.b.c.d.e" }), status: 503},
		{name: "signed sub mismatch", set: signed(func(a *introspecttest.SignedAnswer) { a.Claims["sub"] = "mallory" }), status: 401},
		{name: "signed without issuer", set: signed(nil), status: 503},

		{name: "best effort: server error", set: fault(introspecttest.Respond(500, "text/plain", uiServerText)), bestEffort: true, status: 200, want: "alice null"},
		{name: "best effort: forged", set: signed(func(a *introspecttest.SignedAnswer) { a.Key = otherKey }), bestEffort: true, status: 200, want: "alice null"},
		{name: "best effort: refused 401", set: fault(introspecttest.Respond(401, "application/json", `{"error":"invalid_token"}`)), bestEffort: true, status: 401},
		{name: "best effort: sub mismatch", set: fault(introspecttest.Respond(200, "application/json", `{"sub":"mallory"}`)), bestEffort: true, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAS(t)
			c := aliceClaims()
			if tt.claims != nil {
				tt.claims(&c)
			}
			tok := as.Issue(c)
			if tt.set != nil {
				tt.set(as)
			}
			var cp capture
			var opts []introspect.Option
			if tt.bestEffort {
				opts = append(opts, introspect.WithUserinfo(introspect.UserinfoBestEffort()))
			}
			if tt.name == "signed without issuer" {
				// A static userinfo endpoint and no discovery: a signed
				// answer cannot be verified.
				lru, err := introspect.NewLRUCache(10)
				require.NoError(t, err)
				mw, err := introspect.New(append(cp.options(),
					introspect.WithEndpoint(as.IntrospectionURL()),
					introspect.WithClientCredentials(rsClientID, rsSecret),
					introspect.WithCache(lru),
					introspect.WithUserinfo(),
					introspect.WithUserinfoEndpoint(as.UserinfoURL()))...)
				require.NoError(t, err)
				t.Cleanup(func() { _ = mw.Close() })
				res := serve(mw.Handler(uiHandler), bearer(tok))
				assert.Equal(t, tt.status, res.status)
				return
			}
			mw, _ := uiMW(t, as, &cp, append(opts, tt.opts...)...)
			res := serve(mw.Handler(uiHandler), bearer(tok))
			assert.Equal(t, tt.status, res.status, res.body)
			switch tt.status {
			case http.StatusOK:
				assert.Contains(t, res.body, tt.want)
			case http.StatusUnauthorized:
				assert.Contains(t, res.challenge, `error="invalid_token"`)
			}
			_, err := mw.Verify(context.Background(), tok)
			if tt.status == http.StatusOK {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Equal(t, tt.status, introspect.StatusCode(err))
				assert.NotContains(t, err.Error(), tok)
				assert.NotContains(t, err.Error(), uiServerText)
			}
			assertNoLeak(t, res, tok, rsSecret, uiServerText)
			cp.assertClean(t, tok, rsSecret, uiServerText)
		})
	}
}

// A token bound to a key (DPoP or a certificate) is never sent to the
// userinfo endpoint: its verdict has no userinfo claims.
func TestUserinfoSkipsBoundTokens(t *testing.T) {
	as := newAS(t)
	mw, _ := uiMW(t, as, nil, introspect.InsecureSkipTokenBinding())
	for _, cnf := range []map[string]string{{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}} {
		c := aliceClaims()
		c.Confirmation = cnf
		ti, err := mw.Verify(context.Background(), as.Issue(c))
		require.NoError(t, err)
		assert.Nil(t, ti.Userinfo)
	}
	assert.EqualValues(t, 0, as.UserinfoCalls())
}

// A token whose verdict has no subject (a client's own) is refused without
// a call, best effort or not: it has no user, and no answer could be
// checked to be about it.
func TestUserinfoRefusesTokensWithoutSubject(t *testing.T) {
	as := newAS(t)
	c := aliceClaims()
	c.Subject = ""
	tok := as.Issue(c)
	for _, opts := range [][]introspect.Option{nil, {introspect.WithUserinfo(introspect.UserinfoBestEffort())}} {
		mw, _ := uiMW(t, as, nil, opts...)
		_, err := mw.Verify(context.Background(), tok)
		require.ErrorIs(t, err, introspect.ErrInactiveToken)
		assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
		res := serve(mw.Handler(uiHandler), bearer(tok))
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Contains(t, res.challenge, `error="invalid_token"`)
	}
	assert.EqualValues(t, 0, as.UserinfoCalls())
}

// DecodeUserinfo matches names to fields exactly, as DecodeClaims does.
func TestDecodeUserinfoCaseOnlyNames(t *testing.T) {
	as := newAS(t)
	mw, _ := uiMW(t, as, nil)
	as.SetUserinfoFault(introspecttest.Respond(200, "application/json", `{"sub":"alice","email":"alice@example.com","EMAIL":"mallory@example.com"}`))
	ti, err := mw.Verify(context.Background(), as.Issue(aliceClaims()))
	require.NoError(t, err)
	_, err = introspect.DecodeUserinfo[struct {
		Email string `json:"email"`
	}](ti)
	assert.EqualError(t, err, "introspect: DecodeUserinfo: a member's name differs only in case from a field's")
}

// WithUserinfoEndpoint serves WithIssuer's issuer and contexts that name no
// issuer: a token of a context naming another issuer goes to that issuer's
// discovered endpoint, never to the configured one.
func TestUserinfoEndpointOfOneIssuer(t *testing.T) {
	asA, asB := newAS(t), newAS(t)
	store := introspect.ClientStoreFunc(func(*http.Request) (introspect.ClientContext, error) {
		return introspect.ClientContext{}, introspect.ErrInvalidRequest // VerifyAs names the context
	})
	mw, err := introspect.New(introspect.WithClientStore(store), introspect.WithUserinfo(), introspect.WithUserinfoEndpoint(asA.UserinfoURL()),
		introspect.WithCache(newLRU(t, 100)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	creds := introspect.Credentials{ClientID: rsClientID, ClientSecret: rsSecret}
	tokB := asB.Issue(aliceClaims())
	ccB := introspect.ClientContext{Issuer: asB.Issuer, Credentials: creds}
	ti, err := mw.VerifyAs(context.Background(), ccB, tokB)
	require.NoError(t, err)
	assert.Contains(t, string(ti.Userinfo["email"]), "alice@example.com")
	assert.EqualValues(t, 0, asA.UserinfoCalls(), "B's token went to A's endpoint")
	assert.EqualValues(t, 1, asB.UserinfoCalls())
	// EvictAs removes the claims cached from B's endpoint: they are asked again.
	require.NoError(t, mw.EvictAs(context.Background(), ccB, tokB))
	_, err = mw.VerifyAs(context.Background(), ccB, tokB)
	require.NoError(t, err)
	assert.EqualValues(t, 2, asB.UserinfoCalls(), "the claims of B's endpoint survived EvictAs")

	// That issuer's userinfo_endpoint is checked as any metadata URL: plain
	// http elsewhere is refused, and the token never sent.
	asC := newAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["userinfo_endpoint"] = "http://userinfo.evil.example/ui" }))
	_, err = mw.VerifyAs(context.Background(), introspect.ClientContext{Issuer: asC.Issuer, Credentials: creds}, asC.Issue(aliceClaims()))
	require.ErrorIs(t, err, introspect.ErrDiscovery)
	assert.Contains(t, err.Error(), "userinfo_endpoint")

	// A context of an endpoint alone uses the configured endpoint.
	tokA := asA.Issue(aliceClaims())
	_, err = mw.VerifyAs(context.Background(), introspect.ClientContext{Endpoint: asA.IntrospectionURL(), Credentials: creds}, tokA)
	require.NoError(t, err)
	assert.EqualValues(t, 1, asA.UserinfoCalls())
}

// The metadata's userinfo_endpoint must be usable; a metadata document
// without one is a 503.
func TestUserinfoMetadata(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(aliceClaims())

	as.SetMetadata(func(m map[string]any) { delete(m, "userinfo_endpoint") })
	mw, _ := uiMW(t, as, nil)
	assert.Equal(t, http.StatusServiceUnavailable, serve(mw.Handler(uiHandler), bearer(tok)).status)

	as.SetMetadata(func(m map[string]any) { m["userinfo_endpoint"] = "http://userinfo.example/" + uiServerText })
	var cp capture
	mw, _ = uiMW(t, as, &cp)
	res := serve(mw.Handler(uiHandler), bearer(tok))
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	cp.assertClean(t, uiServerText, tok)
	assert.EqualValues(t, 0, as.UserinfoCalls())
}

// The constructor refuses userinfo options it cannot honour.
func TestUserinfoMisconfiguration(t *testing.T) {
	base := []introspect.Option{
		introspect.WithEndpoint("https://as.example/introspect"),
		introspect.WithClientCredentials(rsClientID, rsSecret),
	}
	tests := []struct {
		name string
		opts []introspect.Option
		want string
	}{
		{"no endpoint", []introspect.Option{introspect.WithUserinfo()}, "WithUserinfo needs WithIssuer"},
		{"endpoint alone", []introspect.Option{introspect.WithUserinfoEndpoint("https://as.example/userinfo")}, "WithUserinfoEndpoint needs WithUserinfo"},
		{"plain http", []introspect.Option{introspect.WithUserinfo(), introspect.WithUserinfoEndpoint("http://as.example/userinfo")}, "not https"},
		{"credentials in URL", []introspect.Option{introspect.WithUserinfo(), introspect.WithUserinfoEndpoint("https://u:" + uiURLSecret + "@as.example/userinfo")}, "must not contain credentials"},
		{"nil option", []introspect.Option{introspect.WithUserinfo(nil), introspect.WithUserinfoEndpoint("https://as.example/userinfo")}, "WithUserinfo: nil option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := introspect.New(append(base, tt.opts...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), uiURLSecret)
		})
	}
	_, err := introspect.New(append(base, introspect.WithUserinfo(), introspect.WithUserinfoEndpoint("http://127.0.0.1:1/userinfo"))...)
	assert.NoError(t, err, "loopback http is allowed")
	_, err = introspect.NewClient(append(base, introspect.WithUserinfo(), introspect.WithUserinfoEndpoint("https://as.example/userinfo"))...)
	assert.ErrorContains(t, err, "applies to the middleware")
}

// Evict removes userinfo claims cached from the endpoint of a locally
// validated JWT's own issuer, not only from the endpoint of the context's
// issuer: B's claims of B's token are asked again after Evict.
func TestEvictRemovesUserinfoOfJWTIssuer(t *testing.T) {
	asA, asB := newAS(t), newAS(t)
	mw, _ := jwtMW(t, asA, introspect.ValidateJWT, introspect.WithJWTIssuers(asB.Issuer),
		introspect.WithUserinfo(), introspect.WithCache(newLRU(t, 100)))
	c := aliceClaims()
	c.Audience = []string{jwtResource}
	tok := asB.IssueJWT(c)
	for range 2 {
		ti, err := mw.Verify(context.Background(), tok)
		require.NoError(t, err)
		assert.Contains(t, string(ti.Userinfo["email"]), "alice@example.com")
	}
	assert.EqualValues(t, 1, asB.UserinfoCalls(), "the claims were cached")
	assert.EqualValues(t, 0, asA.UserinfoCalls(), "B's token went to A's endpoint")
	require.NoError(t, mw.Evict(context.Background(), tok))
	_, err := mw.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.EqualValues(t, 2, asB.UserinfoCalls(), "the claims of B's endpoint survived Evict")
	assert.EqualValues(t, 0, asA.UserinfoCalls())
}
