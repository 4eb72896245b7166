package introspect

import (
	"context"
	"log/slog"
	"time"
)

// Hooks are called at the steps of a request, in the manner of
// net/http/httptrace; any field may be nil. They run on the request path (or
// in the shared introspection call), so they must be fast and safe for
// concurrent use. No hook ever receives a token or a secret.
type Hooks struct {
	// CacheHit: a fresh cached verdict was used. Negative is true for a
	// cached inactive verdict.
	CacheHit func(ctx context.Context, negative bool)
	// CacheMiss: no fresh cached verdict; the authorization server is asked
	// (or a call in flight is joined).
	CacheMiss func(ctx context.Context)
	// Coalesced: the request joined a call another request had started.
	Coalesced func(ctx context.Context)
	// StaleServed: the authorization server failed with err and a stale
	// active entry was served instead (stale-if-error).
	StaleServed func(ctx context.Context, err error)
	// CacheError: the cache failed in op ("get", "set" or "delete"); the
	// request goes on as on a miss.
	CacheError func(ctx context.Context, op string, err error)
	// IntrospectStart: a call to the authorization server begins. endpoint
	// is the introspection URL without user info, query or fragment.
	IntrospectStart func(ctx context.Context, endpoint string)
	// IntrospectDone: the call ended. Err is nil when there was a verdict.
	IntrospectDone func(ctx context.Context, info IntrospectDoneInfo)
	// RefreshAhead: a background refresh of a cached entry about to expire
	// begins.
	RefreshAhead func(ctx context.Context)
	// Rejected: the middleware refused a request with status for err.
	Rejected func(ctx context.Context, status int, err error)
}

// IntrospectDoneInfo describes a finished call to the authorization server.
type IntrospectDoneInfo struct {
	Endpoint string // without user info, query or fragment
	Duration time.Duration
	Active   bool  // the verdict, when Err is nil
	Err      error // why no verdict was possible
}

// WithHooks sets the hooks. Default none.
func WithHooks(h *Hooks) Option {
	return func(c *config) {
		c.middlewareOnly("WithHooks")
		if h == nil {
			c.fail("WithHooks: nil hooks")
			return
		}
		hc := *h // the caller's value may change later; ours may not
		c.hooks = &hc
	}
}

// WithLogger sets a logger for failures: calls to the authorization server
// that failed (warn), cache errors (warn), stale entries served (warn) and
// refused requests (debug, with the status and reason). Tokens and secrets
// are never logged. Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		c.middlewareOnly("WithLogger")
		if l == nil {
			c.fail("WithLogger: nil logger")
			return
		}
		c.logger = l
	}
}

// observer fans events out to the hooks and the logger. Its zero value does
// nothing.
type observer struct {
	h   *Hooks
	log *slog.Logger
}

func (o observer) cacheHit(ctx context.Context, negative bool) {
	if o.h != nil && o.h.CacheHit != nil {
		o.h.CacheHit(ctx, negative)
	}
}

func (o observer) cacheMiss(ctx context.Context) {
	if o.h != nil && o.h.CacheMiss != nil {
		o.h.CacheMiss(ctx)
	}
}

func (o observer) coalesced(ctx context.Context) {
	if o.h != nil && o.h.Coalesced != nil {
		o.h.Coalesced(ctx)
	}
}

func (o observer) staleServed(ctx context.Context, err error) {
	if o.h != nil && o.h.StaleServed != nil {
		o.h.StaleServed(ctx, err)
	}
	if o.log != nil {
		o.log.WarnContext(ctx, "introspect: serving a stale cached verdict", "error", err)
	}
}

func (o observer) cacheError(ctx context.Context, op string, err error) {
	if o.h != nil && o.h.CacheError != nil {
		o.h.CacheError(ctx, op, err)
	}
	if o.log != nil {
		o.log.WarnContext(ctx, "introspect: cache error", "op", op, "error", err)
	}
}

func (o observer) introspectStart(ctx context.Context, endpoint string) {
	if o.h != nil && o.h.IntrospectStart != nil {
		o.h.IntrospectStart(ctx, endpoint)
	}
}

func (o observer) introspectDone(ctx context.Context, info IntrospectDoneInfo) {
	if o.h != nil && o.h.IntrospectDone != nil {
		o.h.IntrospectDone(ctx, info)
	}
	if o.log != nil && info.Err != nil {
		o.log.WarnContext(ctx, "introspect: introspection failed", "endpoint", info.Endpoint,
			"duration", info.Duration, "error", info.Err)
	}
}

func (o observer) refreshAhead(ctx context.Context) {
	if o.h != nil && o.h.RefreshAhead != nil {
		o.h.RefreshAhead(ctx)
	}
}

func (o observer) rejected(ctx context.Context, status int, err error) {
	if o.h != nil && o.h.Rejected != nil {
		o.h.Rejected(ctx, status, err)
	}
	if o.log != nil && o.log.Enabled(ctx, slog.LevelDebug) {
		o.log.DebugContext(ctx, "introspect: request refused", "status", status, "reason", err)
	}
}
