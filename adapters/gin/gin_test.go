package introspectgin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/introspect-go/introspect"
	introspectgin "github.com/introspect-go/introspect/adapters/gin"
	"github.com/introspect-go/introspect/adapters/internal/conformance"
	"github.com/introspect-go/introspect/introspecttest"
)

func init() { gin.SetMode(gin.TestMode) }

// engine serves the conformance routes with the adapter.
func engine(mw *introspect.Middleware) http.Handler {
	return engineWith(mw, introspectgin.Authenticate(mw))
}

// engineWith serves the conformance routes behind auth.
func engineWith(mw *introspect.Middleware, auth gin.HandlerFunc) http.Handler {
	r := gin.New()
	api := r.Group("/api", auth)
	handler := func(c *gin.Context) {
		ti, ok := introspectgin.FromContext(c)
		if !ok {
			c.Status(http.StatusInternalServerError)
			return
		}
		onReq, _ := introspect.FromContext(c.Request.Context())
		c.JSON(http.StatusOK, conformance.Seen{Subject: ti.Subject, OnRequest: onReq == ti})
	}
	api.GET("/me", handler)
	api.GET("/admin", introspectgin.RequireScope(mw, "admin"), handler)
	api.GET("/orders", introspectgin.RequireAudience(mw, "orders"), handler)
	return r
}

func TestAuthenticate(t *testing.T) { conformance.RunHTTP(t, engine) }

// TestAuthenticateWithConfig checks that a zero Config skips nothing.
func TestAuthenticateWithConfig(t *testing.T) {
	conformance.RunHTTP(t, func(mw *introspect.Middleware) http.Handler {
		return engineWith(mw, introspectgin.AuthenticateWithConfig(mw, introspectgin.Config{}))
	})
}

// TestRequireWithoutAuthenticate checks that a guard with no verdict in front
// refuses the request the way the core does (401).
func TestRequireWithoutAuthenticate(t *testing.T) {
	mw := conformance.NewMiddleware(t, conformance.NewServer(t))
	r := gin.New()
	reached := false
	r.GET("/admin", introspectgin.RequireScope(mw, "admin"), func(*gin.Context) { reached = true })
	rec := conformance.Serve(t, r, "/admin", nil)
	if reached || rec.Code != http.StatusUnauthorized {
		t.Fatalf("reached = %v, status = %d; want 401 and the handler not reached", reached, rec.Code)
	}
}

// TestCoreInFront checks that FromContext and the guards see the verdict
// when the core middleware runs in front of the engine.
func TestCoreInFront(t *testing.T) {
	conformance.RunCoreInFront(t, func(mw *introspect.Middleware) http.Handler {
		r := gin.New()
		r.GET(conformance.PathAdmin, introspectgin.RequireAnyScope(mw, "admin", "root"), func(c *gin.Context) {
			if ti, ok := introspectgin.FromContext(c); ok {
				c.String(http.StatusOK, ti.Subject)
			}
		})
		return r
	})
}

func TestOptionalToken(t *testing.T) {
	conformance.RunOptional(t, func(mw *introspect.Middleware) http.Handler {
		r := gin.New()
		r.GET("/api/me", introspectgin.Authenticate(mw), func(c *gin.Context) {
			if ti, ok := introspectgin.FromContext(c); ok {
				c.String(http.StatusOK, ti.Subject)
				return
			}
			c.String(http.StatusOK, conformance.Anonymous)
		})
		return r
	})
}

func TestGuards(t *testing.T) {
	conformance.RunGuards(t, "introspectgin", func(mw *introspect.Middleware, g conformance.Guard, values ...string) http.Handler {
		var guard gin.HandlerFunc
		switch g {
		case conformance.GuardScope:
			guard = introspectgin.RequireScope(mw, values...)
		case conformance.GuardAnyScope:
			guard = introspectgin.RequireAnyScope(mw, values...)
		case conformance.GuardAudience:
			guard = introspectgin.RequireAudience(mw, values...)
		}
		r := gin.New()
		r.GET(conformance.PathMe, introspectgin.Authenticate(mw), guard, func(c *gin.Context) { c.Status(http.StatusOK) })
		return r
	})
}

// TestRejected checks that refusals reach Hooks.Rejected once each, as
// through the core middleware.
func TestRejected(t *testing.T) { conformance.RunRejected(t, engine) }

// TestSkipper checks Config.Skipper with a CORS preflight: the skipped
// request reaches the CORS middleware behind without a call to the
// authorization server and without a verdict, and a guard still refuses a
// skipped request.
func TestSkipper(t *testing.T) {
	srv := conformance.NewServer(t)
	mw := conformance.NewMiddleware(t, srv)
	r := gin.New()
	r.Use(introspectgin.AuthenticateWithConfig(mw, introspectgin.Config{
		Skipper: func(c *gin.Context) bool { return c.Request.Method == http.MethodOptions },
	}))
	r.Use(func(c *gin.Context) { // a CORS middleware: it answers preflights
		if c.Request.Method == http.MethodOptions && c.Request.URL.Path != "/api/admin" {
			c.Header("Access-Control-Allow-Origin", "*")
			c.AbortWithStatus(http.StatusNoContent)
		}
	})
	answer := func(c *gin.Context) {
		if ti, ok := introspectgin.FromContext(c); ok {
			c.String(http.StatusOK, ti.Subject)
			return
		}
		c.String(http.StatusOK, conformance.Anonymous)
	}
	r.GET("/api/me", answer)
	r.OPTIONS("/api/admin", introspectgin.RequireScope(mw, "admin"), answer)
	good := "Bearer " + srv.Issue(introspecttest.Claims{Subject: "alice"})
	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		status int
		body   string
		calls  int64 // calls to the authorization server
	}{
		{"preflight skipped", http.MethodOptions, "/api/me", "", http.StatusNoContent, "", 0},
		{"preflight with a token skipped", http.MethodOptions, "/api/me", "Bearer never-issued", http.StatusNoContent, "", 0},
		{"skipped, then guarded", http.MethodOptions, "/api/admin", good, http.StatusUnauthorized, "", 0},
		{"checked, valid", http.MethodGet, "/api/me", good, http.StatusOK, "alice", 1},
		{"checked, missing", http.MethodGet, "/api/me", "", http.StatusUnauthorized, "", 0},
		{"checked, unknown", http.MethodGet, "/api/me", "Bearer never-issued", http.StatusUnauthorized, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Calls()
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %q", rec.Code, tc.status, rec.Body)
			}
			if tc.body != "" && rec.Body.String() != tc.body {
				t.Errorf("body = %q, want %q", rec.Body, tc.body)
			}
			if calls := srv.Calls() - before; calls != tc.calls {
				t.Errorf("%d calls to the authorization server, want %d", calls, tc.calls)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	conformance.RunRequire(t, func(mw *introspect.Middleware, check introspect.Check) http.Handler {
		r := gin.New()
		r.GET(conformance.PathMe, introspectgin.Authenticate(mw), introspectgin.Require(mw, check), func(c *gin.Context) { c.Status(http.StatusOK) })
		return r
	})
}
