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
// A refused request is answered by the middleware's responders
// ([introspect.Middleware.WriteError]), which also report it through
// [introspect.Hooks] and the logger, as the core middleware does, and the
// request is aborted.
//
// With [introspect.WithOptionalToken], a request without a token goes on
// with no verdict ([FromContext] reports false), as with the core middleware;
// a guard ([RequireScope] and the like) still refuses it (401).
//
// The guards check their scopes and audiences when they are built and panic
// on a guard that no token or every token would meet, so the mistake shows
// when the routes are set up, not on a request.
//
// What gin does around it: Use on a router or group covers the routes
// registered after it only; gin's Recovery prints a panicking request
// (in debug mode, and for a broken connection in any mode) with its query
// and headers, masking Authorization only: a DPoP proof, or a token in a
// cookie or the query, is printed; its default logger prints query
// strings (where [introspect.BearerExtractor] AllowQuery puts tokens). Unlike the core middleware, a request let through without a
// token under [introspect.WithOptionalToken] is not reported to
// [introspect.Hooks].Decided.
package introspectgin

import (
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/introspect-go/introspect"
)

// ContextKey is the key under which [Authenticate] stores the
// [*introspect.Introspection] with gin's Context.Set. [FromContext] reads it.
const ContextKey = "github.com/introspect-go/introspect"

// Config configures [AuthenticateWithConfig].
type Config struct {
	// Skipper lets a request through without any check when it returns true:
	// the authorization server is not asked and the request carries no
	// verdict, so [FromContext] reports false and a guard after it refuses
	// it (401). A skipped request reaches its handler: skipping OPTIONS
	// runs every route registered with Any, and any OPTIONS route, without
	// a token. For CORS preflights, which carry no credentials, put the
	// CORS middleware first instead: it answers preflights itself, adds its
	// headers to the 401s, and needs no skipper:
	//
	//	r.Use(cors)
	//	r.Use(introspectgin.Authenticate(mw))
	//
	// The core middleware's [introspect.WithSkipper] is not consulted here.
	// Default nil: no request is skipped.
	Skipper gin.Skipper
}

// Authenticate returns a gin middleware that runs mw's check
// ([introspect.Middleware.Authenticate]) on each request. An active token's
// [*introspect.Introspection] is stored under [ContextKey] and on the request
// context (for [introspect.FromContext]). A request without a token goes on
// with no verdict when mw allows it ([introspect.WithOptionalToken]); any
// other request is answered by mw's responders
// ([introspect.Middleware.WriteError]) and aborted.
func Authenticate(mw *introspect.Middleware) gin.HandlerFunc {
	return AuthenticateWithConfig(mw, Config{})
}

// AuthenticateWithConfig is [Authenticate] with a [Config].
func AuthenticateWithConfig(mw *introspect.Middleware, cfg Config) gin.HandlerFunc {
	skip := cfg.Skipper
	return func(c *gin.Context) {
		if skip != nil && skip(c) {
			c.Next()
			return
		}
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
// and the request is aborted: 403 insufficient_scope for the checks of
// package introspect, 401 when the request has no verdict (no middleware put
// one in front, the token was optional, or the request was skipped), 503 when
// check fails with an error that carries no verdict. Use it after
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
//
// It panics, like [regexp.MustCompile], if scopes is empty or a scope is not
// an RFC 6749 scope token (see [introspect.CheckScopes]): "" can never be
// granted, and "read write" is two scopes, which are listed apart.
func RequireScope(mw *introspect.Middleware, scopes ...string) gin.HandlerFunc {
	mustScopes("RequireScope", scopes)
	return Require(mw, introspect.AllScopes(scopes...))
}

// RequireAnyScope is [Require] with [introspect.AnyScope]: the token must have
// at least one of scopes. It panics as [RequireScope] does.
func RequireAnyScope(mw *introspect.Middleware, scopes ...string) gin.HandlerFunc {
	mustScopes("RequireAnyScope", scopes)
	return Require(mw, introspect.AnyScope(scopes...))
}

// RequireAudience is [Require] with [introspect.AnyAudience]: the token's
// "aud" must contain at least one of auds. It panics if auds is empty or
// holds an empty string.
func RequireAudience(mw *introspect.Middleware, auds ...string) gin.HandlerFunc {
	mustAudiences("RequireAudience", auds)
	return Require(mw, introspect.AnyAudience(auds...))
}

// mustScopes panics, naming the guard fn, if scopes cannot make a guard.
func mustScopes(fn string, scopes []string) {
	if err := introspect.CheckScopes(scopes); err != nil {
		panic("introspectgin: " + fn + ": " + strings.TrimPrefix(err.Error(), "introspect: "))
	}
}

// mustAudiences panics, naming the guard fn, if auds cannot make a guard.
// The rule is the one [introspect.AnyAudience] enforces.
func mustAudiences(fn string, auds []string) {
	switch {
	case len(auds) == 0:
		panic("introspectgin: " + fn + ": no audiences: the guard would let every token through")
	case slices.Contains(auds, ""):
		panic("introspectgin: " + fn + ": an empty audience: the guard could never be met")
	}
}

func refuse(c *gin.Context, mw *introspect.Middleware, ti *introspect.Introspection, err error) {
	mw.WriteError(c.Writer, c.Request, ti, err)
	c.Abort()
}
