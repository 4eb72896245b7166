package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxConcurrentIntrospections bounds the calls to the authorization
// server in flight at once, per middleware.
const DefaultMaxConcurrentIntrospections = 128

// WithCache caches verdicts in c, so a token costs one call to the
// authorization server per TTL window. Concurrent misses for one token are
// coalesced into one call, bounded as a whole by the call timeout
// ([WithTimeout]); each request waits for it only as long as its own
// context allows (the request that runs the call, when the call ends).
// Default: no cache; every request is introspected.
func WithCache(c Cache) Option {
	return func(cfg *config) {
		cfg.middlewareOnly("WithCache")
		if c == nil {
			cfg.fail("WithCache: nil cache")
			return
		}
		cfg.cache = c
	}
}

// WithMaxTTL bounds how long an active verdict is cached, and so how long a
// revoked token keeps working: a token revoked at the authorization server is
// refused at the latest MaxTTL later (call [Middleware.Evict] on a revocation
// event to refuse it at once). Entries never outlive the token's exp.
// Default 5 min.
func WithMaxTTL(d time.Duration) Option {
	return cacheDuration("WithMaxTTL", d, false, func(c *config) { c.maxTTL = d })
}

// WithDefaultTTL sets how long an active verdict without exp is cached,
// capped by the max TTL. Default 30 s.
func WithDefaultTTL(d time.Duration) Option {
	return cacheDuration("WithDefaultTTL", d, false, func(c *config) { c.defaultTTL = d })
}

// WithNegativeTTL sets how long a definite "active": false is cached; zero
// turns negative caching off. Errors are never cached. Default 10 s.
func WithNegativeTTL(d time.Duration) Option {
	return cacheDuration("WithNegativeTTL", d, true, func(c *config) { c.negativeTTL = d })
}

// WithStaleIfError serves a cached active verdict up to d past its cache
// expiry while the authorization server cannot be asked (unreachable,
// timeout, 5xx, 429; not when it answers a 4xx or garbage), never past the
// token's own exp. It trades revocation latency for
// availability. Default 0 (off).
func WithStaleIfError(d time.Duration) Option {
	return cacheDuration("WithStaleIfError", d, true, func(c *config) { c.staleTTL = d })
}

// WithRefreshAhead refreshes a cached active verdict in the background when it
// is used within window of its cache expiry, so requests for a token in use
// never wait on the authorization server. The window must be shorter than
// the max TTL. Default 0 (off).
func WithRefreshAhead(window time.Duration) Option {
	return cacheDuration("WithRefreshAhead", window, true, func(c *config) { c.refreshAhead = window })
}

// WithMaxConcurrentIntrospections bounds the calls to the authorization
// server in flight at once (a bulkhead). Beyond it, requests wait for a slot
// until their own deadline or the call timeout, then get 503, so a slow
// authorization server cannot pile up goroutines and connections. Default 128.
func WithMaxConcurrentIntrospections(n int) Option {
	return func(c *config) {
		c.middlewareOnly("WithMaxConcurrentIntrospections")
		if n <= 0 {
			c.fail("WithMaxConcurrentIntrospections: %d is not positive", n)
			return
		}
		c.maxConcurrent = n
	}
}

// cacheDuration is an option setting a duration of the cache policy; zero is
// accepted only where it means "off".
func cacheDuration(name string, d time.Duration, zeroOK bool, set func(*config)) Option {
	return func(c *config) {
		c.middlewareOnly(name)
		c.cachePolicy = append(c.cachePolicy, name)
		switch {
		case d < 0:
			c.fail("%s: %v is negative", name, d)
		case d == 0 && !zeroOK:
			c.fail("%s: %v is not positive", name, d)
		default:
			set(c)
		}
	}
}

func (c *config) checkCache() error {
	if c.cache == nil && len(c.cachePolicy) > 0 {
		return fmt.Errorf("introspect: %s needs WithCache: without a cache there is nothing to govern", strings.Join(slices.Compact(slices.Sorted(slices.Values(c.cachePolicy))), ", "))
	}
	if c.cache != nil && c.refreshAhead >= c.maxTTL {
		return errors.New("introspect: WithRefreshAhead window must be shorter than the max TTL")
	}
	return nil
}

