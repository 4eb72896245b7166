package introspect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"
)

// Hooks are called at the steps of a request, in the manner of
// net/http/httptrace; any field may be nil. They run on the request path (or
// in the shared introspection call), so they must be fast and safe for
// concurrent use. No hook receives a token or a secret as an argument;
// Decided receives the request, whose Authorization header holds its token.
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
	// Rejected: the middleware refused a request with status for err. A
	// request whose client went away is reported by Canceled instead.
	Rejected func(ctx context.Context, status int, err error)
	// Canceled: the request's context was canceled (the client went away)
	// before a verdict; err matches [ErrRequestCanceled]. No failure of the
	// authorization server: count it apart from the 503s of Rejected.
	Canceled func(ctx context.Context, err error)
	// Decided: a decision on a request, for an audit trail. An accepted
	// token is reported by [Middleware.Authenticate] (so by Handler and the
	// adapters), a request let through without a token by Handler
	// ([WithOptionalToken]), and every refusal, guards' included, by
	// [Middleware.WriteError]. A request that a guard lets through was
	// reported when its token was accepted. Requests whose client went away
	// are reported by Canceled only. r is the request as it came: log its
	// method and path, never its Authorization header.
	Decided func(r *http.Request, d Decision)
	// Panicked: a callback (a SecretFunc, a ClientStore's credentials, a
	// Cache, a hook, the HTTP client's transport) panicked during a call to
	// the authorization server. The panic was recovered: the requests
	// waiting for the call got 503, and the process goes on. A panic of the
	// CacheMiss or RefreshAhead hook is reported here too, and changes
	// nothing else: the request goes on, the call is made. value is what
	// was passed to panic, stack the panicking goroutine's stack. A panic
	// in Panicked itself is recovered and dropped.
	Panicked func(ctx context.Context, value any, stack []byte)
	// BulkheadFull: a call to the authorization server was not made because
	// the calls in flight filled the bulkhead
	// ([WithMaxConcurrentIntrospections]) until the call's deadline. The
	// requests waiting for the call get 503.
	BulkheadFull func(ctx context.Context)
	// DiscoveryDone: a fetch of the authorization server's metadata or keys
	// ([WithIssuer]) ended. Err is nil when a good copy was fetched; after a
	// failure the last good copy, if any, is kept.
	DiscoveryDone func(ctx context.Context, info DiscoveryInfo)
	// StartSpan wraps each call to the authorization server and each fetch
	// of its metadata or keys, for tracing. It is called as the work
	// begins, before IntrospectStart, with the work's context: for a call,
	// one derived from the context of the request that started it (its
	// values kept, its cancellation not); for a fetch, the client's own
	// background context, whatever request waits for it. It returns the
	// context the work runs with, derived from ctx: the HTTP request to the
	// authorization server carries it (so a transport's own spans nest
	// under the one StartSpan started), and IntrospectStart, IntrospectDone,
	// DiscoveryDone and the callbacks the work runs (a SecretFunc, say)
	// receive it. end, if not nil, is called once when the work ends, after
	// IntrospectDone or DiscoveryDone, with the work's error (nil for a
	// verdict or a good copy), also when a callback panicked during the
	// work.
	StartSpan func(ctx context.Context, info SpanInfo) (context.Context, func(err error))
}

// SpanInfo describes the work a [Hooks].StartSpan hook wraps.
type SpanInfo struct {
	// Op is "introspect" for a call to the introspection endpoint,
	// "metadata" or "jwks" for a fetch of the authorization server's
	// metadata or keys.
	Op string
	// Endpoint is the introspection URL without user info, query or
	// fragment for "introspect"; empty for a fetch.
	Endpoint string
}

// DiscoveryInfo describes a finished fetch of the authorization server's
// metadata or keys.
type DiscoveryInfo struct {
	Document string // "metadata" or "jwks"
	Duration time.Duration
	Err      error // nil when a good copy was fetched; else it matches [ErrDiscovery]
}

