// Package introspectgin protects gin routes with token introspection.
//
// It is a thin layer over an [*introspect.Middleware]: the middleware decides
// every verdict, status code and WWW-Authenticate challenge, exactly as its
// net/http handler does, and this package only moves the result into gin.
//
//	mw, err := introspect.New(introspect.WithEndpoint(url), introspect.WithClientCredentials(id, secret))
//	...
//	r := gin.New()
//	api := r.Group("/api", introspectgin.Authenticate(mw))
//	api.GET("/me", func(c *gin.Context) {
//		ti, _ := introspectgin.FromContext(c)
//		c.JSON(200, gin.H{"sub": ti.Subject})
//	})
//	api.GET("/admin", introspectgin.RequireScope(mw, "admin"), admin)
//
// With [introspect.WithOptionalToken], a request without a token goes on
// with no verdict ([FromContext] reports false), as with the core middleware.
package introspectgin

import (
	"github.com/gin-gonic/gin"

	"github.com/introspect-go/introspect"
)

// ContextKey is the key under which [Authenticate] stores the
// [*introspect.Introspection] with gin's Context.Set. [FromContext] reads it.
const ContextKey = "github.com/introspect-go/introspect"

// Authenticate returns a gin middleware that runs mw's check
// ([introspect.Middleware.Authenticate]) on each request. An active token's
// [*introspect.Introspection] is stored under [ContextKey] and on the request
// context (for [introspect.FromContext]); any other request is answered by
// mw's responders ([introspect.Middleware.WriteError]) and aborted.
func Authenticate(mw *introspect.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		ti, err := mw.Authenticate(c.Request)
		if err != nil {
			if mw.AllowsAnonymous(err) {
				c.Next()
				return
			}
			refuse(c, mw, ti, err)
			return
		}
		c.Set(ContextKey, ti)
		c.Request = c.Request.WithContext(introspect.NewContext(c.Request.Context(), ti))
		c.Next()
	}
}

// FromContext returns the verdict [Authenticate] stored, or the one the core
// middleware put on the request context when it runs in front of the engine.
// It reports false when there is none.
func FromContext(c *gin.Context) (*introspect.Introspection, bool) {
	if v, ok := c.Get(ContextKey); ok {
		if ti, ok := v.(*introspect.Introspection); ok && ti != nil {
			return ti, true
		}
	}
	return introspect.FromContext(c.Request.Context())
}

// Require returns a gin middleware that lets a request through only if check
// accepts its token ([introspect.Authorize]); otherwise mw's responders answer
// (403 insufficient_scope for the checks of package introspect, 401 when no
// middleware put a token in front) and the request is aborted. Use it after
// [Authenticate].
func Require(mw *introspect.Middleware, check introspect.Check) gin.HandlerFunc {
	return func(c *gin.Context) {
		ti, _ := FromContext(c)
		if err := introspect.Authorize(ti, check); err != nil {
			refuse(c, mw, ti, err)
			return
		}
		c.Next()
	}
}

// RequireScope is [Require] with [introspect.AllScopes]: the token must have
// every one of scopes.
func RequireScope(mw *introspect.Middleware, scopes ...string) gin.HandlerFunc {
	return Require(mw, introspect.AllScopes(scopes...))
}

// RequireAnyScope is [Require] with [introspect.AnyScope]: the token must have
// at least one of scopes.
func RequireAnyScope(mw *introspect.Middleware, scopes ...string) gin.HandlerFunc {
	return Require(mw, introspect.AnyScope(scopes...))
}

// RequireAudience is [Require] with [introspect.AnyAudience]: the token's
// "aud" must contain at least one of auds.
func RequireAudience(mw *introspect.Middleware, auds ...string) gin.HandlerFunc {
	return Require(mw, introspect.AnyAudience(auds...))
}

func refuse(c *gin.Context, mw *introspect.Middleware, ti *introspect.Introspection, err error) {
	mw.WriteError(c.Writer, c.Request, ti, err)
	c.Abort()
}