// verdict returns the authorization server's verdict on token, from the cache
// when a fresh entry is there, otherwise from one call shared by all
// concurrent requests for the same key. now is the request's time, read once
// for the lookup; after a failed call, whether a stale entry may serve is
// judged by the clock then.
func (m *Middleware) verdict(ctx context.Context, cc *ClientContext, token string, now time.Time) (*Introspection, error) {
	if m.cfg.cache == nil || cc.Endpoint == "" {
		// Without a cache, or without the endpoint a key is made of (its
		// issuer could not be discovered): one call, never cached.
		ctx, cancel := context.WithTimeout(ctx, m.cfg.timeout)
		defer cancel()
		call := *cc // the closure keeps a copy, not the caller's pointer
		return m.protect(ctx, func() (*Introspection, error) { return m.introspect(ctx, call, token) })
	}
	key := NewCacheKey(cc.Endpoint, cc.Credentials.ClientID, token)
	var e CacheEntry
	var found bool
	if m.lru != nil {
		e, found = m.lru.get(key, now)
	} else {
		var err error
		if e, found, err = m.cfg.cache.Get(ctx, key); err != nil {
			m.obs.cacheError(ctx, "get", err)
			found = false
		}
	}
	if found && e.fresh(now) {
		m.obs.cacheHit(ctx, !e.Introspection.Active)
		if m.cfg.refreshAhead > 0 && e.Introspection.Active && !now.Before(e.Expiry.Add(-m.cfg.refreshAhead)) {
			m.refresh(ctx, key, *cc, token)
		}
		return e.Introspection, nil
	}
	return m.miss(ctx, key, *cc, token, e, found)
}

// miss joins or starts the shared call for key. e is the entry found in the
// cache, if any (found), for stale-if-error. It is apart from verdict so that
// the hit path does not pay for what the closure captures.
//
// The request that starts the call runs it on its own goroutine, unless its
// context has a deadline before the call's own, in which case the call runs
// on a new goroutine so that the request can give up at its deadline. The
// call is detached from the cancellation of the request that started it:
// others may be waiting for it and its answer is cached. A request whose
// context is done gets ErrUnavailable: a waiting one at once, the one
// running the call when the call ends, within the call timeout.
func (m *Middleware) miss(ctx context.Context, key CacheKey, cc ClientContext, token string, e CacheEntry, found bool) (*Introspection, error) {
	if err := ctx.Err(); err != nil {
		m.reportMiss(ctx)
		return nil, callerDone(err)
	}
	f, leader := m.flights.join(key)
	// Reported once the request is in a call, its own or another's: when
	// the hook has seen n misses, n requests wait on calls.
	m.reportMiss(ctx)
	wait := !leader
	if leader {
		bctx := context.WithoutCancel(ctx)
		call := func() (*Introspection, error) {
			// The call timeout bounds the whole call, cache included.
			sctx, cancel := context.WithTimeout(bctx, m.cfg.timeout)
			defer cancel()
			// A request that missed just as an earlier call finished finds that
			// call's verdict here instead of making a second call.
			e, ok, fence, err := m.recheck(sctx, key)
			if err == nil && ok && e.fresh(m.cfg.now()) {
				return e.Introspection, nil
			}
			// An entry there, fresh or not, is one the answer replaces.
			return m.introspectAndStore(sctx, key, cc, token, fence, err == nil || fence != "", ok || found)
		}
		report := func(v any, stack []byte) { m.obs.panicked(bctx, v, stack) }
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < m.cfg.timeout {
			go m.flights.run(key, f, call, report)
			wait = true
		} else {
			m.flights.run(key, f, call, report)
		}
	}
	if wait {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, callerDone(err)
	}
	if !leader {
		m.obs.coalesced(ctx)
	}
	if f.err != nil && m.cfg.staleTTL > 0 && found && e.Introspection != nil && e.Introspection.Active && outage(f.err) {
		// Judged now, after the failed call, not when the request came:
		// the call may have taken up to the call timeout.
		now := m.cfg.now()
		if now.Before(e.StaleUntil) && (e.Introspection.Expiry.IsZero() || now.Before(e.Introspection.Expiry)) {
			m.obs.staleServed(ctx, f.err)
			return e.Introspection, nil
		}
	}
	return f.ti, f.err
}

// reportMiss calls the CacheMiss hook, recovering a panic in it (reported
// as any callback's): the request goes on, and a call it leads still runs,
// so that the others waiting on it are answered.
func (m *Middleware) reportMiss(ctx context.Context) {
	defer func() {
		if v := recover(); v != nil {
			m.obs.panicked(ctx, v, debug.Stack())
		}
	}()
	m.obs.cacheMiss(ctx)
}