// Decision is what the middleware decided on a request.
type Decision struct {
	Allowed bool  // the request goes on to the handler
	Status  int   // 200 when allowed, else the status of the refusal
	Err     error // why the request was refused; nil when allowed
	// Introspection is the verdict: the accepted token's when allowed (nil
	// for a request let through without a token); for a refusal, the
	// answer when there was one (an inactive token, a guard's refusal).
	Introspection *Introspection
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
// that failed (warn), cache errors (warn), stale entries served (warn),
// recovered panics of callbacks (error, with the stack), refused requests
// (debug, with the method, path, status and reason) and requests whose
// client went away (debug). Tokens and secrets are never logged. Default:
// nothing is logged.
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

// Chain returns hooks that call, for each event, the hooks of hs that are
// set, in the order of hs; nil elements of hs are skipped. It reads hs
// now: later changes to them are not seen. StartSpan hooks nest: each gets
// the context the one before it returned, and their end functions are
// called in the reverse order. A panic in one hook skips the ones after it.
// It combines hooks of your own with an instrumentation's:
//
//	introspect.WithHooks(introspect.Chain(mine, instrumentation))
func Chain(hs ...*Hooks) *Hooks {
	var c Hooks
	ctxOnly := func(get func(*Hooks) func(context.Context)) func(context.Context) {
		fs := hooksOf(hs, get)
		if fs == nil {
			return nil
		}
		return func(ctx context.Context) {
			for _, f := range fs {
				f(ctx)
			}
		}
	}
	withErr := func(get func(*Hooks) func(context.Context, error)) func(context.Context, error) {
		fs := hooksOf(hs, get)
		if fs == nil {
			return nil
		}
		return func(ctx context.Context, err error) {
			for _, f := range fs {
				f(ctx, err)
			}
		}
	}
	c.CacheMiss = ctxOnly(func(h *Hooks) func(context.Context) { return h.CacheMiss })
	c.Coalesced = ctxOnly(func(h *Hooks) func(context.Context) { return h.Coalesced })
	c.RefreshAhead = ctxOnly(func(h *Hooks) func(context.Context) { return h.RefreshAhead })
	c.BulkheadFull = ctxOnly(func(h *Hooks) func(context.Context) { return h.BulkheadFull })
	c.StaleServed = withErr(func(h *Hooks) func(context.Context, error) { return h.StaleServed })
	c.Canceled = withErr(func(h *Hooks) func(context.Context, error) { return h.Canceled })
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, bool) { return h.CacheHit }); fs != nil {
		c.CacheHit = func(ctx context.Context, negative bool) {
			for _, f := range fs {
				f(ctx, negative)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, string, error) { return h.CacheError }); fs != nil {
		c.CacheError = func(ctx context.Context, op string, err error) {
			for _, f := range fs {
				f(ctx, op, err)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, string) { return h.IntrospectStart }); fs != nil {
		c.IntrospectStart = func(ctx context.Context, endpoint string) {
			for _, f := range fs {
				f(ctx, endpoint)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, IntrospectDoneInfo) { return h.IntrospectDone }); fs != nil {
		c.IntrospectDone = func(ctx context.Context, info IntrospectDoneInfo) {
			for _, f := range fs {
				f(ctx, info)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, int, error) { return h.Rejected }); fs != nil {
		c.Rejected = func(ctx context.Context, status int, err error) {
			for _, f := range fs {
				f(ctx, status, err)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(*http.Request, Decision) { return h.Decided }); fs != nil {
		c.Decided = func(r *http.Request, d Decision) {
			for _, f := range fs {
				f(r, d)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, any, []byte) { return h.Panicked }); fs != nil {
		c.Panicked = func(ctx context.Context, value any, stack []byte) {
			for _, f := range fs {
				f(ctx, value, stack)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, DiscoveryInfo) { return h.DiscoveryDone }); fs != nil {
		c.DiscoveryDone = func(ctx context.Context, info DiscoveryInfo) {
			for _, f := range fs {
				f(ctx, info)
			}
		}
	}
	if fs := hooksOf(hs, func(h *Hooks) func(context.Context, SpanInfo) (context.Context, func(error)) { return h.StartSpan }); fs != nil {
		c.StartSpan = func(ctx context.Context, info SpanInfo) (context.Context, func(error)) {
			ends := make([]func(error), 0, len(fs))
			for _, f := range fs {
				next, end := f(ctx, info)
				if next != nil {
					ctx = next
				}
				if end != nil {
					ends = append(ends, end)
				}
			}
			return ctx, func(err error) {
				for i := len(ends) - 1; i >= 0; i-- {
					ends[i](err)
				}
			}
		}
	}
	return &c
}

// hooksOf returns the hooks get reads from the elements of hs, in order,
// leaving out nil elements and unset hooks; nil if none is set.
func hooksOf[F any](hs []*Hooks, get func(*Hooks) F) []F {
	var fs []F
	for _, h := range hs {
		if h == nil {
			continue
		}
		if f := get(h); !reflect.ValueOf(f).IsNil() {
			fs = append(fs, f)
		}
	}
	return fs
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
	switch {
	case o.log == nil || info.Err == nil:
	case errors.Is(info.Err, ErrRequestCanceled):
		o.log.DebugContext(ctx, "introspect: introspection abandoned: the request was canceled", "endpoint", info.Endpoint,
			"duration", info.Duration)
	default:
		o.log.WarnContext(ctx, "introspect: introspection failed", "endpoint", info.Endpoint,
			"duration", info.Duration, "error", info.Err)
	}
}

func (o observer) refreshAhead(ctx context.Context) {
	if o.h != nil && o.h.RefreshAhead != nil {
		o.h.RefreshAhead(ctx)
	}
}

func (o observer) decided(r *http.Request, d Decision) {
	if o.h != nil && o.h.Decided != nil {
		o.h.Decided(r, d)
	}
}

func (o observer) rejected(r *http.Request, ti *Introspection, status int, err error) {
	ctx := r.Context()
	if errors.Is(err, ErrRequestCanceled) {
		if o.h != nil && o.h.Canceled != nil {
			o.h.Canceled(ctx, err)
		}
		if o.log != nil && o.log.Enabled(ctx, slog.LevelDebug) {
			o.log.DebugContext(ctx, "introspect: request canceled before a verdict", "method", r.Method, "path", r.URL.Path)
		}
		return
	}
	if o.h != nil && o.h.Rejected != nil {
		o.h.Rejected(ctx, status, err)
	}
	o.decided(r, Decision{Status: status, Err: err, Introspection: ti})
	if o.log != nil && o.log.Enabled(ctx, slog.LevelDebug) {
		o.log.DebugContext(ctx, "introspect: request refused", "method", r.Method, "path", r.URL.Path,
			"status", status, "reason", err)
	}
}

// panicked reports a recovered panic of a callback. It never panics itself:
// it may run in a deferred recovery at the top of a goroutine.
func (o observer) panicked(ctx context.Context, v any, stack []byte) {
	if o.h != nil && o.h.Panicked != nil {
		func() {
			defer func() { _ = recover() }()
			o.h.Panicked(ctx, v, stack)
		}()
	}
	if o.log != nil {
		func() {
			defer func() { _ = recover() }()
			o.log.ErrorContext(ctx, "introspect: recovered a panic in a callback", "panic", fmt.Sprint(v), "stack", string(stack))
		}()
	}
}

func (o observer) bulkheadFull(ctx context.Context) {
	if o.h != nil && o.h.BulkheadFull != nil {
		o.h.BulkheadFull(ctx)
	}
}

func (o observer) discoveryDone(ctx context.Context, info DiscoveryInfo) {
	if o.h != nil && o.h.DiscoveryDone != nil {
		o.h.DiscoveryDone(ctx, info)
	}
}

// startSpan calls the StartSpan hook. It returns the context the work runs
// with and the function to call when the work ends, never nil.
func (o observer) startSpan(ctx context.Context, info SpanInfo) (context.Context, func(error)) {
	if o.h == nil || o.h.StartSpan == nil {
		return ctx, noEnd
	}
	next, end := o.h.StartSpan(ctx, info)
	if next == nil {
		next = ctx
	}
	if end == nil {
		end = noEnd
	}
	return next, end
}

func noEnd(error) {}
