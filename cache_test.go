package introspect_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// clock is a settable clock shared by the test server and the middleware.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func newLRU(t testing.TB, size int, opts ...introspect.LRUOption) *introspect.LRUCache {
	t.Helper()
	c, err := introspect.NewLRUCache(size, opts...)
	require.NoError(t, err)
	return c
}

// cachedMW is a middleware with an LRU cache on the clock clk.
func cachedMW(t *testing.T, as *introspecttest.Server, clk *clock, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	base := []introspect.Option{introspect.WithCache(newLRU(t, 1000, introspect.WithLRUClock(clk.Now))), introspect.WithClock(clk.Now)}
	return newMW(t, as, append(base, opts...)...)
}

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestTTLPolicy(t *testing.T) {
	tests := []struct {
		name     string
		claims   introspecttest.Claims
		revoke   bool
		opts     []introspect.Option
		stillHit time.Duration // after this the cached verdict is still used
		missAt   time.Duration // at this the authorization server is asked again
	}{
		{name: "max TTL caps a long-lived token", claims: introspecttest.Claims{TTL: time.Hour},
			opts: []introspect.Option{introspect.WithMaxTTL(2 * time.Minute)}, stillHit: 2*time.Minute - time.Second, missAt: 2 * time.Minute},
		{name: "default max TTL is 5 minutes", claims: introspecttest.Claims{TTL: time.Hour},
			stillHit: 5*time.Minute - time.Second, missAt: 5 * time.Minute},
		{name: "never past exp", claims: introspecttest.Claims{TTL: 40 * time.Second},
			stillHit: 39 * time.Second, missAt: 40 * time.Second},
		{name: "no exp: default TTL", claims: introspecttest.Claims{NoExpiry: true},
			opts: []introspect.Option{introspect.WithDefaultTTL(20 * time.Second)}, stillHit: 19 * time.Second, missAt: 20 * time.Second},
		{name: "no exp: default TTL capped by max TTL", claims: introspecttest.Claims{NoExpiry: true},
			opts: []introspect.Option{introspect.WithDefaultTTL(time.Hour), introspect.WithMaxTTL(time.Minute)}, stillHit: 59 * time.Second, missAt: time.Minute},
		{name: "negative TTL", revoke: true,
			opts: []introspect.Option{introspect.WithNegativeTTL(7 * time.Second)}, stillHit: 6 * time.Second, missAt: 7 * time.Second},
		{name: "default negative TTL is 10 s", revoke: true, stillHit: 9 * time.Second, missAt: 10 * time.Second},
		{name: "negative caching off", revoke: true,
			opts: []introspect.Option{introspect.WithNegativeTTL(0)}, missAt: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			as := newAS(t, introspecttest.WithClock(clk.Now))
			tok := as.Issue(tt.claims)
			want := 200
			if tt.revoke {
				as.Revoke(tok)
				want = 401
			}
			h := cachedMW(t, as, clk, tt.opts...).Handler(okHandler)
			start := clk.Now()
			at := func(d time.Duration) {
				clk.t.Store(start.Add(d).UnixNano())
			}
			assert.Equal(t, want, serve(h, bearer(tok)).status)
			require.Equal(t, int64(1), as.Calls())
			if tt.missAt == 0 {
				assert.Equal(t, want, serve(h, bearer(tok)).status)
				assert.Equal(t, int64(2), as.Calls(), "nothing cached")
				return
			}
			at(tt.stillHit)
			assert.Equal(t, want, serve(h, bearer(tok)).status)
			assert.Equal(t, int64(1), as.Calls(), "still cached at %v", tt.stillHit)
			at(tt.missAt)
			serve(h, bearer(tok))
			assert.Equal(t, int64(2), as.Calls(), "asked again at %v", tt.missAt)
		})
	}
}

func TestCachedVerdictRecheckedLocally(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	// nbf 30 s ahead: the server says active (it does not check nbf), the
	// local check refuses it until then, from the cache.
	tok := as.Issue(introspecttest.Claims{Subject: "later", NotBefore: clk.Now().Add(30 * time.Second)})
	h := cachedMW(t, as, clk, introspect.WithLeeway(0)).Handler(okHandler)
	assert.Equal(t, 401, serve(h, bearer(tok)).status)
	clk.Advance(31 * time.Second)
	assert.Equal(t, 200, serve(h, bearer(tok)).status)
	assert.Equal(t, int64(1), as.Calls(), "both answers came from one cached verdict")
}