// flight is one call to the authorization server, shared by the requests
// that missed on its key while it ran. ti and err are set before done is
// closed.
type flight struct {
	done chan struct{}
	ti   *Introspection
	err  error
}

// errCallPanicked is the error of a call to the authorization server during
// which a callback (a SecretFunc, a ClientStore's credentials, a Cache, a
// hook, the HTTP client's transport) panicked. The panic is recovered and
// reported through the hooks and the logger. It is not an outage: the
// authorization server may have answered.
var errCallPanicked = fmt.Errorf("%w: a callback panicked during the introspection call", ErrUnavailable)

// ErrRequestCanceled: the request's own context was canceled (the client went
// away) before a verdict. It matches [ErrUnavailable], so the refusal is a
// 503 that no client reads, but it is no failure of the authorization
// server: it is logged at debug level, reported through [Hooks].Canceled
// instead of Rejected, and never triggers stale-if-error.
var ErrRequestCanceled = fmt.Errorf("%w: the request was canceled", ErrUnavailable)

// callerDone is the error for a request whose own context ended before a
// verdict: ErrRequestCanceled when it was canceled, ErrUnavailable when its
// deadline passed (the authorization server was too slow for it).
func callerDone(err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrRequestCanceled, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// protect runs call on the caller's goroutine, turning a panic in it into
// errCallPanicked, reported with its stack.
func (m *Middleware) protect(ctx context.Context, call func() (*Introspection, error)) (ti *Introspection, err error) {
	defer func() {
		if v := recover(); v != nil {
			ti, err = nil, errCallPanicked
			m.obs.panicked(ctx, v, debug.Stack())
		}
	}()
	return call()
}

// flights coalesces concurrent calls per cache key. It does what
// singleflight.Group does, with one difference that matters on the miss
// path: the request that starts a call may run it on its own goroutine while
// the others wait on a channel they can abandon (singleflight offers either
// a new goroutine per call, DoChan, or waits that cannot be cancelled, Do).
type flights struct {
	mu sync.Mutex
	m  map[CacheKey]*flight
}

// join returns the call in flight for key, or a new one that the caller must
// run (leader).
func (g *flights) join(key CacheKey) (f *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
		return f, false
	}
	if g.m == nil {
		g.m = make(map[CacheKey]*flight)
	}
	f = &flight{done: make(chan struct{})}
	g.m[key] = f
	return f, true
}

// run runs call for f, which join returned with leader set, and releases the
// requests waiting on it. A panic in call is recovered: the requests get
// errCallPanicked, and report is given the panic's value and stack. run may
// be the top of a goroutine of its own, where nothing else could recover.
func (g *flights) run(key CacheKey, f *flight, call func() (*Introspection, error), report func(v any, stack []byte)) {
	defer func() {
		if v := recover(); v != nil {
			f.ti, f.err = nil, errCallPanicked
			report(v, debug.Stack())
		}
		g.forget(key, f)
		close(f.done)
	}()
	f.ti, f.err = call()
}

// forget removes f from key, if it is still there (nil: whatever call is
// there), so that the next request for key starts a new call.
func (g *flights) forget(key CacheKey, f *flight) {
	g.mu.Lock()
	if cur, ok := g.m[key]; ok && (f == nil || cur == f) {
		delete(g.m, key)
	}
	g.mu.Unlock()
}

// outage reports whether err says the authorization server could not be
// reached or is overloaded (transport errors, timeouts, 5xx, 429), the only
// failures stale-if-error covers. An answer it did give (a 4xx, a malformed
// or oversized body) and our own configuration errors are not outages.
func outage(err error) bool {
	var re *ResponseError
	switch {
	case errors.Is(err, errCallPanicked), errors.Is(err, ErrRequestCanceled):
		return false
	case errors.As(err, &re):
		return re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests
	case errors.Is(err, ErrMalformedResponse), errors.Is(err, ErrMalformedHTTP), errors.Is(err, ErrResponseTooLarge),
		errors.Is(err, ErrClientConfig), errors.Is(err, ErrEncryptedResponse):
		return false
	}
	return errors.Is(err, ErrUnavailable)
}

// recheck looks key up once more, just before a call to the authorization
// server: a request that missed just as an earlier call finished finds that
// call's verdict here instead of making a second call. With a [FencedCache]
// it also reads the key's fence, under which the call's answer is stored.
// A fenced cache may return the fence with an error (a stored value that
// does not open): the fence was read, so the answer can replace that value.
func (m *Middleware) recheck(ctx context.Context, key CacheKey) (CacheEntry, bool, string, error) {
	if m.fenced != nil {
		return m.fenced.GetFenced(ctx, key)
	}
	e, ok, err := m.cfg.cache.Get(ctx, key)
	return e, ok, "", err
}

