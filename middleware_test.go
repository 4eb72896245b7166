package introspect_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

const (
	rsClientID = "resource-server"
	rsSecret   = "s3cret:with/reserved+chars%&= ok"
)

// newAS starts a test authorization server that knows the resource server's client.
func newAS(t *testing.T, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	as := introspecttest.NewServer(append([]introspecttest.Option{introspecttest.WithClient(rsClientID, rsSecret)}, opts...)...)
	t.Cleanup(as.Close)
	return as
}

// newMW builds a middleware for as with extra options.
func newMW(t *testing.T, as *introspecttest.Server, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	base := []introspect.Option{
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithRealm("api"),
	}
	mw, err := introspect.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

// okHandler answers 200 with the subject of the token on the context.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	ti, ok := introspect.FromContext(r.Context())
	if !ok {
		_, _ = io.WriteString(w, "anonymous")
		return
	}
	_, _ = io.WriteString(w, "sub="+ti.Subject)
})

type result struct {
	status    int
	challenge string
	header    http.Header
	body      string
}

func serve(h http.Handler, r *http.Request) result {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return result{status: rec.Code, challenge: rec.Header().Get("WWW-Authenticate"), header: rec.Header(), body: rec.Body.String()}
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// assertNoLeak checks that no secret appears in the response.
func assertNoLeak(t *testing.T, res result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		assert.NotContains(t, res.body, s, "body reveals a secret")
		for k, vs := range res.header {
			for _, v := range vs {
				assert.NotContains(t, v, s, "header %s reveals a secret", k)
			}
		}
	}
}