func TestTenantIsolationOfKeys(t *testing.T) {
	k := introspect.NewCacheKey("https://a.example/introspect", "rs", "tok")
	assert.NotEqual(t, k, introspect.NewCacheKey("https://b.example/introspect", "rs", "tok"))
	assert.NotEqual(t, k, introspect.NewCacheKey("https://a.example/introspect", "rs2", "tok"))
	// Length prefixes keep shifted boundaries apart.
	assert.NotEqual(t, introspect.NewCacheKey("ab", "c", "tok"), introspect.NewCacheKey("a", "bc", "tok"))
	long := randomToken(t) + string(make([]byte, 2000))
	assert.Equal(t, introspect.NewCacheKey("e", "c", long), introspect.NewCacheKey("e", "c", long))
}

func TestNegativeFloodKeepsGoodEntries(t *testing.T) {
	as := newAS(t)
	cache := newLRU(t, 200, introspect.WithNegativeSize(50))
	h := newMW(t, as, introspect.WithCache(cache)).Handler(okHandler)
	good := make([]string, 150)
	for i := range good {
		good[i] = as.Issue(introspecttest.Claims{Subject: "u"})
		require.Equal(t, 200, serve(h, bearer(good[i])).status)
	}
	for range 5000 {
		require.Equal(t, 401, serve(h, bearer(randomToken(t))).status)
	}
	active, negative := cache.Len()
	assert.Equal(t, 150, active)
	assert.LessOrEqual(t, negative, 50)
	before := as.Calls()
	for _, tok := range good {
		require.Equal(t, 200, serve(h, bearer(tok)).status)
	}
	assert.Equal(t, before, as.Calls(), "every good token was still cached")
}

func TestLRUBoundedAndSeparateSpaces(t *testing.T) {
	ctx := context.Background()
	c := newLRU(t, 64, introspect.WithNegativeSize(8))
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		key := introspect.NewCacheKey("e", "c", randomToken(t))
		ti := &introspect.Introspection{Active: i%2 == 0}
		require.NoError(t, c.Set(ctx, key, introspect.CacheEntry{Introspection: ti, Expiry: exp, StaleUntil: exp}))
	}
	active, negative := c.Len()
	assert.LessOrEqual(t, active, 64)
	assert.GreaterOrEqual(t, active, 60, "shards share the size evenly")
	assert.LessOrEqual(t, negative, 8)

	key := introspect.NewCacheKey("e", "c", "x")
	require.NoError(t, c.Set(ctx, key, introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: exp, StaleUntil: exp}))
	require.NoError(t, c.Set(ctx, key, introspect.CacheEntry{Introspection: &introspect.Introspection{}, Expiry: exp, StaleUntil: exp}))
	e, ok, err := c.Get(ctx, key)
	require.NoError(t, err)
	require.True(t, ok)
	assert.False(t, e.Introspection.Active, "a later negative verdict replaces the positive one")
	require.NoError(t, c.Delete(ctx, key))
	_, ok, _ = c.Get(ctx, key)
	assert.False(t, ok)

	assert.Error(t, c.Set(ctx, key, introspect.CacheEntry{}), "an entry without a verdict")
	_, err = introspect.NewLRUCache(0)
	assert.Error(t, err)
	_, err = introspect.NewLRUCache(10, introspect.WithNegativeSize(-1))
	assert.Error(t, err)
}

func TestLRUDropsExpired(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c := newLRU(t, 10, introspect.WithLRUClock(clk.Now))
	key := introspect.NewCacheKey("e", "c", "t")
	until := clk.Now().Add(time.Minute)
	require.NoError(t, c.Set(ctx, key, introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: until, StaleUntil: until}))
	_, ok, _ := c.Get(ctx, key)
	assert.True(t, ok)
	clk.Advance(time.Minute)
	_, ok, _ = c.Get(ctx, key)
	assert.False(t, ok)
	active, _ := c.Len()
	assert.Zero(t, active)
}