// introspectAndStore makes the shared call and caches its verdict. It runs
// detached from the caller that started it, bounded by the call timeout.
// fence is the key's fence as recheck read it before the call, fenceOK
// false if it could not be read.
func (m *Middleware) introspectAndStore(ctx context.Context, key CacheKey, cc ClientContext, token, fence string, fenceOK, replaces bool) (*Introspection, error) {
	gen := m.evictions.Load()
	ti, err := m.introspect(ctx, cc, token)
	if err != nil {
		return nil, err
	}
	// An answer made before an eviction that happened during the call may
	// predate a revocation: it answers this call, but is not cached.
	if m.evictions.Load() != gen {
		return ti, nil
	}
	e, ok := m.entryFor(ti, m.cfg.now())
	if !ok && replaces {
		// Not cached (inactive without negative caching, or past its exp):
		// the entry of the key from before must not go on serving, nor be
		// served stale in an outage, once the server has said otherwise.
		// (Only then: a Delete of a shared cache is an eviction, with its
		// record and announcement, which an unknown token must not cost.)
		if err := m.cfg.cache.Delete(ctx, key); err != nil {
			m.obs.cacheError(ctx, "delete", err)
		}
	}
	if ok {
		// A fenced cache stores the answer only if no process evicted the
		// key since the fence was read; without the fence it is not stored,
		// since it might undo an eviction made elsewhere during the call.
		switch {
		case m.fenced == nil:
			if err := m.cfg.cache.Set(ctx, key, e); err != nil {
				m.obs.cacheError(ctx, "set", err)
			}
		case fenceOK:
			if _, err := m.fenced.SetFenced(ctx, key, e, fence); err != nil {
				m.obs.cacheError(ctx, "set", err)
			}
		}
		// An eviction between the check above and Set: its Delete may have
		// come before Set, so the entry is deleted here. (Evict counts before
		// it deletes: either its Delete follows Set, or this sees the count.)
		if m.evictions.Load() != gen {
			if err := m.cfg.cache.Delete(ctx, key); err != nil {
				m.obs.cacheError(ctx, "delete", err)
			}
		}
	}
	return ti, nil
}

// entryFor applies the TTL policy: an active verdict for min(MaxTTL, exp −
// now), or DefaultTTL without exp; an inactive one for NegativeTTL. Stale
// entries are kept StaleTTL longer, never past exp.
func (m *Middleware) entryFor(ti *Introspection, now time.Time) (CacheEntry, bool) {
	if !ti.Active {
		if m.cfg.negativeTTL <= 0 {
			return CacheEntry{}, false
		}
		exp := now.Add(m.cfg.negativeTTL)
		return CacheEntry{Introspection: ti, Expiry: exp, StaleUntil: exp}, true
	}
	ttl := min(m.cfg.defaultTTL, m.cfg.maxTTL)
	if !ti.Expiry.IsZero() {
		ttl = min(m.cfg.maxTTL, ti.Expiry.Sub(now))
	}
	if ttl <= 0 {
		return CacheEntry{}, false
	}
	e := CacheEntry{Introspection: ti, Expiry: now.Add(ttl)}
	e.StaleUntil = e.Expiry
	if m.cfg.staleTTL > 0 {
		e.StaleUntil = e.Expiry.Add(m.cfg.staleTTL)
		if !ti.Expiry.IsZero() && ti.Expiry.Before(e.StaleUntil) {
			e.StaleUntil = ti.Expiry
		}
	}
	return e, true
}

