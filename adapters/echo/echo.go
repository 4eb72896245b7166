// Package introspectecho protects echo routes with token introspection.
//
// It is a thin layer over an [*introspect.Middleware]: the middleware decides
// every verdict, status code and WWW-Authenticate challenge, exactly as its
// net/http handler does, and this package only moves the result into echo.
//
//	mw, err := introspect.New(introspect.WithEndpoint(url), introspect.WithClientCredentials(id, secret))
//	...
//	e := echo.New()
//	api := e.Group("/api", introspectecho.Authenticate(mw))
//	api.GET("/me", func(c echo.Context) error {
//		ti, _ := introspectecho.FromContext(c)
//		return c.JSON(200, map[string]string{"sub": ti.Subject})
//	})
//	api.DELETE("/users/:id", deleteUser, introspectecho.RequireScope(mw, "admin"))
//
// A refused request is answered by the middleware's responders
// ([introspect.Middleware.WriteError]), which also report it through
// [introspect.Hooks] and the logger, as the core middleware does, and the
// handler chain returns nil, so echo's HTTPErrorHandler does not write a
// second response.
//
// With [introspect.WithOptionalToken], a request without a token goes on
// with no verdict ([FromContext] reports false), as with the core middleware;
// a guard ([RequireScope] and the like) still refuses it (401).
//
// The guards check their scopes and audiences when they are built and panic
// on a guard that no token or every token would meet, so the mistake shows
// when the routes are set up, not on a request.
//
// What echo does around it: a DPoP proof is checked against the request as
// echo hands it over, after the Pre middlewares: RemoveTrailingSlash,
// MethodOverride or Rewrite change the URL or method the client signed,
// and its proofs are refused (401). Do not use them in front of routes that
// take DPoP proofs (Authenticate itself cannot go in e.Pre before them:
// echo routes on the request it had before Pre, and those middlewares
// would then change a copy). Group.Use covers the routes registered after
// it only;
// echo's default logger prints query strings (where
// [introspect.BearerExtractor] AllowQuery puts tokens). Unlike the core
// middleware, a request let through without a token under
// [introspect.WithOptionalToken] is not reported to
// [introspect.Hooks].Decided.
package introspectecho

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/introspect-go/introspect"
)

// ContextKey is the key under which [Authenticate] stores the
// [*introspect.Introspection] with echo's Context.Set. [FromContext] reads it.
const ContextKey = "github.com/introspect-go/introspect"

// Config configures [AuthenticateWithConfig].
type Config struct {
	// Skipper lets a request through without any check when it returns true:
	// the authorization server is not asked and the request carries no
	// verdict, so [FromContext] reports false and a guard after it refuses
	// it (401). A skipped request reaches its handler: skipping OPTIONS
	// runs every route registered with Any, and any OPTIONS route, without
	// a token; for CORS preflights, put echo's CORS middleware first
	// instead, which answers them itself and needs no skipper. The core
	// middleware's [introspect.WithSkipper] is not consulted here. Default
	// middleware.DefaultSkipper (no request is skipped).
	Skipper middleware.Skipper
}

// Authenticate returns an echo middleware that runs mw's check
// ([introspect.Middleware.Authenticate]) on each request. An active token's
// [*introspect.Introspection] is stored under [ContextKey] and on the request
// context (for [introspect.FromContext]). A request without a token goes on
// with no verdict when mw allows it ([introspect.WithOptionalToken]); any
// other request is answered by mw's responders
// ([introspect.Middleware.WriteError]) and goes no further.
func Authenticate(mw *introspect.Middleware) echo.MiddlewareFunc {
	return AuthenticateWithConfig(mw, Config{})
}

// AuthenticateWithConfig is [Authenticate] with a [Config].
func AuthenticateWithConfig(mw *introspect.Middleware, cfg Config) echo.MiddlewareFunc {
	skip := cfg.Skipper
	if skip == nil {
		skip = middleware.DefaultSkipper
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skip(c) {
				return next(c)
			}
			r := c.Request()
			ti, err := mw.Authenticate(r)
			if err != nil {
				if mw.AllowsAnonymous(err) {
					return next(c)
				}
				mw.WriteError(c.Response(), r, ti, err)
				return nil
			}
			c.Set(ContextKey, ti)
			c.SetRequest(r.WithContext(introspect.NewContext(r.Context(), ti)))
			return next(c)
		}
	}
}

// FromContext returns the verdict [Authenticate] stored, or the one the core
// middleware put on the request context when it runs in front of echo. It
// reports false when there is none.
func FromContext(c echo.Context) (*introspect.Introspection, bool) {
	if ti, ok := c.Get(ContextKey).(*introspect.Introspection); ok && ti != nil {
		return ti, true
	}
	return introspect.FromContext(c.Request().Context())
}

// Require returns an echo middleware that lets a request through only if
// check accepts its token ([introspect.Authorize]); otherwise mw's responders
// answer: 403 insufficient_scope for the checks of package introspect, 401
// when the request has no verdict (no middleware put one in front, the token
// was optional, or the request was skipped), 503 when check fails with an
// error that carries no verdict. Use it after [Authenticate].
func Require(mw *introspect.Middleware, check introspect.Check) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ti, _ := FromContext(c)
			if err := introspect.Authorize(ti, check); err != nil {
				mw.WriteError(c.Response(), c.Request(), ti, err)
				return nil
			}
			return next(c)
		}
	}
}

// RequireScope is [Require] with [introspect.AllScopes]: the token must have
// every one of scopes.
//
// It panics, like [regexp.MustCompile], if scopes is empty or a scope is not
// an RFC 6749 scope token (see [introspect.CheckScopes]): "" can never be
// granted, and "read write" is two scopes, which are listed apart.
func RequireScope(mw *introspect.Middleware, scopes ...string) echo.MiddlewareFunc {
	mustScopes("RequireScope", scopes)
	return Require(mw, introspect.AllScopes(scopes...))
}

// RequireAnyScope is [Require] with [introspect.AnyScope]: the token must have
// at least one of scopes. It panics as [RequireScope] does.
func RequireAnyScope(mw *introspect.Middleware, scopes ...string) echo.MiddlewareFunc {
	mustScopes("RequireAnyScope", scopes)
	return Require(mw, introspect.AnyScope(scopes...))
}

// RequireAudience is [Require] with [introspect.AnyAudience]: the token's
// "aud" must contain at least one of auds. It panics if auds is empty or
// holds an empty string.
func RequireAudience(mw *introspect.Middleware, auds ...string) echo.MiddlewareFunc {
	mustAudiences("RequireAudience", auds)
	return Require(mw, introspect.AnyAudience(auds...))
}

// mustScopes panics, naming the guard fn, if scopes cannot make a guard.
func mustScopes(fn string, scopes []string) {
	if err := introspect.CheckScopes(scopes); err != nil {
		panic("introspectecho: " + fn + ": " + strings.TrimPrefix(err.Error(), "introspect: "))
	}
}

// mustAudiences panics, naming the guard fn, if auds cannot make a guard.
// The rule is the one [introspect.AnyAudience] enforces.
func mustAudiences(fn string, auds []string) {
	switch {
	case len(auds) == 0:
		panic("introspectecho: " + fn + ": no audiences: the guard would let every token through")
	case slices.Contains(auds, ""):
		panic("introspectecho: " + fn + ": an empty audience: the guard could never be met")
	}
}