// heldCalls is a cached middleware in front of an authorization server that
// holds every call until release is closed, with its cache misses and
// coalesced requests counted: tests use it to make requests meet on one call
// deterministically.
type heldCalls struct {
	as                *introspecttest.Server
	tok               string
	release           chan struct{}
	misses, coalesced atomic.Int64
	h                 http.Handler
}

func newHeldCalls(t *testing.T, opts ...introspect.Option) *heldCalls {
	hc := &heldCalls{as: newAS(t), release: make(chan struct{})}
	hc.tok = hc.as.Issue(introspecttest.Claims{Subject: "alice"})
	hc.as.SetFault(introspecttest.Block(hc.release))
	opts = append([]introspect.Option{introspect.WithCache(newLRU(t, 100)), introspect.WithHooks(&introspect.Hooks{
		CacheMiss: func(context.Context) { hc.misses.Add(1) },
		Coalesced: func(context.Context) { hc.coalesced.Add(1) },
	})}, opts...)
	hc.h = newMW(t, hc.as, opts...).Handler(okHandler)
	return hc
}

// start serves r on a goroutine; its result comes on the channel.
func (hc *heldCalls) start(r *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- serve(hc.h, r) }()
	return ch
}

// waitCall waits until the first request's call has reached the server, so
// that request is the one running it.
func (hc *heldCalls) waitCall(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return hc.as.Calls() == 1 }, 30*time.Second, time.Millisecond)
}

// waitMisses waits until n requests have missed the cache.
func (hc *heldCalls) waitMisses(t *testing.T, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return hc.misses.Load() == n }, 30*time.Second, time.Millisecond)
}

// TestCoalescingThousandFirstRequests: 1,000 concurrent first requests for
// one new token make exactly one call. The server holds the call until every
// request has missed the cache, so the result does not depend on timing.
func TestCoalescingThousandFirstRequests(t *testing.T) {
	hc := newHeldCalls(t)
	const n = 1000
	results := make([]<-chan result, n)
	for i := range results {
		results[i] = hc.start(bearer(hc.tok))
	}
	hc.waitMisses(t, n)
	close(hc.release)
	for _, res := range results {
		require.Equal(t, 200, (<-res).status)
	}
	assert.Equal(t, int64(1), hc.as.Calls())
	assert.Equal(t, int64(n-1), hc.coalesced.Load(), "all but the first joined the call")
}

// TestCancelledWaiterDoesNotFailOthers: a request that waits for a call
// started by another gives up at once when its context is cancelled, and
// the call goes on for the others.
func TestCancelledWaiterDoesNotFailOthers(t *testing.T) {
	hc := newHeldCalls(t)
	first := hc.start(bearer(hc.tok))
	hc.waitCall(t)
	ctx, cancel := context.WithCancel(context.Background())
	waiter := hc.start(bearer(hc.tok).WithContext(ctx))
	hc.waitMisses(t, 2)

	cancel()
	res := <-waiter // the call is still held: the waiter did not wait for it
	assert.Equal(t, 503, res.status, "the cancelled request gets no verdict")
	assert.Zero(t, hc.coalesced.Load(), "the cancelled waiter got no shared answer")
	close(hc.release)
	assert.Equal(t, 200, (<-first).status, "the request that started the call gets the verdict")
	assert.Equal(t, int64(1), hc.as.Calls())
	assert.Equal(t, 200, serve(hc.h, bearer(hc.tok)).status)
	assert.Equal(t, int64(1), hc.as.Calls(), "the shared call's verdict was cached")
}

// TestCancelledCallerStillServesOthers: the request that started a call is
// cancelled while another waits for the call. The call is not cancelled with
// it: the other request gets the verdict, which is cached; the cancelled one
// gets 503 when the call ends.
func TestCancelledCallerStillServesOthers(t *testing.T) {
	hc := newHeldCalls(t)
	ctx, cancel := context.WithCancel(context.Background())
	first := hc.start(bearer(hc.tok).WithContext(ctx))
	hc.waitCall(t)
	second := hc.start(bearer(hc.tok))
	hc.waitMisses(t, 2)

	cancel()
	close(hc.release)
	assert.Equal(t, 503, (<-first).status, "the cancelled request gets no verdict")
	assert.Equal(t, 200, (<-second).status, "the other request gets the verdict")
	assert.Equal(t, int64(1), hc.as.Calls())
	assert.Equal(t, 200, serve(hc.h, bearer(hc.tok)).status)
	assert.Equal(t, int64(1), hc.as.Calls(), "the shared call's verdict was cached")
}