// introspect makes one call to the authorization server within the bulkhead.
// The caller bounds ctx by the call timeout.
func (m *Middleware) introspect(ctx context.Context, cc ClientContext, token string) (*Introspection, error) {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		if err := ctx.Err(); errors.Is(err, context.Canceled) {
			return nil, callerDone(err)
		}
		m.obs.bulkheadFull(ctx)
		return nil, fmt.Errorf("%w: too many calls in flight: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-m.sem }()
	endpoint := redactURL(cc.Endpoint)
	ctx, end := m.obs.startSpan(ctx, SpanInfo{Op: "introspect", Endpoint: endpoint})
	err := errCallPanicked // what end is told if a callback panics during the call
	defer func() { end(err) }()
	m.obs.introspectStart(ctx, endpoint)
	start := time.Now()
	var ti *Introspection
	ti, err = m.client.fetch(ctx, cc, token)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller went away (only a call on the request's own context can
		// see that): not the authorization server's failure.
		ti, err = nil, callerDone(ctx.Err())
	}
	info := IntrospectDoneInfo{Endpoint: endpoint, Duration: time.Since(start), Err: err}
	if ti != nil {
		info.Active = ti.Active
	}
	m.obs.introspectDone(ctx, info)
	return ti, err
}

// refresh starts a background refresh of key unless one is running or the
// middleware is closed.
func (m *Middleware) refresh(ctx context.Context, key CacheKey, cc ClientContext, token string) {
	if _, busy := m.refreshing.LoadOrStore(key, struct{}{}); busy {
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.refreshing.Delete(key)
		return
	}
	m.bg.Add(1)
	m.mu.Unlock()
	bctx := context.WithoutCancel(ctx)
	go func() {
		defer m.bg.Done()
		defer m.refreshing.Delete(key)
		// On the refresh's goroutine, under the deferred releases: a
		// panicking hook ends this refresh, not every later one, nor Close.
		defer func() {
			if v := recover(); v != nil {
				m.obs.panicked(bctx, v, debug.Stack())
			}
		}()
		m.obs.refreshAhead(bctx)
		// A call already in flight for key stores its answer: nothing to do.
		if f, leader := m.flights.join(key); leader {
			m.flights.run(key, f, func() (*Introspection, error) {
				ctx, cancel := context.WithTimeout(bctx, m.cfg.timeout)
				defer cancel()
				_, _, fence, err := m.recheck(ctx, key)
				return m.introspectAndStore(ctx, key, cc, token, fence, err == nil || fence != "", true)
			}, func(v any, stack []byte) { m.obs.panicked(bctx, v, stack) })
		}
	}()
}

// Evict removes token's cached verdict at once, for example on a revocation
// event; with a shared cache (Redis) it is removed for every replica. The
// middleware must use static or lazy credentials; with a ClientStore use
// [Middleware.EvictAs]. Without a cache it does nothing.
func (m *Middleware) Evict(ctx context.Context, token string) error {
	if m.cfg.store != nil {
		return errors.New("introspect: Evict: the middleware uses a ClientStore: call EvictAs")
	}
	return m.EvictAs(ctx, m.client.staticContext(), token)
}

// EvictAs is [Middleware.Evict] for the client context cc.
func (m *Middleware) EvictAs(ctx context.Context, cc ClientContext, token string) error {
	if m.cfg.cache == nil {
		return nil
	}
	cc, err := m.client.keyContext(ctx, cc)
	if err != nil {
		return fmt.Errorf("introspect: evict: %w", err)
	}
	if cc.Endpoint == "" {
		return fmt.Errorf("%w: evict: the client context names no endpoint", ErrClientConfig)
	}
	key := NewCacheKey(cc.Endpoint, cc.Credentials.ClientID, token)
	m.evictions.Add(1) // calls in flight now will not cache their answer
	m.flights.forget(key, nil)
	if err := m.cfg.cache.Delete(ctx, key); err != nil {
		m.obs.cacheError(ctx, "delete", err)
		return fmt.Errorf("introspect: evict: %w", err)
	}
	for _, ukey := range m.cachedUserinfoKeys(cc, token) {
		m.flights.forget(ukey, nil)
		if err := m.cfg.cache.Delete(ctx, ukey); err != nil {
			m.obs.cacheError(ctx, "delete", err)
			return fmt.Errorf("introspect: evict: userinfo: %w", err)
		}
	}
	return nil
}

// Close waits for background refreshes to end and releases the client's
// background work. The middleware still serves requests after Close, without
// refresh-ahead. It is safe to call twice.
func (m *Middleware) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.bg.Wait()
	return m.client.Close()
}

// redactURL is u without user info, query and fragment: the form in which
// URLs reach hooks, logs and errors, since a query or user info may carry
// credentials.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	// The authority follows "//" (after a scheme or not) up to the next '/';
	// its user info ends at its last '@', as net/url reads it: a password
	// may hold '@' itself.
	if i := strings.Index(u, "//"); i == 0 || i > 0 && u[i-1] == ':' && !strings.Contains(u[:i], "/") {
		auth := u[i+2:]
		if slash := strings.IndexByte(auth, '/'); slash >= 0 {
			auth = auth[:slash]
		}
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			u = u[:i+2] + u[i+2+at+1:]
		}
	}
	return u
}
