// Package conformance checks that a framework adapter answers as the core
// middleware does. Every adapter's tests run the same cases (valid, missing,
// malformed, inactive, insufficient scope, authorization server down) against
// a real introspecttest server, and compare each answer with the core's
// net/http middleware's answer to the same request. The HTTP adapters also
// run the checks of their guards ([RunGuards], [RunRequire]), of the
// reports of refusals ([RunRejected]) and of DPoP ([RunDPoP],
// [RunDPoPNonce]).
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// The client the middleware presents to the authorization server, and the
// realm of its challenges.
const (
	ClientID     = "rs"
	ClientSecret = "rs-secret"
	Realm        = "api"
)

// The routes a router under test serves; each handler answers 200 with a
// JSON [Seen].
const (
	PathMe     = "/api/me"     // any active token
	PathAdmin  = "/api/admin"  // scope "admin"
	PathOrders = "/api/orders" // audience "orders"
)

// Seen is what the handlers answer: the verdict they found.
type Seen struct {
	Subject string `json:"sub"`
	// OnRequest says the framework's accessor and introspect.FromContext on
	// the request context returned the same verdict.
	OnRequest bool `json:"on_request"`
}

// NewServer starts an authorization server that knows [ClientID], closed
// when the test ends.
func NewServer(t *testing.T) *introspecttest.Server {
	t.Helper()
	srv := introspecttest.NewServer(introspecttest.WithClient(ClientID, ClientSecret))
	t.Cleanup(srv.Close)
	return srv
}