// TestCallerDeadlineBeforeCallTimeout: a request whose deadline comes before
// the call timeout gets 503 at its deadline, while the call it started goes
// on for a request that waits longer.
func TestCallerDeadlineBeforeCallTimeout(t *testing.T) {
	hc := newHeldCalls(t, introspect.WithTimeout(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	first := hc.start(bearer(hc.tok).WithContext(ctx))
	hc.waitCall(t)
	second := hc.start(bearer(hc.tok))
	hc.waitMisses(t, 2)

	res := <-first // the call is still held: the request left at its deadline
	assert.Equal(t, 503, res.status)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	close(hc.release)
	assert.Equal(t, 200, (<-second).status, "the call went on for the other request")
	assert.Equal(t, int64(1), hc.as.Calls())
}

func TestErrorsNotCachedNorShared(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	h := newMW(t, as, introspect.WithCache(newLRU(t, 100))).Handler(okHandler)
	as.SetFault(introspecttest.Respond(503, "", ""))
	assert.Equal(t, 503, serve(h, bearer(tok)).status)
	assert.Equal(t, 503, serve(h, bearer(tok)).status)
	assert.Equal(t, int64(2), as.Calls(), "a failure is not cached")
	as.ClearFault()
	assert.Equal(t, 200, serve(h, bearer(tok)).status, "a request after a failure makes its own call")
	assert.Equal(t, int64(3), as.Calls())
}

func TestStaleIfError(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	long := as.Issue(introspecttest.Claims{Subject: "long", TTL: time.Hour})
	short := as.Issue(introspecttest.Claims{Subject: "short", TTL: 90 * time.Second})
	var stale atomic.Int64
	h := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(5*time.Minute),
		introspect.WithHooks(&introspect.Hooks{StaleServed: func(context.Context, error) { stale.Add(1) }}),
	).Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(long)).status)
	require.Equal(t, 200, serve(h, bearer(short)).status)

	as.SetFault(introspecttest.Respond(503, "", ""))
	clk.Advance(2 * time.Minute) // past the cache TTL, within StaleTTL
	assert.Equal(t, 200, serve(h, bearer(long)).status, "stale entry served while the AS fails")
	assert.Equal(t, int64(1), stale.Load())
	assert.Equal(t, 503, serve(h, bearer(short)).status, "never past the token's exp")

	clk.Advance(4 * time.Minute) // past cache TTL + StaleTTL
	assert.Equal(t, 503, serve(h, bearer(long)).status, "bounded by StaleTTL")

	as.ClearFault()
	assert.Equal(t, 200, serve(h, bearer(long)).status)
}

// An answer that is not cached (inactive without negative caching) still
// removes the entry it replaces: a revocation the middleware has seen is
// not undone by serving the old verdict stale in a later outage.
func TestStaleIfErrorAfterRevocationWithoutNegativeCache(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "x", TTL: time.Hour})
	h := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(10*time.Minute),
		introspect.WithNegativeTTL(0)).Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(tok)).status)
	as.Revoke(tok)
	clk.Advance(61 * time.Second)
	require.Equal(t, 401, serve(h, bearer(tok)).status, "revoked")
	as.SetFault(introspecttest.Respond(503, "", ""))
	assert.Equal(t, 503, serve(h, bearer(tok)).status, "the revoked token's old verdict is not served stale")
}

// Whether a stale entry may serve is judged after the failed call, not
// when the request came: a token whose exp passes during the call is not
// served stale.
func TestStaleIfErrorJudgedAfterTheCall(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "x", TTL: 70 * time.Second})
	var slow atomic.Bool
	h := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(10*time.Minute),
		introspect.WithHooks(&introspect.Hooks{IntrospectStart: func(context.Context, string) {
			if slow.Load() {
				clk.Advance(10 * time.Second) // the call takes 10 s
			}
		}})).Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(tok)).status)
	as.SetFault(introspecttest.Respond(503, "", ""))
	clk.Advance(65 * time.Second) // past the entry's TTL, before exp
	slow.Store(true)
	assert.Equal(t, 503, serve(h, bearer(tok)).status, "exp passed during the call")
}

