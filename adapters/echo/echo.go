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
// A refused request is answered by the middleware's responders and the
// handler chain returns nil, so echo's HTTPErrorHandler does not write a
// second response.
//
// # Limits
//
// [introspect.WithOptionalToken] is not honoured: a request without a token
// is refused unless the [Config.Skipper] skips it.
package introspectecho

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/introspect-go/introspect"
)

// ContextKey is the key under which [Authenticate] stores the
// [*introspect.Introspection] with echo's Context.Set. [FromContext] reads it.
const ContextKey = "github.com/introspect-go/introspect"

// Config configures [AuthenticateWithConfig].
type Config struct {
	// Skipper lets a request through without any check when it returns true.
	// Default middleware.DefaultSkipper (never skips).
	Skipper middleware.Skipper
}

// Authenticate returns an echo middleware that runs mw's check
// ([introspect.Middleware.Authenticate]) on each request. An active token's
// [*introspect.Introspection] is stored under [ContextKey] and on the request
// context (for [introspect.FromContext]); any other request is answered by
// mw's responders ([introspect.Middleware.WriteError]) and goes no further.
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
// answer (403 insufficient_scope for the checks of package introspect, 401
// when no middleware put a token in front). Use it after [Authenticate].
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
func RequireScope(mw *introspect.Middleware, scopes ...string) echo.MiddlewareFunc {
	return Require(mw, introspect.AllScopes(scopes...))
}

// RequireAnyScope is [Require] with [introspect.AnyScope]: the token must have
// at least one of scopes.
func RequireAnyScope(mw *introspect.Middleware, scopes ...string) echo.MiddlewareFunc {
	return Require(mw, introspect.AnyScope(scopes...))
}

// RequireAudience is [Require] with [introspect.AnyAudience]: the token's
// "aud" must contain at least one of auds.
func RequireAudience(mw *introspect.Middleware, auds ...string) echo.MiddlewareFunc {
	return Require(mw, introspect.AnyAudience(auds...))
}
