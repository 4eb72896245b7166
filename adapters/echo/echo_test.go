package introspectecho_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/introspect-go/introspect"
	introspectecho "github.com/introspect-go/introspect/adapters/echo"
	"github.com/introspect-go/introspect/introspecttest"
)

const (
	clientID     = "rs"
	clientSecret = "rs-secret"
)

// newMiddleware returns a middleware that asks srv.
func newMiddleware(t *testing.T, srv *introspecttest.Server) *introspect.Middleware {
	t.Helper()
	mw, err := introspect.New(
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentials(clientID, clientSecret),
		introspect.WithRealm("api"),
		introspect.WithTimeout(2*time.Second),
	)
	if err != nil {
		t.Fatalf("introspect.New: %v", err)
	}
	return mw
}

// seen is what the handlers answer: the verdict they found.
type seen struct {
	Subject   string   `json:"sub"`
	Scopes    []string `json:"scopes"`
	OnRequest bool     `json:"on_request"` // also on the request context
}

// router serves /api/me (any active token), /api/admin (scope "admin") and
// /api/orders (audience "orders").
func router(mw *introspect.Middleware) *echo.Echo {
	e := echo.New()
	api := e.Group("/api", introspectecho.Authenticate(mw))
	handler := func(c echo.Context) error {
		ti, ok := introspectecho.FromContext(c)
		if !ok {
			return c.NoContent(http.StatusInternalServerError)
		}
		onReq, _ := introspect.FromContext(c.Request().Context())
		return c.JSON(http.StatusOK, seen{Subject: ti.Subject, Scopes: ti.Scopes, OnRequest: onReq == ti})
	}
	api.GET("/me", handler)
	api.GET("/admin", handler, introspectecho.RequireScope(mw, "admin"))
	api.GET("/orders", handler, introspectecho.RequireAudience(mw, "orders"))
	return e
}

// core is the reference: the same routes behind the core net/http middleware.
func core(mw *introspect.Middleware) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Subject: ti.Subject, Scopes: ti.Scopes, OnRequest: true})
	})
	mux := http.NewServeMux()
	mux.Handle("/api/me", h)
	mux.Handle("/api/admin", mw.RequireScope("admin")(h))
	mux.Handle("/api/orders", mw.RequireAudience("orders")(h))
	return mw.Handler(mux)
}

type testCase struct {
	name string
	path string
	// auth returns the Authorization header values to send and the secrets
	// that must not appear in the response.
	auth  func(t *testing.T, srv *introspecttest.Server) (header []string, secrets []string)
	fault *introspecttest.Fault // set on the server for this case
	down  bool                  // the authorization server is closed

	status int
	code   string // the error attribute of the challenge, "" for none
	sub    string // the subject the handler must see on success
}

func bearer(c introspecttest.Claims) func(*testing.T, *introspecttest.Server) ([]string, []string) {
	return func(t *testing.T, srv *introspecttest.Server) ([]string, []string) {
		tok := srv.Issue(c)
		return []string{"Bearer " + tok}, []string{tok}
	}
}

func raw(header ...string) func(*testing.T, *introspecttest.Server) ([]string, []string) {
	return func(*testing.T, *introspecttest.Server) ([]string, []string) {
		var secrets []string
		for _, h := range header {
			if _, v, ok := strings.Cut(h, " "); ok && strings.TrimSpace(v) != "" {
				secrets = append(secrets, strings.TrimSpace(v))
			}
		}
		return header, secrets
	}
}

func revoked(t *testing.T, srv *introspecttest.Server) ([]string, []string) {
	tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	srv.Revoke(tok)
	return []string{"Bearer " + tok}, []string{tok}
}

func fault(f introspecttest.Fault) *introspecttest.Fault { return &f }