// An active and an inactive Set of one key at once leave it in one space
// of the cache, never both (where the active one, looked up first, would
// win whatever came last).
func TestLRUCacheConcurrentSetsOneSpace(t *testing.T) {
	const rounds = 20000
	c, err := introspect.NewLRUCache(2*rounds, introspect.WithNegativeSize(2*rounds))
	require.NoError(t, err)
	exp := time.Now().Add(time.Hour)
	active := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: exp, StaleUntil: exp}
	inactive := introspect.CacheEntry{Introspection: &introspect.Introspection{}, Expiry: exp, StaleUntil: exp}
	for i := range rounds {
		key := introspect.NewCacheKey("https://as.example/introspect", "rs", fmt.Sprint("token-", i))
		var wg sync.WaitGroup
		for _, e := range []introspect.CacheEntry{active, inactive} {
			wg.Go(func() { _ = c.Set(context.Background(), key, e) })
		}
		wg.Wait()
	}
	a, n := c.Len()
	assert.Equal(t, rounds, a+n, "a key held in both spaces")
}

// deleteCounter is an LRU cache that counts its Deletes.
type deleteCounter struct {
	*introspect.LRUCache
	deletes atomic.Int64
}

func (c *deleteCounter) Delete(ctx context.Context, key introspect.CacheKey) error {
	c.deletes.Add(1)
	return c.LRUCache.Delete(ctx, key)
}

// Without negative caching, an unknown token's inactive answer deletes
// nothing (on a shared cache a Delete is an eviction, with its record and
// announcement); one that replaces a cached verdict (kept for
// stale-if-error) deletes it.
func TestUncachedAnswerDeletesOnlyWhatItReplaces(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	dc := &deleteCounter{LRUCache: newLRU(t, 100, introspect.WithLRUClock(clk.Now))}
	h := newMW(t, as, introspect.WithCache(dc), introspect.WithClock(clk.Now), introspect.WithNegativeTTL(0),
		introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(10*time.Minute)).Handler(okHandler)
	for i := range 5 {
		require.Equal(t, 401, serve(h, bearer(fmt.Sprint("unknown-token-", i))).status)
	}
	assert.Zero(t, dc.deletes.Load(), "unknown tokens delete nothing")
	tok := as.Issue(introspecttest.Claims{Subject: "x", TTL: time.Hour})
	require.Equal(t, 200, serve(h, bearer(tok)).status)
	as.Revoke(tok)
	clk.Advance(61 * time.Second)
	require.Equal(t, 401, serve(h, bearer(tok)).status)
	assert.Equal(t, int64(1), dc.deletes.Load(), "the revoked token's entry")
}

func TestStaleIfErrorOffByDefault(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "x", TTL: time.Hour})
	h := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute)).Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(tok)).status)
	as.SetFault(introspecttest.Respond(503, "", ""))
	clk.Advance(61 * time.Second)
	assert.Equal(t, 503, serve(h, bearer(tok)).status)
}

func TestRefreshAhead(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "hot", TTL: time.Hour})
	var refreshes atomic.Int64
	mw := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithRefreshAhead(10*time.Second),
		introspect.WithHooks(&introspect.Hooks{RefreshAhead: func(context.Context) { refreshes.Add(1) }}))
	h := mw.Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(tok)).status)

	clk.Advance(45 * time.Second) // outside the window: plain hit
	require.Equal(t, 200, serve(h, bearer(tok)).status)
	assert.Equal(t, int64(1), as.Calls())
	assert.Zero(t, refreshes.Load())

	release := make(chan struct{})
	as.SetFault(introspecttest.Block(release))
	clk.Advance(10 * time.Second) // 55 s: inside the window
	// The request is served from the cache while the refresh waits on the AS.
	assert.Equal(t, 200, serve(h, bearer(tok)).status)
	assert.Equal(t, 200, serve(h, bearer(tok)).status)
	require.Eventually(t, func() bool { return as.Calls() == 2 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, int64(1), refreshes.Load(), "one refresh at a time per entry")
	close(release)
	require.NoError(t, mw.Close()) // waits for the refresh

	clk.Advance(50 * time.Second) // 105 s: past the first entry's expiry, within the refreshed one
	assert.Equal(t, 200, serve(h, bearer(tok)).status)
	assert.Equal(t, int64(2), as.Calls(), "the refreshed entry was used")
}

