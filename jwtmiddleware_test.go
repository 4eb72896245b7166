package introspect_test

import (
	"context"
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

// jwtMW builds a middleware for as in mode, with discovery, the resource's
// audience, a cache and a hook recording jwtDecisions.
func jwtMW(t testing.TB, as *introspecttest.Server, mode introspect.ValidationMode, opts ...introspect.Option) (*introspect.Middleware, *jwtDecisions) {
	t.Helper()
	d := &jwtDecisions{}
	base := []introspect.Option{
		introspect.WithIssuer(as.Issuer),
		introspect.WithValidation(mode),
		introspect.WithHooks(&introspect.Hooks{Decided: d.add}),
	}
	if mode != introspect.ValidateIntrospect {
		base = append(base, introspect.WithJWTAudience(jwtResource))
	}
	if mode != introspect.ValidateJWT {
		base = append(base, introspect.WithClientCredentials(discoClientID, discoSecret))
		lru, err := introspect.NewLRUCache(100)
		require.NoError(t, err)
		base = append(base, introspect.WithCache(lru))
	}
	mw, err := introspect.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return mw, d
}

type jwtDecisions struct {
	mu  sync.Mutex
	all []introspect.Decision
}

func (d *jwtDecisions) add(_ *http.Request, dec introspect.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, dec)
}

func (d *jwtDecisions) last() introspect.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.all[len(d.all)-1]
}