var cases = []testCase{
	{name: "valid", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "read"}), status: 200, sub: "alice"},
	{name: "valid lowercase scheme", path: "/api/me", auth: func(t *testing.T, srv *introspecttest.Server) ([]string, []string) {
		tok := srv.Issue(introspecttest.Claims{Subject: "bob"})
		return []string{"bearer  " + tok}, []string{tok}
	}, status: 200, sub: "bob"},
	{name: "valid admin", path: "/api/admin", auth: bearer(introspecttest.Claims{Subject: "root", Scope: "read admin"}), status: 200, sub: "root"},
	{name: "valid audience", path: "/api/orders", auth: bearer(introspecttest.Claims{Subject: "svc", Audience: []string{"orders"}}), status: 200, sub: "svc"},
	{name: "missing", path: "/api/me", auth: raw(), status: 401},
	{name: "other scheme", path: "/api/me", auth: raw("Basic cnM6cnMtc2VjcmV0"), status: 401},
	{name: "scheme without token", path: "/api/me", auth: raw("Bearer"), status: 400, code: "invalid_request"},
	{name: "not a b64token", path: "/api/me", auth: raw(`Bearer abc"def`), status: 400, code: "invalid_request"},
	{name: "two headers", path: "/api/me", auth: raw("Bearer aaaa", "Bearer bbbb"), status: 400, code: "invalid_request"},
	{name: "too long", path: "/api/me", auth: raw("Bearer " + strings.Repeat("a", introspect.DefaultMaxTokenLength+1)), status: 400, code: "invalid_request"},
	{name: "unknown token", path: "/api/me", auth: raw("Bearer c29tZS1yYW5kb20tdG9rZW4"), status: 401, code: "invalid_token"},
	{name: "revoked", path: "/api/me", auth: revoked, status: 401, code: "invalid_token"},
	{name: "expired", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice", Expiry: time.Now().Add(-time.Hour)}), status: 401, code: "invalid_token"},
	{name: "not yet valid", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice", NotBefore: time.Now().Add(time.Hour)}), status: 401, code: "invalid_token"},
	{name: "insufficient scope", path: "/api/admin", auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "read"}), status: 403, code: "insufficient_scope"},
	{name: "wrong audience", path: "/api/orders", auth: bearer(introspecttest.Claims{Subject: "alice", Audience: []string{"billing"}}), status: 403, code: "insufficient_scope"},
	{name: "AS answers 503", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice"}),
		fault: fault(introspecttest.Respond(503, "application/json", `{"error":"temporarily_unavailable"}`, "Retry-After: 7")), status: 503},
	{name: "AS rejects client", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice"}),
		fault: fault(introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`)), status: 503},
	{name: "AS answers garbage", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice"}),
		fault: fault(introspecttest.Answer(`{"active":"yes"`)), status: 503},
	{name: "AS closed", path: "/api/me", auth: bearer(introspecttest.Claims{Subject: "alice"}), down: true, status: 503},
}

func TestAuthenticate(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
			defer srv.Close()
			mw := newMiddleware(t, srv)
			header, secrets := tc.auth(t, srv)
			if tc.fault != nil {
				srv.SetFault(*tc.fault)
			}
			if tc.down {
				srv.Close()
			}

			got := serve(t, router(mw), tc.path, header)
			want := serve(t, core(mw), tc.path, header)

			if got.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %q", got.Code, tc.status, got.Body)
			}
			assertSameResponse(t, got, want)
			assertChallenge(t, got, tc.status, tc.code)
			assertNoSecrets(t, got, secrets)
			if tc.status == http.StatusOK {
				var s seen
				if err := json.Unmarshal(got.Body.Bytes(), &s); err != nil {
					t.Fatalf("handler answer: %v", err)
				}
				if s.Subject != tc.sub || !s.OnRequest {
					t.Errorf("handler saw %+v, want subject %q on the echo and the request context", s, tc.sub)
				}
			}
		})
	}
}

func serve(t *testing.T, h http.Handler, path string, header []string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, v := range header {
		req.Header.Add("Authorization", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// assertSameResponse checks that the adapter answered as the core does.
func assertSameResponse(t *testing.T, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code {
		t.Errorf("status = %d, core answers %d", got.Code, want.Code)
	}
	if got.Code == http.StatusOK {
		return // the handlers differ; the verdict is checked by the caller
	}
	for _, h := range []string{"WWW-Authenticate", "Cache-Control", "Content-Type", "Retry-After", "X-Content-Type-Options"} {
		if g, w := got.Header().Values(h), want.Header().Values(h); strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s = %q, core answers %q", h, g, w)
		}
	}
	if got.Body.String() != want.Body.String() {
		t.Errorf("body = %q, core answers %q", got.Body, want.Body)
	}
}

// assertChallenge checks the RFC 6750 challenge itself.
func assertChallenge(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	ch := rec.Header().Get("WWW-Authenticate")
	switch status {
	case http.StatusOK:
		if ch != "" {
			t.Errorf("WWW-Authenticate = %q on success", ch)
		}
	case http.StatusServiceUnavailable:
		if ch != "" {
			t.Errorf("WWW-Authenticate = %q with no verdict", ch)
		}
	default:
		if !strings.HasPrefix(ch, `Bearer realm="api"`) {
			t.Errorf("WWW-Authenticate = %q, want a Bearer challenge with the realm", ch)
		}
		if code == "" && strings.Contains(ch, "error=") {
			t.Errorf("WWW-Authenticate = %q, want no error code", ch)
		}
		if code != "" && !strings.Contains(ch, `error="`+code+`"`) {
			t.Errorf("WWW-Authenticate = %q, want error %q", ch, code)
		}
	}
}

func assertNoSecrets(t *testing.T, rec *httptest.ResponseRecorder, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(rec.Body.String(), s) {
			t.Errorf("the response body contains a token")
		}
		for name, vs := range rec.Header() {
			for _, v := range vs {
				if strings.Contains(v, s) {
					t.Errorf("response header %s contains a token", name)
				}
			}
		}
	}
}

// TestRequireWithoutAuthenticate checks that a guard without a verdict in
// front refuses the request the way the core does (401).
func TestRequireWithoutAuthenticate(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()
	mw := newMiddleware(t, srv)
	e := echo.New()
	reached := false
	e.GET("/admin", func(echo.Context) error { reached = true; return nil }, introspectecho.RequireScope(mw, "admin"))
	rec := serve(t, e, "/admin", nil)
	if reached || rec.Code != http.StatusUnauthorized {
		t.Fatalf("reached = %v, status = %d; want 401 and the handler not reached", reached, rec.Code)
	}
}

// TestFromContextCoreInFront checks that FromContext and the guards see the
// verdict when the core middleware runs in front of echo.
func TestFromContextCoreInFront(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()
	mw := newMiddleware(t, srv)
	e := echo.New()
	e.GET("/admin", func(c echo.Context) error {
		ti, ok := introspectecho.FromContext(c)
		if !ok {
			return c.NoContent(http.StatusInternalServerError)
		}
		return c.String(http.StatusOK, ti.Subject)
	}, introspectecho.RequireAnyScope(mw, "admin", "root"))
	h := mw.Handler(e)
	tests := []struct {
		name   string
		scope  string
		status int
	}{
		{"granted", "root", http.StatusOK},
		{"refused", "read", http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.Issue(introspecttest.Claims{Subject: "carol", Scope: tc.scope})
			rec := serve(t, h, "/admin", []string{"Bearer " + tok})
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d", rec.Code, tc.status)
			}
			if tc.status == http.StatusOK && rec.Body.String() != "carol" {
				t.Errorf("body = %q, want the subject", rec.Body)
			}
		})
	}
}

func TestSkipper(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()
	mw := newMiddleware(t, srv)
	e := echo.New()
	e.Use(introspectecho.AuthenticateWithConfig(mw, introspectecho.Config{
		Skipper: func(c echo.Context) bool { return c.Path() == "/healthz" },
	}))
	ok := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
	e.GET("/healthz", ok)
	e.GET("/api/me", ok)
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"skipped", "/healthz", http.StatusOK},
		{"checked", "/api/me", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := srv.Calls()
			rec := serve(t, e, tc.path, []string{"Bearer c29tZS1yYW5kb20tdG9rZW4"})
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d", rec.Code, tc.status)
			}
			if tc.name == "skipped" && srv.Calls() != calls {
				t.Errorf("a skipped request reached the authorization server")
			}
		})
	}
}

// TestNoSecondResponse checks that a refused request is not answered again
// by echo's error handler.
func TestNoSecondResponse(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()
	mw := newMiddleware(t, srv)
	e := echo.New()
	handled := false
	e.HTTPErrorHandler = func(err error, c echo.Context) { handled = true }
	e.GET("/api/me", func(c echo.Context) error { return nil }, introspectecho.Authenticate(mw))
	rec := serve(t, e, "/api/me", nil)
	if rec.Code != http.StatusUnauthorized || handled {
		t.Fatalf("status = %d, error handler called = %v; want 401 from the middleware only", rec.Code, handled)
	}
}