func TestEvict(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	mw := newMW(t, as, introspect.WithCache(newLRU(t, 100)))
	h := mw.Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(tok)).status)
	as.Revoke(tok)
	assert.Equal(t, 200, serve(h, bearer(tok)).status, "revocation unseen while cached")
	require.NoError(t, mw.Evict(context.Background(), tok))
	assert.Equal(t, 401, serve(h, bearer(tok)).status)
	assert.Equal(t, int64(2), as.Calls())

	uncached := newMW(t, as)
	assert.NoError(t, uncached.Evict(context.Background(), tok), "nothing to evict without a cache")
}

// brokenCache fails every operation.
type brokenCache struct{}

func (brokenCache) Get(context.Context, introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	return introspect.CacheEntry{}, false, errors.New("cache down")
}

func (brokenCache) Set(context.Context, introspect.CacheKey, introspect.CacheEntry) error {
	return errors.New("cache down")
}

func (brokenCache) Delete(context.Context, introspect.CacheKey) error {
	return errors.New("cache down")
}

func TestBrokenCacheIsAMiss(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	var ops sync.Map
	mw := newMW(t, as, introspect.WithCache(brokenCache{}), introspect.WithHooks(&introspect.Hooks{
		CacheError: func(_ context.Context, op string, err error) { ops.Store(op, err.Error()) },
	}))
	h := mw.Handler(okHandler)
	for range 3 {
		assert.Equal(t, 200, serve(h, bearer(tok)).status)
	}
	assert.Equal(t, int64(3), as.Calls())
	for _, op := range []string{"get", "set"} {
		_, ok := ops.Load(op)
		assert.True(t, ok, "cache error reported for %s", op)
	}
	assert.Error(t, mw.Evict(context.Background(), tok))
	_, ok := ops.Load("delete")
	assert.True(t, ok)
}

func TestHooksSeeNoSecrets(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	var mu sync.Mutex
	var seen []string
	record := func(parts ...any) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range parts {
			seen = append(seen, fmtAny(p))
		}
	}
	hooks := &introspect.Hooks{
		CacheHit:        func(_ context.Context, neg bool) { record(neg) },
		CacheMiss:       func(context.Context) { record("miss") },
		IntrospectStart: func(_ context.Context, ep string) { record(ep) },
		IntrospectDone:  func(_ context.Context, info introspect.IntrospectDoneInfo) { record(info, info.Err) },
		Rejected:        func(_ context.Context, status int, err error) { record(status, err) },
	}
	h := newMW(t, as, introspect.WithCache(newLRU(t, 10)), introspect.WithHooks(hooks)).Handler(okHandler)
	serve(h, bearer(tok))
	serve(h, bearer(tok))
	serve(h, bearer("unknown-token"))
	as.SetFault(introspecttest.Respond(401, "application/json", `{"error":"invalid_client","error_description":"bad secret `+rsSecret+`"}`))
	serve(h, bearer("another-token"))
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	for _, s := range seen {
		for _, secret := range []string{tok, "unknown-token", "another-token", rsSecret} {
			assert.NotContains(t, s, secret)
		}
	}
}

