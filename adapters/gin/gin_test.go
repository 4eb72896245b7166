package introspectgin_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/introspect-go/introspect"
	introspectgin "github.com/introspect-go/introspect/adapters/gin"
	"github.com/introspect-go/introspect/adapters/internal/conformance"
)

func init() { gin.SetMode(gin.TestMode) }

// engine serves the conformance routes with the adapter.
func engine(mw *introspect.Middleware) http.Handler {
	r := gin.New()
	api := r.Group("/api", introspectgin.Authenticate(mw))
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