// serveJWT sends a request with token through mw to a handler that writes
// the verdict's source.
func serveJWT(mw *introspect.Middleware, scheme, token string) *httptest.ResponseRecorder {
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		_, _ = w.Write([]byte(ti.Source.String() + " " + ti.Subject))
	}))
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", scheme+" "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Which path serves which token in each mode, how many introspection calls
// it costs, and what the handler and the Decided hook see.
func TestValidationModes(t *testing.T) {
	type want struct {
		status int
		source string // the handler's body prefix when allowed
		calls  int64  // introspection calls for the request
	}
	for _, tc := range []struct {
		mode                                introspect.ValidationMode
		jwt, opaque, expired, foreign, evil want
	}{
		{introspect.ValidateIntrospect,
			want{200, "introspection", 1}, want{200, "introspection", 1}, want{401, "", 1}, want{401, "", 1}, want{401, "", 1}},
		{introspect.ValidateJWT,
			want{200, "jwt", 0}, want{401, "", 0}, want{401, "", 0}, want{401, "", 0}, want{401, "", 0}},
		{introspect.ValidateHybrid,
			want{200, "jwt", 0}, want{200, "introspection", 1}, want{401, "", 0}, want{401, "", 1}, want{401, "", 0}},
		{introspect.ValidateJWTAndIntrospect,
			want{200, "jwt+introspection", 1}, want{401, "", 0}, want{401, "", 0}, want{401, "", 0}, want{401, "", 0}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			as := discoAS(t)
			other := discoAS(t)
			mw, d := jwtMW(t, as, tc.mode)
			c := jwtClaims()
			expired := jwtClaims()
			expired.Expiry = time.Now().Add(-time.Hour)
			toks := []struct {
				name string
				tok  string
				want want
			}{
				{"jwt", as.IssueJWT(c), tc.jwt},
				{"opaque", as.Issue(c), tc.opaque},
				{"expired jwt", as.IssueJWT(expired), tc.expired},
				{"jwt of another issuer", other.IssueJWT(c), tc.foreign},
				{"jwt of the issuer signed by another key", other.IssueJWTFunc(c, func(_, cl map[string]any) {
					cl["iss"] = as.Issuer
				}), tc.evil},
			}
			for _, tk := range toks {
				before := as.Calls()
				rec := serveJWT(mw, "Bearer", tk.tok)
				assert.Equal(t, tk.want.status, rec.Code, "%s: %s", tk.name, rec.Body.String())
				assert.Equal(t, tk.want.calls, as.Calls()-before, "%s: introspection calls", tk.name)
				dec := d.last()
				if tk.want.status == 200 {
					assert.Equal(t, tk.want.source+" alice", rec.Body.String(), tk.name)
					require.NotNil(t, dec.Introspection, tk.name)
					assert.Equal(t, tk.want.source, dec.Introspection.Source.String(), "%s: the hook sees the source", tk.name)
				} else {
					assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`, tk.name)
					assert.NotContains(t, rec.Body.String(), tk.tok)
					assert.Equal(t, tk.want.status, dec.Status)
				}
			}
		})
	}
}

// jwt+introspect sees a revocation as soon as the cache forgets the token;
// the local path alone does not.
func TestJWTAndIntrospectRevocation(t *testing.T) {
	as := discoAS(t)
	both, _ := jwtMW(t, as, introspect.ValidateJWTAndIntrospect)
	local, _ := jwtMW(t, as, introspect.ValidateHybrid)
	tok := as.IssueJWT(jwtClaims())
	require.Equal(t, 200, serveJWT(both, "Bearer", tok).Code)
	require.Equal(t, 200, serveJWT(both, "Bearer", tok).Code)
	assert.EqualValues(t, 1, as.Calls(), "the second request is served by the cache")

	as.Revoke(tok)
	require.NoError(t, both.Evict(context.Background(), tok))
	rec := serveJWT(both, "Bearer", tok)
	assert.Equal(t, 401, rec.Code, "revoked, evicted: refused")
	assert.EqualValues(t, 2, as.Calls())
	assert.Equal(t, 200, serveJWT(local, "Bearer", tok).Code, "a local verdict cannot see a revocation")

	// Verify takes the same path.
	ti, err := both.Verify(context.Background(), tok)
	require.ErrorIs(t, err, introspect.ErrInactiveToken)
	assert.NotErrorIs(t, err, introspect.ErrInvalidJWT, "the local check passed; the authorization server refused")
	assert.False(t, ti != nil && ti.Active)
	good := as.IssueJWT(jwtClaims())
	ti, err = both.Verify(context.Background(), good)
	require.NoError(t, err)
	assert.Equal(t, introspect.VerdictJWTIntrospected, ti.Source)
}

// In jwt+introspect mode a token is bound when either verdict binds it: an
// introspection answer whose cnf the JWT lacks still binds it (a Bearer
// request without a proof is refused, as in introspect mode), and a JWT and
// an answer that name different keys are refused with a proof of either.
func TestJWTAndIntrospectBinding(t *testing.T) {
	as := discoAS(t)
	key, err := introspecttest.NewDPoPKey("ES256")
	require.NoError(t, err)
	other, err := introspecttest.NewDPoPKey("ES256")
	require.NoError(t, err)
	c := jwtClaims()
	c.Confirmation = map[string]string{"jkt": key.JKT()}
	answerOnly := as.IssueJWTFunc(c, func(_, claims map[string]any) { delete(claims, "cnf") })
	differ := as.IssueJWTFunc(c, func(_, claims map[string]any) { claims["cnf"] = map[string]string{"jkt": other.JKT()} })
	for _, mode := range []introspect.ValidationMode{introspect.ValidateIntrospect, introspect.ValidateJWTAndIntrospect} {
		mw, _ := jwtMW(t, as, mode)
		rec := serveJWT(mw, "Bearer", answerOnly)
		assert.Equal(t, http.StatusUnauthorized, rec.Code, "%s: a token the answer binds, as Bearer", mode)
	}
	mw, _ := jwtMW(t, as, introspect.ValidateJWTAndIntrospect)
	// With the proof of the key the answer names, it passes.
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "DPoP "+answerOnly)
	req.Header.Set("DPoP", key.Proof(http.MethodGet, "http://example.com/api", answerOnly))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	_, err = mw.Verify(context.Background(), differ)
	require.ErrorIs(t, err, introspect.ErrTokenBinding, "the JWT and the answer name different keys")
	assert.ErrorIs(t, err, introspect.ErrInactiveToken)
}

// Keys that cannot be fetched are a 503 in every mode that validates JWTs,
// and an opaque token in hybrid mode is still introspected.
func TestJWTModesKeysUnavailable(t *testing.T) {
	for _, mode := range []introspect.ValidationMode{introspect.ValidateJWT, introspect.ValidateHybrid, introspect.ValidateJWTAndIntrospect} {
		t.Run(mode.String(), func(t *testing.T) {
			as := discoAS(t)
			as.SetJWKSFault(introspecttest.Respond(http.StatusBadGateway, "text/plain", "down"))
			mw, _ := jwtMW(t, as, mode)
			rec := serveJWT(mw, "Bearer", as.IssueJWT(jwtClaims()))
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
			if mode == introspect.ValidateHybrid {
				assert.Equal(t, 200, serveJWT(mw, "Bearer", as.Issue(jwtClaims())).Code)
			}
		})
	}
}

// A DPoP-bound JWT (cnf.jkt) validated locally still needs its proof, and a
// certificate-bound one its certificate.
func TestJWTBinding(t *testing.T) {
	for _, mode := range []introspect.ValidationMode{introspect.ValidateJWT, introspect.ValidateHybrid} {
		t.Run(mode.String(), func(t *testing.T) {
			as := discoAS(t)
			mw, _ := jwtMW(t, as, mode)
			srv := dpopAPI(t, mw)
			url := srv.URL + "/api/orders"
			key, other := dpopKey(t, "ES256"), dpopKey(t, "ES256")
			bound := as.IssueJWT(key.Bind(jwtClaims()))
			res := callDPoP(t, "GET", url, "DPoP", bound, key.Proof("GET", url, bound))
			require.Equal(t, 200, res.status, res.body)
			assert.Equal(t, "sub=alice", res.body)
			assert.Equal(t, 401, callDPoP(t, "GET", url, "DPoP", bound).status, "no proof")
			assert.Equal(t, 401, callDPoP(t, "GET", url, "DPoP", bound, other.Proof("GET", url, bound)).status, "another key's proof")
			assert.Equal(t, 401, callDPoP(t, "GET", url, "Bearer", bound).status, "a DPoP-bound token as a bearer token")
			certBound := as.IssueJWT(func() introspecttest.Claims {
				c := jwtClaims()
				c.Confirmation = map[string]string{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
				return c
			}())
			assert.Equal(t, 401, callDPoP(t, "GET", url, "Bearer", certBound).status, "no certificate")
			assert.Zero(t, as.Calls())
		})
	}
}

func TestValidationOptionErrors(t *testing.T) {
	as := discoAS(t)
	iss := introspect.WithIssuer(as.Issuer)
	creds := introspect.WithClientCredentials(discoClientID, discoSecret)
	aud := introspect.WithJWTAudience(jwtResource)
	for _, tc := range []struct {
		name string
		opts []introspect.Option
		want string
	}{
		{"hybrid without audience", []introspect.Option{iss, creds, introspect.WithValidation(introspect.ValidateHybrid)}, "needs WithJWTAudience"},
		{"jwt without issuer", []introspect.Option{aud, introspect.WithValidation(introspect.ValidateJWT)}, "needs WithIssuer"},
		{"jwt with credentials", []introspect.Option{iss, aud, creds, introspect.WithValidation(introspect.ValidateJWT)}, "never introspects"},
		{"jwt with an endpoint", []introspect.Option{iss, aud, introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithValidation(introspect.ValidateJWT)}, "never introspects"},
		{"hybrid without credentials", []introspect.Option{iss, aud, introspect.WithValidation(introspect.ValidateHybrid)}, "no client credentials"},
		{"audience without a mode", []introspect.Option{iss, creds, aud}, "WithJWTAudience needs WithValidation"},
		{"unknown mode", []introspect.Option{iss, creds, aud, introspect.WithValidation(introspect.ValidationMode(7))}, "unknown mode"},
		{"mode on a Client", []introspect.Option{iss, creds, aud, introspect.WithValidation(introspect.ValidateHybrid)}, "applies to the middleware"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.name == "mode on a Client" {
				_, err = introspect.NewClient(tc.opts...)
			} else {
				_, err = introspect.New(tc.opts...)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// jwt mode needs neither an endpoint nor credentials, and the metadata
	// needs no introspection endpoint.
	as2 := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { delete(m, "introspection_endpoint") }))
	mw, err := introspect.New(introspect.WithIssuer(as2.Issuer), introspect.WithJWTAudience(jwtResource),
		introspect.WithValidation(introspect.ValidateJWT), introspect.WithEagerDiscovery())
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	assert.Equal(t, 200, serveJWT(mw, "Bearer", as2.IssueJWT(jwtClaims())).Code)
}

// A JWT longer than the default extractor's 4 KiB, within WithMaxJWTSize, is
// taken off the request and validated; the mode that only introspects keeps
// the 4 KiB limit.
func TestJWTLargerThanDefaultTokenLength(t *testing.T) {
	as := newAS(t)
	c := aliceClaims()
	c.Audience = []string{jwtResource}
	c.Extra = map[string]any{"groups": strings.Repeat("g", 5<<10)}
	tok := as.IssueJWT(c)
	require.Greater(t, len(tok), introspect.DefaultMaxTokenLength)
	require.Less(t, len(tok), introspect.DefaultMaxJWTSize)
	mw, _ := jwtMW(t, as, introspect.ValidateJWT)
	assert.Equal(t, http.StatusOK, serve(mw.Handler(okHandler), bearer(tok)).status)
	_, err := mw.Verify(context.Background(), tok)
	require.NoError(t, err)

	mw, _ = jwtMW(t, as, introspect.ValidateIntrospect)
	assert.Equal(t, http.StatusBadRequest, serve(mw.Handler(okHandler), bearer(tok)).status)
}