// TestCacheEntryMemory reports the heap cost of one cached verdict for a
// typical answer (target ≤ 1 KiB) and shows the cache stays at its size.
func TestCacheEntryMemory(t *testing.T) {
	const size = 20_000
	ctx := context.Background()
	c := newLRU(t, size)
	exp := time.Now().Add(time.Hour)
	typical := []byte(`{"active":true,"scope":"openid profile email read:orders","client_id":"web-app-7f3a",` +
		`"username":"alice@example.com","token_type":"Bearer","exp":1924992000,"iat":1924988400,` +
		`"sub":"248289761001","aud":"https://api.example.com","iss":"https://as.example.com/","jti":"a1b2c3d4e5f6"}`)
	keys := make([]introspect.CacheKey, 3*size)
	for i := range keys {
		keys[i] = introspect.NewCacheKey("https://as.example.com/introspect", "rs", randomToken(t))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keys {
		var ti introspect.Introspection
		require.NoError(t, ti.UnmarshalJSON(typical))
		require.NoError(t, c.Set(ctx, keys[i], introspect.CacheEntry{Introspection: &ti, Expiry: exp, StaleUntil: exp}))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	active, _ := c.Len()
	require.Equal(t, size, active, "bounded at the configured size")
	perEntry := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / size
	t.Logf("heap per cached entry: %d bytes (%d entries)", perEntry, active)
	assert.LessOrEqual(t, perEntry, int64(1024))
	runtime.KeepAlive(c)
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case error:
		return x.Error()
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int:
		return http.StatusText(x)
	case introspect.IntrospectDoneInfo:
		s := x.Endpoint + " " + x.Duration.String()
		if x.Err != nil {
			s += " " + x.Err.Error()
		}
		return s
	}
	return "?"
}

// TestPanickingCallReleasesWaiters: when the shared call panics (here in a
// hook), the panic is recovered and reported with its stack, the request that
// ran the call and those waiting for it get 503 instead of a crash or a hang,
// and the next request makes a new call.
func TestPanickingCallReleasesWaiters(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	proceed := make(chan struct{})
	var starts, misses atomic.Int64
	reported := make(chan string, 2)
	mw := newMW(t, as, introspect.WithCache(newLRU(t, 100)), introspect.WithHooks(&introspect.Hooks{
		CacheMiss: func(context.Context) { misses.Add(1) },
		IntrospectStart: func(context.Context, string) {
			if starts.Add(1) == 1 {
				<-proceed
				panic("hook failure")
			}
		},
		Panicked: func(_ context.Context, v any, stack []byte) {
			reported <- fmt.Sprint(v) + "\n" + string(stack)
		},
	}))
	h := mw.Handler(okHandler)

	leader := make(chan result, 1)
	go func() { leader <- serve(h, bearer(tok)) }()
	require.Eventually(t, func() bool { return starts.Load() == 1 }, 10*time.Second, time.Millisecond)
	waiter := make(chan result, 1)
	go func() { waiter <- serve(h, bearer(tok)) }()
	require.Eventually(t, func() bool { return misses.Load() == 2 }, 10*time.Second, time.Millisecond)

	close(proceed)
	assert.Equal(t, 503, (<-leader).status, "the request that ran the call gets 503")
	assert.Equal(t, 503, (<-waiter).status, "the waiting request is released with no verdict")
	report := <-reported
	assert.True(t, strings.HasPrefix(report, "hook failure\n"), "the panic's value is reported: %q", report)
	assert.Contains(t, report, "goroutine", "the stack is reported")
	assert.Equal(t, 200, serve(h, bearer(tok)).status, "the next request makes a new call")
	assert.Equal(t, int64(2), starts.Load())
}

// TestLRURecency: a lookup moves an entry to the front of its LRU list at
// most once a second, so the entry evicted is the least recently used to
// within a second.
func TestLRURecency(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c := newLRU(t, 2, introspect.WithLRUClock(clk.Now))
	key := func(s string) introspect.CacheKey {
		return introspect.NewCacheKey("https://as.example/introspect", "rs", s)
	}
	set := func(s string) {
		until := clk.Now().Add(time.Hour)
		require.NoError(t, c.Set(ctx, key(s), introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: until, StaleUntil: until}))
	}
	has := func(s string) bool {
		_, ok, err := c.Get(ctx, key(s))
		require.NoError(t, err)
		return ok
	}

	set("a")
	set("b")
	clk.Advance(2 * time.Second)
	require.True(t, has("a")) // a to the front
	set("c")
	assert.False(t, has("b"), "the least recently used entry is evicted")
	assert.True(t, has("a"))
	assert.True(t, has("c"))

	// a was looked up again after c was added, but within a second of its
	// last move, so it stayed behind c: d evicts a.
	set("d")
	assert.True(t, has("c"))
	assert.True(t, has("d"))
	assert.False(t, has("a"), "a lookup within a second of the last move does not move the entry again")
}