func TestStatusTable(t *testing.T) {
	as := newAS(t)
	now := time.Now()
	good := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read write", Audience: []string{"api"}})
	expired := as.Issue(introspecttest.Claims{Subject: "old", Expiry: now.Add(-time.Minute)})
	revoked := as.Issue(introspecttest.Claims{Subject: "gone"})
	as.Revoke(revoked)
	future := as.Issue(introspecttest.Claims{Subject: "soon", NotBefore: now.Add(time.Hour)})
	wrongIss := as.Issue(introspecttest.Claims{Subject: "x", Issuer: "https://evil.example"})

	tests := []struct {
		name      string
		opts      []introspect.Option
		fault     *introspecttest.Fault
		req       func() *http.Request
		guard     func(*introspect.Middleware) func(http.Handler) http.Handler
		status    int
		challenge string
		token     string // must not leak
	}{
		{name: "valid", req: func() *http.Request { return bearer(good) }, status: 200},
		{name: "no token", req: func() *http.Request { return bearer("") }, status: 401, challenge: `Bearer realm="api"`},
		{name: "basic scheme is no bearer token", req: func() *http.Request {
			r := bearer("")
			r.SetBasicAuth("user", "pass")
			return r
		}, status: 401, challenge: `Bearer realm="api"`},
		{name: "no token with resource metadata",
			opts:      []introspect.Option{introspect.WithResourceMetadata("https://api.example.com/.well-known/oauth-protected-resource")},
			req:       func() *http.Request { return bearer("") },
			status:    401,
			challenge: `Bearer realm="api", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`},
		{name: "malformed header", req: func() *http.Request {
			r := bearer("")
			r.Header.Set("Authorization", "Bearer a b")
			return r
		}, status: 400, challenge: `Bearer realm="api", error="invalid_request", error_description="the request is malformed"`},
		{name: "two authorization headers", req: func() *http.Request {
			r := bearer(good)
			r.Header.Add("Authorization", "Bearer "+good)
			return r
		}, status: 400, challenge: `Bearer realm="api", error="invalid_request", error_description="the request is malformed"`, token: good},
		{name: "over-long token", req: func() *http.Request { return bearer(strings.Repeat("a", 4097)) }, status: 400,
			challenge: `Bearer realm="api", error="invalid_request", error_description="the request is malformed"`},
		{name: "inactive (never issued)", req: func() *http.Request { return bearer("never-issued-token") }, status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="the access token is not valid"`, token: "never-issued-token"},
		{name: "revoked", req: func() *http.Request { return bearer(revoked) }, status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="the access token is not valid"`, token: revoked},
		{name: "expired per the server", req: func() *http.Request { return bearer(expired) }, status: 401, token: expired,
			challenge: `Bearer realm="api", error="invalid_token", error_description="the access token is not valid"`},
		{name: "exp past though active", fault: ptr(introspecttest.Answer(`{"active":true,"sub":"x","exp":1000}`)),
			req: func() *http.Request { return bearer(good) }, status: 401, token: good,
			challenge: `Bearer realm="api", error="invalid_token", error_description="the access token is not valid"`},
		{name: "nbf in the future", req: func() *http.Request { return bearer(future) }, status: 401, token: future},
		{name: "wrong issuer", opts: []introspect.Option{introspect.WithExpectedIssuer(as.Issuer)},
			req: func() *http.Request { return bearer(wrongIss) }, status: 401, token: wrongIss},
		{name: "right issuer", opts: []introspect.Option{introspect.WithExpectedIssuer(as.Issuer)},
			req: func() *http.Request { return bearer(good) }, status: 200},
		{name: "wrong audience", opts: []introspect.Option{introspect.WithExpectedAudience("other-api")},
			req: func() *http.Request { return bearer(good) }, status: 401, token: good},
		{name: "client not allowed", opts: []introspect.Option{introspect.WithAllowedClientIDs("some-app")},
			req: func() *http.Request { return bearer(good) }, status: 401, token: good},
		{name: "scope missing", guard: func(m *introspect.Middleware) func(http.Handler) http.Handler { return m.RequireScope("read", "admin") },
			req: func() *http.Request { return bearer(good) }, status: 403, token: good,
			challenge: `Bearer realm="api", error="insufficient_scope", error_description="the access token does not grant access to this resource", scope="read admin"`},
		{name: "scopes present", guard: func(m *introspect.Middleware) func(http.Handler) http.Handler { return m.RequireScope("read", "write") },
			req: func() *http.Request { return bearer(good) }, status: 200},
		{name: "any scope", guard: func(m *introspect.Middleware) func(http.Handler) http.Handler {
			return m.RequireAnyScope("admin", "write")
		},
			req: func() *http.Request { return bearer(good) }, status: 200},
		{name: "any scope missing", guard: func(m *introspect.Middleware) func(http.Handler) http.Handler {
			return m.RequireAnyScope("admin", "root")
		},
			req: func() *http.Request { return bearer(good) }, status: 403, token: good},
		{name: "audience guard", guard: func(m *introspect.Middleware) func(http.Handler) http.Handler { return m.RequireAudience("api") },
			req: func() *http.Request { return bearer(good) }, status: 200},
		{name: "audience guard fails", guard: func(m *introspect.Middleware) func(http.Handler) http.Handler { return m.RequireAudience("billing") },
			req: func() *http.Request { return bearer(good) }, status: 403, token: good,
			challenge: `Bearer realm="api", error="insufficient_scope", error_description="the access token does not grant access to this resource"`},
		{name: "AS says 400 invalid_token", fault: ptr(introspecttest.InvalidTokenError()),
			req: func() *http.Request { return bearer(revoked) }, status: 401, token: revoked},
		{name: "AS 503 with Retry-After", fault: ptr(introspecttest.Respond(503, "text/plain", "down", "Retry-After: 7")),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "AS 500", fault: ptr(introspecttest.Respond(500, "application/json", `{"error":"server_error","error_description":"`+good+`"}`)),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "AS rejects our credentials", fault: ptr(introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`)),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "AS 400 invalid_client", fault: ptr(introspecttest.Respond(400, "application/json", `{"error":"invalid_client"}`)),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "AS answers HTML", fault: ptr(introspecttest.Respond(200, "text/html", "<html>login</html>")),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "AS answers non-object JSON", fault: ptr(introspecttest.Answer(`[true]`)),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "active as a string", fault: ptr(introspecttest.Answer(`{"active":"true"}`)),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "oversized answer", fault: ptr(introspecttest.Oversized(2 << 20)),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
		{name: "redirect", fault: ptr(introspecttest.Redirect("https://elsewhere.example/introspect")),
			req: func() *http.Request { return bearer(good) }, status: 503, token: good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				as.SetFault(*tt.fault)
				t.Cleanup(as.ClearFault)
			}
			mw := newMW(t, as, tt.opts...)
			var h http.Handler = okHandler
			if tt.guard != nil {
				h = tt.guard(mw)(h)
			}
			res := serve(mw.Handler(h), tt.req())
			assert.Equal(t, tt.status, res.status, "body: %s", res.body)
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, res.challenge)
			}
			switch {
			case tt.status == 200:
				assert.Empty(t, res.challenge)
			case tt.status == 503:
				assert.Empty(t, res.challenge, "a 503 is no authentication challenge")
				assert.Contains(t, res.body, "temporarily_unavailable")
			default:
				assert.True(t, strings.HasPrefix(res.challenge, `Bearer realm="api"`), "challenge %q", res.challenge)
			}
			if tt.status != 200 {
				assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
			}
			assertNoLeak(t, res, tt.token, rsSecret)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRetryAfterPassedOn(t *testing.T) {
	as := newAS(t)
	as.SetFault(introspecttest.Respond(429, "application/json", `{"error":"slow_down"}`, "Retry-After: 3"))
	res := serve(newMW(t, as).Handler(okHandler), bearer("some-token"))
	assert.Equal(t, 503, res.status)
	assert.Equal(t, "3", res.header.Get("Retry-After"))
}

func TestOptionalToken(t *testing.T) {
	as := newAS(t)
	good := as.Issue(introspecttest.Claims{Subject: "alice"})
	h := newMW(t, as, introspect.WithOptionalToken()).Handler(okHandler)

	res := serve(h, bearer(""))
	assert.Equal(t, 200, res.status)
	assert.Equal(t, "anonymous", res.body)

	res = serve(h, bearer(good))
	assert.Equal(t, 200, res.status)
	assert.Equal(t, "sub=alice", res.body)

	res = serve(h, bearer("unknown"))
	assert.Equal(t, 401, res.status, "an invalid token is refused even when a token is optional")

	r := bearer("")
	r.Header.Set("Authorization", "Bearer bad token")
	assert.Equal(t, 400, serve(h, r).status, "a malformed request is refused even when a token is optional")
}

func TestGuardWithoutMiddlewareIsUnauthorized(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as)
	res := serve(mw.RequireScope("read")(okHandler), bearer(""))
	assert.Equal(t, 401, res.status)
}

func TestCustomResponders(t *testing.T) {
	as := newAS(t)
	revoked := as.Issue(introspecttest.Claims{Subject: "x"})
	as.Revoke(revoked)
	var gotTI *introspect.Introspection
	var gotErr error
	mw := newMW(t, as,
		introspect.WithInactiveTokenResponder(func(w http.ResponseWriter, _ *http.Request, ti *introspect.Introspection) {
			gotTI = ti
			w.WriteHeader(http.StatusTeapot)
		}),
		introspect.WithErrorResponder(func(w http.ResponseWriter, _ *http.Request, err error) {
			gotErr = err
			w.WriteHeader(http.StatusNotAcceptable)
		}),
	)
	h := mw.Handler(okHandler)

	assert.Equal(t, http.StatusTeapot, serve(h, bearer(revoked)).status)
	require.NotNil(t, gotTI)
	assert.False(t, gotTI.Active)

	assert.Equal(t, http.StatusNotAcceptable, serve(h, bearer("")).status)
	assert.ErrorIs(t, gotErr, introspect.ErrMissingToken)

	as.SetFault(introspecttest.Respond(502, "", ""))
	assert.Equal(t, http.StatusNotAcceptable, serve(h, bearer(revoked)).status)
	var re *introspect.ResponseError
	require.ErrorAs(t, gotErr, &re)
	assert.Equal(t, 502, re.StatusCode)
	assert.ErrorIs(t, gotErr, introspect.ErrUnavailable)
}

func TestAuthenticateForAdapters(t *testing.T) {
	as := newAS(t)
	good := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	mw := newMW(t, as)

	ti, err := mw.Authenticate(bearer(good))
	require.NoError(t, err)
	assert.Equal(t, "alice", ti.Subject)
	assert.Equal(t, []string{"read"}, ti.Scopes)
	assert.NoError(t, introspect.Authorize(ti, introspect.AllScopes("read")))

	err = introspect.Authorize(ti, introspect.AllScopes("admin"))
	var se *introspect.InsufficientScopeError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, []string{"admin"}, se.Scopes)
	assert.Equal(t, 403, introspect.StatusCode(err))

	assert.ErrorIs(t, introspect.Authorize(nil, introspect.AllScopes("read")), introspect.ErrMissingToken)
	// A check that fails without a verdict fails closed.
	err = introspect.Authorize(ti, func(*introspect.Introspection) error { return errors.New("database down") })
	assert.Equal(t, 503, introspect.StatusCode(err))

	rec := httptest.NewRecorder()
	_, err = mw.Authenticate(bearer(""))
	mw.WriteError(rec, bearer(""), nil, err)
	assert.Equal(t, 401, rec.Code)
}

func TestClientStoreTenants(t *testing.T) {
	asA, asB := newAS(t), newAS(t)
	tokA := asA.Issue(introspecttest.Claims{Subject: "a-user"})
	tokB := asB.Issue(introspecttest.Claims{Subject: "b-user"})
	store := introspect.ClientStoreFunc(func(r *http.Request) (introspect.ClientContext, error) {
		tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch tenant {
		case "a":
			return introspect.ClientContext{Endpoint: asA.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: rsClientID, ClientSecret: rsSecret}}, nil
		case "b":
			return introspect.ClientContext{Endpoint: asB.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: rsClientID, ClientSecret: rsSecret, AuthMethod: introspect.ClientSecretPost}}, nil
		}
		return introspect.ClientContext{}, errors.Join(introspect.ErrInvalidRequest, errors.New("unknown tenant"))
	})
	cache, err := introspect.NewLRUCache(100)
	require.NoError(t, err)
	mw, err := introspect.New(introspect.WithClientStore(store), introspect.WithCache(cache))
	require.NoError(t, err)
	h := mw.Handler(okHandler)
	req := func(path, tok string) result {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return serve(h, r)
	}
	assert.Equal(t, "sub=a-user", req("/a/x", tokA).body)
	assert.Equal(t, "sub=b-user", req("/b/x", tokB).body)
	assert.Equal(t, "client_secret_post", asB.LastRequest().AuthMethod)
	// A token of tenant a is unknown at tenant b, even after it was cached for a.
	assert.Equal(t, 401, req("/b/x", tokA).status)
	assert.Equal(t, 200, req("/a/x", tokA).status)
	assert.Equal(t, int64(1), asA.Calls(), "tenant a's second request is a cache hit")
	assert.Equal(t, int64(2), asB.Calls())
	assert.Equal(t, 400, req("/c/x", tokA).status)

	_, err = introspect.New(introspect.WithClientStore(store), introspect.WithEndpoint(asA.IntrospectionURL()))
	assert.Error(t, err, "store and static options together")
	assert.Error(t, mw.Evict(context.Background(), tokA), "Evict needs EvictAs with a store")
}

func TestClientStoreEndpointChecked(t *testing.T) {
	store := introspect.StaticClientStore{Endpoint: "http://as.example.com/introspect", Credentials: introspect.Credentials{ClientID: "x"}}
	mw, err := introspect.New(introspect.WithClientStore(store))
	require.NoError(t, err)
	res := serve(mw.Handler(okHandler), bearer("tok"))
	assert.Equal(t, 503, res.status, "plain http to a remote host is refused per request")
}

func TestLazyCredentialsCalledOnMissesOnly(t *testing.T) {
	as := newAS(t)
	good := as.Issue(introspecttest.Claims{Subject: "alice"})
	var calls atomic.Int64
	cache, err := introspect.NewLRUCache(10)
	require.NoError(t, err)
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentialsFunc(rsClientID, func(context.Context) (string, error) {
			calls.Add(1)
			return rsSecret, nil
		}),
		introspect.WithCache(cache),
	)
	require.NoError(t, err)
	h := mw.Handler(okHandler)
	for range 5 {
		assert.Equal(t, 200, serve(h, bearer(good)).status)
	}
	assert.Equal(t, int64(1), calls.Load())

	failing, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentialsFunc(rsClientID, func(context.Context) (string, error) {
			return "", errors.New("vault sealed")
		}),
	)
	require.NoError(t, err)
	assert.Equal(t, 503, serve(failing.Handler(okHandler), bearer(good)).status)
}

func TestNewRejectsMisconfiguration(t *testing.T) {
	ep := introspect.WithEndpoint("https://as.example.com/introspect")
	creds := introspect.WithClientCredentials("id", "secret")
	cache, err := introspect.NewLRUCache(10)
	require.NoError(t, err)
	tests := []struct {
		name string
		opts []introspect.Option
	}{
		{"nothing", nil},
		{"no credentials", []introspect.Option{ep}},
		{"no endpoint", []introspect.Option{creds}},
		{"plain http", []introspect.Option{introspect.WithEndpoint("http://as.example.com/introspect"), creds}},
		{"relative endpoint", []introspect.Option{introspect.WithEndpoint("/introspect"), creds}},
		{"nil option", []introspect.Option{ep, creds, nil}},
		{"empty client id", []introspect.Option{ep, introspect.WithClientCredentials("", "s")}},
		{"bad auth method", []introspect.Option{ep, creds, introspect.WithAuthMethod("magic")}},
		{"realm with CRLF", []introspect.Option{ep, creds, introspect.WithRealm("a\r\nSet-Cookie: x=y")}},
		{"bad resource metadata", []introspect.Option{ep, creds, introspect.WithResourceMetadata("not a url")}},
		{"zero timeout", []introspect.Option{ep, creds, introspect.WithTimeout(0)}},
		{"refresh window not under max TTL", []introspect.Option{ep, creds, introspect.WithCache(cache),
			introspect.WithMaxTTL(time.Minute), introspect.WithRefreshAhead(time.Minute)}},
		{"negative stale TTL", []introspect.Option{ep, creds, introspect.WithStaleIfError(-1)}},
		{"nil cache", []introspect.Option{ep, creds, introspect.WithCache(nil)}},
		{"zero bulkhead", []introspect.Option{ep, creds, introspect.WithMaxConcurrentIntrospections(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := introspect.New(tt.opts...)
			assert.Error(t, err)
			assert.Nil(t, mw)
			if err != nil {
				assert.NotContains(t, err.Error(), "secret")
				assert.True(t, strings.HasPrefix(err.Error(), "introspect: "), "error %q", err)
			}
		})
	}
	_, err = introspect.NewClient(ep, creds, introspect.WithRealm("x"))
	assert.ErrorContains(t, err, "WithRealm applies to the middleware")
}

// selfSignedTLS serves h over TLS asking for (not verifying) client certificates.
func selfSignedTLS(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTokenBinding(t *testing.T) {
	as := newAS(t)
	// The TLS server's own certificate serves as the client certificate.
	api := selfSignedTLS(t, nil)
	cert := api.TLS.Certificates[0]
	sum := sha256.Sum256(cert.Certificate[0])
	thumb := base64.RawURLEncoding.EncodeToString(sum[:])
	bound := as.Issue(introspecttest.Claims{Subject: "mtls", Confirmation: map[string]string{"x5t#S256": thumb}})
	otherBound := as.Issue(introspecttest.Claims{Subject: "mtls", Confirmation: map[string]string{"x5t#S256": strings.Repeat("A", 43)}})
	dpop := as.Issue(introspecttest.Claims{Subject: "dpop", Confirmation: map[string]string{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})

	strict := newMW(t, as)
	lax := newMW(t, as, introspect.InsecureSkipTokenBinding())
	api.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/lax" {
			lax.Handler(okHandler).ServeHTTP(w, r)
			return
		}
		strict.Handler(okHandler).ServeHTTP(w, r)
	})
	noCert := api.Client()
	tr := noCert.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	withCert := &http.Client{Transport: tr}

	call := func(c *http.Client, path, tok string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, api.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 200, call(withCert, "/", bound), "matching client certificate")
	assert.Equal(t, 401, call(noCert, "/", bound), "no client certificate")
	assert.Equal(t, 401, call(withCert, "/", otherBound), "another certificate")
	assert.Equal(t, 401, call(withCert, "/", dpop), "DPoP-bound token presented as Bearer")
	assert.Equal(t, 200, call(noCert, "/lax", bound), "binding checks off")
	assert.Equal(t, 200, call(noCert, "/lax", dpop), "binding checks off")
}
