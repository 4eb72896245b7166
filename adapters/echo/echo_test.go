package introspectecho_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/introspect-go/introspect"
	introspectecho "github.com/introspect-go/introspect/adapters/echo"
	"github.com/introspect-go/introspect/adapters/internal/conformance"
)

// router serves the conformance routes with the adapter.
func router(mw *introspect.Middleware) http.Handler {
	e := echo.New()
	api := e.Group("/api", introspectecho.Authenticate(mw))
	handler := func(c echo.Context) error {
		ti, ok := introspectecho.FromContext(c)
		if !ok {
			return c.NoContent(http.StatusInternalServerError)
		}
		onReq, _ := introspect.FromContext(c.Request().Context())
		return c.JSON(http.StatusOK, conformance.Seen{Subject: ti.Subject, OnRequest: onReq == ti})
	}
	api.GET("/me", handler)
	api.GET("/admin", handler, introspectecho.RequireScope(mw, "admin"))
	api.GET("/orders", handler, introspectecho.RequireAudience(mw, "orders"))
	return e
}

func TestAuthenticate(t *testing.T) { conformance.RunHTTP(t, router) }

// TestRequireWithoutAuthenticate checks that a guard with no verdict in front
// refuses the request the way the core does (401).
func TestRequireWithoutAuthenticate(t *testing.T) {
	mw := conformance.NewMiddleware(t, conformance.NewServer(t))
	e := echo.New()
	reached := false
	e.GET("/admin", func(echo.Context) error { reached = true; return nil }, introspectecho.RequireScope(mw, "admin"))
	rec := conformance.Serve(t, e, "/admin", nil)
	if reached || rec.Code != http.StatusUnauthorized {
		t.Fatalf("reached = %v, status = %d; want 401 and the handler not reached", reached, rec.Code)
	}
}

// TestCoreInFront checks that FromContext and the guards see the verdict
// when the core middleware runs in front of echo.
func TestCoreInFront(t *testing.T) {
	conformance.RunCoreInFront(t, func(mw *introspect.Middleware) http.Handler {
		e := echo.New()
		e.GET(conformance.PathAdmin, func(c echo.Context) error {
			ti, ok := introspectecho.FromContext(c)
			if !ok {
				return c.NoContent(http.StatusInternalServerError)
			}
			return c.String(http.StatusOK, ti.Subject)
		}, introspectecho.RequireAnyScope(mw, "admin", "root"))
		return e
	})
}

func TestSkipper(t *testing.T) {
	srv := conformance.NewServer(t)
	mw := conformance.NewMiddleware(t, srv)
	e := echo.New()
	e.Use(introspectecho.AuthenticateWithConfig(mw, introspectecho.Config{
		Skipper: func(c echo.Context) bool { return strings.HasPrefix(c.Path(), "/healthz") },
	}))
	ok := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
	e.GET("/healthz", ok)
	e.GET("/api/me", ok)
	e.GET("/healthz/admin", ok, introspectecho.RequireScope(mw, "admin"))
	tests := []struct {
		name   string
		path   string
		status int
		calls  int64 // calls to the authorization server
	}{
		{"skipped", "/healthz", http.StatusOK, 0},
		{"skipped, then guarded", "/healthz/admin", http.StatusUnauthorized, 0},
		{"checked", "/api/me", http.StatusUnauthorized, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Calls()
			rec := conformance.Serve(t, e, tc.path, []string{"Bearer c29tZS1yYW5kb20tdG9rZW4"})
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d", rec.Code, tc.status)
			}
			if calls := srv.Calls() - before; calls != tc.calls {
				t.Errorf("%d calls to the authorization server, want %d", calls, tc.calls)
			}
		})
	}
}

// TestNoSecondResponse checks that echo's error handler does not answer a
// refused request again.
func TestNoSecondResponse(t *testing.T) {
	mw := conformance.NewMiddleware(t, conformance.NewServer(t))
	e := echo.New()
	handled := false
	e.HTTPErrorHandler = func(error, echo.Context) { handled = true }
	e.GET("/api/me", func(echo.Context) error { return nil }, introspectecho.Authenticate(mw))
	rec := conformance.Serve(t, e, "/api/me", nil)
	if rec.Code != http.StatusUnauthorized || handled {
		t.Fatalf("status = %d, error handler called = %v; want 401 from the middleware only", rec.Code, handled)
	}
}

func TestOptionalToken(t *testing.T) {
	conformance.RunOptional(t, func(mw *introspect.Middleware) http.Handler {
		e := echo.New()
		e.GET("/api/me", func(c echo.Context) error {
			if ti, ok := introspectecho.FromContext(c); ok {
				return c.String(http.StatusOK, ti.Subject)
			}
			return c.String(http.StatusOK, conformance.Anonymous)
		}, introspectecho.Authenticate(mw))
		return e
	})
}

func TestGuards(t *testing.T) {
	conformance.RunGuards(t, "introspectecho", func(mw *introspect.Middleware, g conformance.Guard, values ...string) http.Handler {
		var guard echo.MiddlewareFunc
		switch g {
		case conformance.GuardScope:
			guard = introspectecho.RequireScope(mw, values...)
		case conformance.GuardAnyScope:
			guard = introspectecho.RequireAnyScope(mw, values...)
		case conformance.GuardAudience:
			guard = introspectecho.RequireAudience(mw, values...)
		}
		e := echo.New()
		e.GET(conformance.PathMe, func(c echo.Context) error { return c.NoContent(http.StatusOK) },
			introspectecho.Authenticate(mw), guard)
		return e
	})
}

// TestRejected checks that refusals reach Hooks.Rejected once each, as
// through the core middleware.
func TestRejected(t *testing.T) { conformance.RunRejected(t, router) }

func TestRequire(t *testing.T) {
	conformance.RunRequire(t, func(mw *introspect.Middleware, check introspect.Check) http.Handler {
		e := echo.New()
		e.GET(conformance.PathMe, func(c echo.Context) error { return c.NoContent(http.StatusOK) },
			introspectecho.Authenticate(mw), introspectecho.Require(mw, check))
		return e
	})
}