// NewMiddleware returns a middleware that asks srv, closed when the test
// ends.
func NewMiddleware(t *testing.T, srv *introspecttest.Server, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	opts = append([]introspect.Option{
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentials(ClientID, ClientSecret),
		introspect.WithRealm(Realm),
		introspect.WithTimeout(2 * time.Second),
	}, opts...)
	mw, err := introspect.New(opts...)
	if err != nil {
		t.Fatalf("introspect.New: %v", err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

// Auth returns the Authorization header values of a request, and the
// secrets (tokens, header contents) that must not appear in the answer.
type Auth func(srv *introspecttest.Server) (values, secrets []string)

// Bearer issues a token with c and sends it.
func Bearer(c introspecttest.Claims) Auth {
	return func(srv *introspecttest.Server) ([]string, []string) {
		tok := srv.Issue(c)
		return []string{"Bearer " + tok}, []string{tok}
	}
}

// Raw sends the header values as they are.
func Raw(values ...string) Auth {
	return func(*introspecttest.Server) ([]string, []string) {
		var secrets []string
		for _, v := range values {
			if _, tok, ok := strings.Cut(v, " "); ok && strings.TrimSpace(tok) != "" {
				secrets = append(secrets, strings.TrimSpace(tok))
			}
		}
		return values, secrets
	}
}

// Revoked issues a token, revokes it and sends it.
func Revoked(srv *introspecttest.Server) ([]string, []string) {
	tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "read admin"})
	srv.Revoke(tok)
	return []string{"Bearer " + tok}, []string{tok}
}

// Case is a request and the answer it must get.
type Case struct {
	Name  string
	Path  string
	Auth  Auth
	Fault *introspecttest.Fault // set on the server before the request
	Down  bool                  // the authorization server is closed before the request

	Status  int    // the HTTP status
	Code    string // the error attribute of the challenge, "" for none
	Subject string // the subject the handler sees on success
}

// Prepare starts a server and a middleware for c, and returns them with the
// header values to send and the secrets that must not be answered back.
func (c Case) Prepare(t *testing.T) (srv *introspecttest.Server, mw *introspect.Middleware, values, secrets []string) {
	t.Helper()
	srv = NewServer(t)
	mw = NewMiddleware(t, srv)
	values, secrets = c.Auth(srv)
	if c.Fault != nil {
		srv.SetFault(*c.Fault)
	}
	if c.Down {
		srv.Close()
	}
	return srv, mw, values, secrets
}

func fault(f introspecttest.Fault) *introspecttest.Fault { return &f }

// Cases returns the cases every adapter must pass.
func Cases() []Case {
	claims := introspecttest.Claims{Subject: "alice", Scope: "read"}
	return []Case{
		{Name: "valid", Path: PathMe, Auth: Bearer(claims), Status: 200, Subject: "alice"},
		{Name: "valid lowercase scheme", Path: PathMe, Auth: func(srv *introspecttest.Server) ([]string, []string) {
			tok := srv.Issue(introspecttest.Claims{Subject: "bob"})
			return []string{"bearer  " + tok}, []string{tok}
		}, Status: 200, Subject: "bob"},
		{Name: "valid admin", Path: PathAdmin, Auth: Bearer(introspecttest.Claims{Subject: "root", Scope: "read admin"}), Status: 200, Subject: "root"},
		{Name: "valid audience", Path: PathOrders, Auth: Bearer(introspecttest.Claims{Subject: "svc", Audience: []string{"orders"}}), Status: 200, Subject: "svc"},
		{Name: "missing", Path: PathMe, Auth: Raw(), Status: 401},
		{Name: "missing admin", Path: PathAdmin, Auth: Raw(), Status: 401},
		{Name: "other scheme", Path: PathMe, Auth: Raw("Basic cnM6cnMtc2VjcmV0"), Status: 401},
		{Name: "scheme without token", Path: PathMe, Auth: Raw("Bearer"), Status: 400, Code: "invalid_request"},
		{Name: "not a b64token", Path: PathMe, Auth: Raw(`Bearer abc"def`), Status: 400, Code: "invalid_request"},
		{Name: "two headers", Path: PathMe, Auth: Raw("Bearer aaaa", "Bearer bbbb"), Status: 400, Code: "invalid_request"},
		{Name: "too long", Path: PathAdmin, Auth: Raw("Bearer " + strings.Repeat("a", introspect.DefaultMaxTokenLength+1)), Status: 400, Code: "invalid_request"},
		{Name: "unknown token", Path: PathMe, Auth: Raw("Bearer c29tZS1yYW5kb20tdG9rZW4"), Status: 401, Code: "invalid_token"},
		{Name: "revoked", Path: PathAdmin, Auth: Revoked, Status: 401, Code: "invalid_token"},
		{Name: "expired", Path: PathMe, Auth: Bearer(introspecttest.Claims{Subject: "alice", Expiry: time.Now().Add(-time.Hour)}), Status: 401, Code: "invalid_token"},
		{Name: "not yet valid", Path: PathMe, Auth: Bearer(introspecttest.Claims{Subject: "alice", NotBefore: time.Now().Add(time.Hour)}), Status: 401, Code: "invalid_token"},
		{Name: "insufficient scope", Path: PathAdmin, Auth: Bearer(claims), Status: 403, Code: "insufficient_scope"},
		{Name: "wrong audience", Path: PathOrders, Auth: Bearer(introspecttest.Claims{Subject: "alice", Audience: []string{"billing"}}), Status: 403, Code: "insufficient_scope"},
		{Name: "AS answers 503", Path: PathMe, Auth: Bearer(claims), Status: 503,
			Fault: fault(introspecttest.Respond(503, "application/json", `{"error":"temporarily_unavailable"}`, "Retry-After: 7"))},
		{Name: "AS rejects client", Path: PathAdmin, Auth: Bearer(introspecttest.Claims{Subject: "alice", Scope: "admin"}), Status: 503,
			Fault: fault(introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`))},
		{Name: "AS answers garbage", Path: PathMe, Auth: Bearer(claims), Status: 503,
			Fault: fault(introspecttest.Answer(`{"active":"yes"`))},
		{Name: "AS closed", Path: PathMe, Auth: Bearer(claims), Down: true, Status: 503},
	}
}

// Core is the reference: the routes behind the core net/http middleware.
func Core(mw *introspect.Middleware) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Seen{Subject: ti.Subject, OnRequest: true})
	})
	mux := http.NewServeMux()
	mux.Handle(PathMe, h)
	mux.Handle(PathAdmin, mw.RequireScope("admin")(h))
	mux.Handle(PathOrders, mw.RequireAudience("orders")(h))
	return mw.Handler(mux)
}

// RunHTTP runs every case of [Cases] through router(mw), which must serve
// the routes of [PathMe], [PathAdmin] and [PathOrders] with the adapter, and
// checks each answer against the case and against [Core].
func RunHTTP(t *testing.T, router func(mw *introspect.Middleware) http.Handler) {
	t.Helper()
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			_, mw, values, secrets := c.Prepare(t)
			got := Serve(t, router(mw), c.Path, values)
			want := Serve(t, Core(mw), c.Path, values)

			if got.Code != c.Status {
				t.Fatalf("status = %d, want %d; body %q", got.Code, c.Status, got.Body)
			}
			sameResponse(t, got, want)
			challenge(t, got, c.Status, c.Code)
			noSecrets(t, got, secrets)
			if c.Status == http.StatusOK {
				var s Seen
				if err := json.Unmarshal(got.Body.Bytes(), &s); err != nil {
					t.Fatalf("handler answer: %v", err)
				}
				if s.Subject != c.Subject || !s.OnRequest {
					t.Errorf("handler saw %+v, want subject %q from the framework's accessor and the request context", s, c.Subject)
				}
			}
		})
	}
}

// Serve sends a GET for path with the Authorization header values to h.
func Serve(t *testing.T, h http.Handler, path string, values []string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, v := range values {
		req.Header.Add("Authorization", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// sameResponse checks that a refusal is the core's, header for header.
func sameResponse(t *testing.T, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code {
		t.Errorf("status = %d, core answers %d", got.Code, want.Code)
	}
	if got.Code == http.StatusOK {
		return // the handlers differ; the caller checks what they saw
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

// challenge checks the RFC 6750 challenge itself.
func challenge(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	ch := rec.Header().Get("WWW-Authenticate")
	switch status {
	case http.StatusOK, http.StatusServiceUnavailable:
		if ch != "" {
			t.Errorf("WWW-Authenticate = %q with status %d", ch, status)
		}
	default:
		if !strings.HasPrefix(ch, `Bearer realm="`+Realm+`"`) {
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

func noSecrets(t *testing.T, rec *httptest.ResponseRecorder, secrets []string) {
	t.Helper()
	var sent []string
	sent = append(sent, rec.Body.String())
	for name, vs := range rec.Header() {
		sent = append(sent, name)
		sent = append(sent, vs...)
	}
	NoSecrets(t, sent, secrets)
}

// NoSecrets fails the test if any of sent contains one of secrets.
func NoSecrets(t *testing.T, sent, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		for _, v := range sent {
			if strings.Contains(v, s) {
				t.Errorf("the answer contains a token or the Authorization header")
			}
		}
	}
}

// RunCoreInFront checks that an adapter's accessor and guards see the
// verdict when the core middleware runs in front of the framework instead of
// the adapter's own middleware. router(mw) must serve [PathAdmin] behind the
// adapter's guard for any of the scopes "admin" and "root", with a handler
// that answers 200 and the subject the adapter's accessor returns.
func RunCoreInFront(t *testing.T, router func(mw *introspect.Middleware) http.Handler) {
	t.Helper()
	srv := NewServer(t)
	mw := NewMiddleware(t, srv)
	h := mw.Handler(router(mw))
	tests := []struct {
		name   string
		scope  string
		status int
		body   string
	}{
		{"granted", "root", http.StatusOK, "carol"},
		{"refused", "read", http.StatusForbidden, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.Issue(introspecttest.Claims{Subject: "carol", Scope: tc.scope})
			rec := Serve(t, h, PathAdmin, []string{"Bearer " + tok})
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d", rec.Code, tc.status)
			}
			if tc.body != "" && rec.Body.String() != tc.body {
				t.Errorf("body = %q, want %q", rec.Body, tc.body)
			}
		})
	}
}

// Anonymous is what the routes given to [RunOptional] answer when the
// framework's accessor finds no verdict.
const Anonymous = "anonymous"

// RunOptional checks [introspect.WithOptionalToken] through an adapter:
// router must serve GET /api/me answering the subject of the verdict, or
// [Anonymous] when there is none. A request without a token reaches the
// handler with no verdict; a valid token still gets its verdict; an invalid
// or malformed one is still refused exactly as the core refuses it.
func RunOptional(t *testing.T, router func(mw *introspect.Middleware) http.Handler) {
	t.Helper()
	srv := NewServer(t)
	mw := NewMiddleware(t, srv, introspect.WithOptionalToken())
	h := router(mw)
	good := srv.Issue(introspecttest.Claims{Subject: "alice"})
	for _, tc := range []struct {
		name   string
		values []string
		status int
		body   string
	}{
		{"no token", nil, http.StatusOK, Anonymous},
		{"another scheme", []string{"Basic dXNlcjpwYXNz"}, http.StatusOK, Anonymous},
		{"valid token", []string{"Bearer " + good}, http.StatusOK, "alice"},
		{"unknown token", []string{"Bearer never-issued"}, http.StatusUnauthorized, ""},
		{"malformed", []string{"Bearer a b"}, http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := Serve(t, h, "/api/me", tc.values)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.status, rec.Body.String())
			}
			if tc.body != "" && strings.TrimSpace(rec.Body.String()) != tc.body {
				t.Fatalf("body %q, want %q", rec.Body.String(), tc.body)
			}
			if tc.status != http.StatusOK {
				sameResponse(t, rec, Serve(t, mw.Handler(http.NotFoundHandler()), "/api/me", tc.values))
			}
		})
	}
}

// Guard names a guard that every HTTP adapter offers, by the name of its
// function.
type Guard string

// The guards of [RunGuards].
const (
	GuardScope    Guard = "RequireScope"    // every one of the scopes
	GuardAnyScope Guard = "RequireAnyScope" // any one of the scopes
	GuardAudience Guard = "RequireAudience" // any one of the audiences
)

// GuardRouter serves [PathMe] behind the adapter's authentication middleware
// and the adapter's guard g built with values, with a handler that answers
// 200. Building the guard may panic.
type GuardRouter func(mw *introspect.Middleware, g Guard, values ...string) http.Handler

// RunGuards checks an adapter's guards: each panics when it is built for
// values that no token or every token would meet, with a message that starts
// with pkg (the adapter's package name) and the guard's name and names the
// problem; built for valid values, each lets a token through or refuses it
// (403) as the core's guard does.
func RunGuards(t *testing.T, pkg string, router GuardRouter) {
	t.Helper()
	srv := NewServer(t)
	mw := NewMiddleware(t, srv)
	t.Run("refused when built", func(t *testing.T) {
		for _, tc := range []struct {
			guard  Guard
			values []string
			want   string // in the panic message, after pkg and the guard's name
		}{
			{GuardScope, nil, "no scopes"},
			{GuardScope, []string{""}, `""`},
			{GuardScope, []string{"read write"}, `"read write"`},
			{GuardScope, []string{"read", "a\"b"}, `"a\"b"`},
			{GuardAnyScope, nil, "no scopes"},
			{GuardAnyScope, []string{""}, `""`},
			{GuardAnyScope, []string{"read", "read write"}, `"read write"`},
			{GuardAudience, nil, "no audiences"},
			{GuardAudience, []string{"orders", ""}, "an empty audience"},
		} {
			t.Run(fmt.Sprintf("%s%q", tc.guard, tc.values), func(t *testing.T) {
				msg := panicOf(t, func() { router(mw, tc.guard, tc.values...) })
				prefix := pkg + ": " + string(tc.guard) + ": "
				if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.want) {
					t.Errorf("panic %q, want one that starts with %q and names %s", msg, prefix, tc.want)
				}
			})
		}
	})
	t.Run("built", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			guard  Guard
			values []string
			claims introspecttest.Claims
			status int
		}{
			{"all scopes held", GuardScope, []string{"read", "orders:write"}, introspecttest.Claims{Scope: "orders:write admin read"}, http.StatusOK},
			{"one scope missing", GuardScope, []string{"read", "orders:write"}, introspecttest.Claims{Scope: "read"}, http.StatusForbidden},
			{"one of the scopes held", GuardAnyScope, []string{"read", "orders:write"}, introspecttest.Claims{Scope: "orders:write"}, http.StatusOK},
			{"none of the scopes held", GuardAnyScope, []string{"read", "orders:write"}, introspecttest.Claims{Scope: "admin"}, http.StatusForbidden},
			{"one of the audiences", GuardAudience, []string{"orders", "billing"}, introspecttest.Claims{Audience: []string{"billing"}}, http.StatusOK},
			{"another audience", GuardAudience, []string{"orders", "billing"}, introspecttest.Claims{Audience: []string{"shipping"}}, http.StatusForbidden},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.claims.Subject = "alice"
				values := []string{"Bearer " + srv.Issue(tc.claims)}
				got := Serve(t, router(mw, tc.guard, tc.values...), PathMe, values)
				if got.Code != tc.status {
					t.Fatalf("status = %d, want %d; body %q", got.Code, tc.status, got.Body)
				}
				var core func(http.Handler) http.Handler
				switch tc.guard {
				case GuardScope:
					core = mw.RequireScope(tc.values...)
				case GuardAnyScope:
					core = mw.RequireAnyScope(tc.values...)
				case GuardAudience:
					core = mw.RequireAudience(tc.values...)
				}
				ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
				sameResponse(t, got, Serve(t, mw.Handler(core(ok)), PathMe, values))
			})
		}
	})
}

// panicOf runs f and returns the text of its panic, failing the test if it
// does not panic.
func panicOf(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		v := recover()
		if v == nil {
			t.Fatalf("no panic")
		}
		msg = fmt.Sprint(v)
	}()
	f()
	return ""
}

// RunRejected checks that an adapter reports each refusal once through
// [introspect.Hooks].Rejected, with the status it answers, as the core does.
// router(mw) serves the routes of [RunHTTP].
func RunRejected(t *testing.T, router func(mw *introspect.Middleware) http.Handler) {
	t.Helper()
	srv := NewServer(t)
	var mu sync.Mutex
	var reported []int
	mw := NewMiddleware(t, srv, introspect.WithHooks(&introspect.Hooks{
		Rejected: func(_ context.Context, status int, _ error) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, status)
		},
	}))
	take := func() []int {
		mu.Lock()
		defer mu.Unlock()
		r := reported
		reported = nil
		return r
	}
	h := router(mw)
	for _, tc := range []struct {
		name   string
		path   string
		auth   Auth
		status int
	}{
		{"valid", PathMe, Bearer(introspecttest.Claims{Subject: "alice"}), http.StatusOK},
		{"missing", PathMe, Raw(), http.StatusUnauthorized},
		{"malformed", PathMe, Raw("Bearer a b"), http.StatusBadRequest},
		{"unknown token", PathAdmin, Raw("Bearer never-issued"), http.StatusUnauthorized},
		{"insufficient scope", PathAdmin, Bearer(introspecttest.Claims{Subject: "alice", Scope: "read"}), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values, _ := tc.auth(srv)
			got := Serve(t, h, tc.path, values).Code
			reports := take()
			Serve(t, Core(mw), tc.path, values)
			core := take()
			if got != tc.status {
				t.Fatalf("status = %d, want %d", got, tc.status)
			}
			want := []int{}
			if tc.status != http.StatusOK {
				want = []int{tc.status}
			}
			if fmt.Sprint(reports) != fmt.Sprint(want) || fmt.Sprint(core) != fmt.Sprint(want) {
				t.Errorf("Rejected reported %v (the core %v), want %v", reports, core, want)
			}
		})
	}
}

// RunRequire checks an adapter's Require with checks of its own:
// router(mw, check) must serve [PathMe] behind the adapter's authentication
// middleware and Require(mw, check), with a handler that answers 200. A
// check's refusal is answered as the core's Require answers it: 403 for an
// [*introspect.InsufficientScopeError], 503 for an error that carries no
// verdict.
func RunRequire(t *testing.T, router func(mw *introspect.Middleware, check introspect.Check) http.Handler) {
	t.Helper()
	srv := NewServer(t)
	mw := NewMiddleware(t, srv)
	values := []string{"Bearer " + srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})}
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"allowed", nil, http.StatusOK},
		{"insufficient scope", &introspect.InsufficientScopeError{Scopes: []string{"admin"}}, http.StatusForbidden},
		{"an error without a verdict", errors.New("the check failed"), http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(*introspect.Introspection) error { return tc.err }
			got := Serve(t, router(mw, check), PathMe, values)
			if got.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %q", got.Code, tc.status, got.Body)
			}
			ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
			sameResponse(t, got, Serve(t, mw.Handler(mw.Require(check)(ok)), PathMe, values))
		})
	}
}
