package introspectotel_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
	introspectotel "github.com/introspect-go/introspect/otel"
)

// A scripted set of requests against a real middleware and test
// authorization server gives exact counts of decisions by outcome, cache
// lookups by result and calls by result, one span per call, and leaves no
// call in flight.
func TestRequestsCounted(t *testing.T) {
	tm := newTelemetry(t)
	as := newAS(t)
	mw := newMW(t, as, tm.hooks, introspect.WithCache(newCache(t)))
	optional := newMW(t, as, tm.hooks, introspect.WithOptionalToken())
	api := mw.Handler(ok)
	admin := mw.Handler(mw.RequireScope("admin")(ok))
	ctx := context.Background()

	reader := "Bearer " + as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	revoked := as.Issue(introspecttest.Claims{Subject: "mallory", Scope: "read"})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	steps := []struct {
		name   string
		do     func() int
		status int
	}{
		{"valid token, a miss", func() int { return get(ctx, api, reader) }, 200},
		{"valid token, a hit", func() int { return get(ctx, api, reader) }, 200},
		{"missing token", func() int { return get(ctx, api, "") }, 401},
		{"malformed header", func() int { return get(ctx, api, "Bearer a b") }, 400},
		{"unknown token, a miss", func() int { return get(ctx, api, "Bearer bmV2ZXItaXNzdWVk") }, 401},
		{"unknown token, a negative hit", func() int { return get(ctx, api, "Bearer bmV2ZXItaXNzdWVk") }, 401},
		{"insufficient scope, a hit", func() int { return get(ctx, admin, reader) }, 403},
		{"token before revocation, a miss", func() int { return get(ctx, api, "Bearer "+revoked) }, 200},
		{"revoked token, a miss", func() int {
			as.Revoke(revoked)
			require.NoError(t, mw.Evict(ctx, revoked))
			return get(ctx, api, "Bearer "+revoked)
		}, 401},
		{"authorization server down, a miss", func() int {
			as.SetFault(introspecttest.Respond(http.StatusServiceUnavailable, "text/plain", "down"))
			defer as.ClearFault()
			return get(ctx, api, "Bearer "+as.Issue(introspecttest.Claims{Subject: "bob"}))
		}, 503},
		{"client gone, a miss", func() int {
			return get(canceled, api, "Bearer "+as.Issue(introspecttest.Claims{Subject: "carol"}))
		}, 503},
		{"no token, optional", func() int { return get(ctx, optional.Handler(ok), "") }, 200},
	}
	for _, s := range steps {
		require.Equal(t, s.status, s.do(), s.name)
	}

	assert.Equal(t, map[string]int64{
		"introspect.outcome=allowed":            4, // the 403 was accepted by the middleware, then refused by the guard
		"introspect.outcome=anonymous":          1,
		"introspect.outcome=missing":            1,
		"introspect.outcome=malformed":          1,
		"introspect.outcome=inactive":           3,
		"introspect.outcome=insufficient_scope": 1,
		"introspect.outcome=unavailable":        1,
		"introspect.outcome=canceled":           1,
	}, tm.sums(t, "introspect.decisions"))
	assert.Equal(t, map[string]int64{
		"introspect.cache.result=hit":          2,
		"introspect.cache.result=negative_hit": 1,
		"introspect.cache.result=miss":         6,
	}, tm.sums(t, "introspect.cache.lookups"))
	assert.Equal(t, map[string]uint64{
		"introspect.result=active":                    2,
		"introspect.result=inactive":                  2,
		"error.type=http_5xx,introspect.result=error": 1,
	}, tm.counts(t, "introspect.introspection.duration"))
	assert.Equal(t, map[string]int64{"": 0}, tm.sums(t, "introspect.introspection.in_flight"))
	for _, name := range []string{"introspect.cache.stale_served", "introspect.cache.errors", "introspect.introspection.coalesced",
		"introspect.bulkhead.rejections", "introspect.panics", "introspect.discovery.duration", "introspect.cache.refresh_ahead"} {
		assert.Empty(t, tm.metric(t, name).Data, "%s has no data point", name)
	}

	var got []string
	for _, s := range tm.ended(introspectotel.SpanIntrospection) {
		got = append(got, spanAttrs(s)+" "+s.Status().Code.String()+" "+s.Status().Description)
		assert.Equal(t, trace.SpanKindInternal, s.SpanKind())
		assert.False(t, s.Parent().IsValid(), "the test's requests carry no span")
	}
	assert.Equal(t, []string{
		"introspect.result=active Unset ",
		"introspect.result=inactive Unset ",
		"introspect.result=active Unset ",
		"introspect.result=inactive Unset ",
		"error.type=http_5xx,introspect.result=error Error http_5xx",
	}, got)
	assert.Len(t, tm.spans.Ended(), 5, "one span per call, none for cache hits or refusals without a call")
}

// Each failure of a call is counted and traced under its error type, from
// the package's error classes, as a real middleware meets it.
func TestErrorTypes(t *testing.T) {
	closedPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return addr
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, as *introspecttest.Server) []introspect.Option
		fault    *introspecttest.Fault
		asOpts   []introspecttest.Option
		errType  string
		canceled bool // the client goes away during the call
	}{
		{name: "5xx", fault: ptr(introspecttest.Respond(http.StatusBadGateway, "text/plain", "bad gateway")), errType: "http_5xx"},
		{name: "429", fault: ptr(introspecttest.Respond(http.StatusTooManyRequests, "application/json", `{}`)), errType: "http_4xx"},
		{name: "wrong secret", setup: func(*testing.T, *introspecttest.Server) []introspect.Option {
			return []introspect.Option{introspect.WithClientCredentials(clientID, "wrong")}
		}, errType: "http_4xx"},
		{name: "timeout", fault: ptr(introspecttest.Hang()), setup: func(*testing.T, *introspecttest.Server) []introspect.Option {
			return []introspect.Option{introspect.WithTimeout(100 * time.Millisecond)}
		}, errType: "timeout"},
		{name: "connection refused", setup: func(t *testing.T, _ *introspecttest.Server) []introspect.Option {
			return []introspect.Option{introspect.WithEndpoint("http://" + closedPort(t) + "/introspect")}
		}, errType: "connect"},
		{name: "untrusted certificate", asOpts: []introspecttest.Option{introspecttest.WithTLS()}, errType: "tls"},
		{name: "connection reset", fault: ptr(introspecttest.Reset()), errType: "connection_lost"},
		{name: "not JSON", fault: ptr(introspecttest.Respond(http.StatusOK, "application/json", "not json")), errType: "malformed_response"},
		{name: "too large", fault: ptr(introspecttest.Oversized(introspect.DefaultMaxResponseSize + 1)), errType: "response_too_large"},
		{name: "discovery fails", setup: func(_ *testing.T, as *introspecttest.Server) []introspect.Option {
			as.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`))
			return []introspect.Option{introspect.WithIssuer(as.Issuer)}
		}, errType: "discovery"},
		{name: "client gone", fault: ptr(introspecttest.Hang()), canceled: true, errType: "canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTelemetry(t)
			as := newAS(t, tc.asOpts...)
			var opts []introspect.Option
			if tc.setup != nil {
				opts = tc.setup(t, as)
			}
			if tc.fault != nil {
				as.SetFault(*tc.fault)
			}
			mw := newMW(t, as, tm.hooks, opts...)
			ctx := context.Background()
			if tc.canceled {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				go func() {
					for as.Calls() == 0 {
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			require.Equal(t, http.StatusServiceUnavailable, get(ctx, mw.Handler(ok), "Bearer "+tok))

			want := "error.type=" + tc.errType + ",introspect.result=error"
			assert.Equal(t, map[string]uint64{want: 1}, tm.counts(t, "introspect.introspection.duration"))
			spans := tm.ended(introspectotel.SpanIntrospection)
			require.Len(t, spans, 1)
			assert.Equal(t, want, spanAttrs(spans[0]))
			assert.Equal(t, codes.Error, spans[0].Status().Code)
			assert.Equal(t, tc.errType, spans[0].Status().Description)
			outcome := "introspect.outcome=unavailable"
			if tc.canceled {
				outcome = "introspect.outcome=canceled"
			}
			assert.Equal(t, map[string]int64{outcome: 1}, tm.sums(t, "introspect.decisions"))
			assert.Empty(t, tm.leaks(t, tok, clientSecret), "no token or secret in the telemetry")
		})
	}
}

func ptr[T any](v T) *T { return &v }

// clock is a settable clock for the middleware's cache.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// failingCache is a shared cache that is down, as a Redis cache is when
// Redis is unreachable: every operation fails.
type failingCache struct{}

var errCacheDown = errors.New("cache down")

func (failingCache) Get(context.Context, introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	return introspect.CacheEntry{}, false, errCacheDown
}

func (failingCache) Set(context.Context, introspect.CacheKey, introspect.CacheEntry) error {
	return errCacheDown
}

func (failingCache) Delete(context.Context, introspect.CacheKey) error { return errCacheDown }

// The cache's other events: a stale verdict served during an outage (by the
// outage's error type), a refresh ahead, failed operations (by operation),
// requests coalesced into a call in flight.
func TestCacheEvents(t *testing.T) {
	ctx := context.Background()
	t.Run("stale served", func(t *testing.T) {
		tm := newTelemetry(t)
		as := newAS(t)
		clk := newClock()
		mw := newMW(t, as, tm.hooks, introspect.WithCache(newCache(t)), introspect.WithClock(clk.now),
			introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(10*time.Minute))
		tok := "Bearer " + as.Issue(introspecttest.Claims{Subject: "alice"})
		require.Equal(t, 200, get(ctx, mw.Handler(ok), tok))
		clk.advance(2 * time.Minute)
		as.SetFault(introspecttest.Respond(http.StatusServiceUnavailable, "text/plain", "down"))
		require.Equal(t, 200, get(ctx, mw.Handler(ok), tok), "the stale verdict is served")
		assert.Equal(t, map[string]int64{"error.type=http_5xx": 1}, tm.sums(t, "introspect.cache.stale_served"))
		assert.Equal(t, map[string]int64{"introspect.outcome=allowed": 2}, tm.sums(t, "introspect.decisions"))
		assert.Equal(t, map[string]uint64{
			"introspect.result=active":                    1,
			"error.type=http_5xx,introspect.result=error": 1,
		}, tm.counts(t, "introspect.introspection.duration"))
	})
	t.Run("refresh ahead", func(t *testing.T) {
		tm := newTelemetry(t)
		as := newAS(t)
		clk := newClock()
		mw := newMW(t, as, tm.hooks, introspect.WithCache(newCache(t)), introspect.WithClock(clk.now),
			introspect.WithMaxTTL(time.Minute), introspect.WithRefreshAhead(30*time.Second))
		tok := "Bearer " + as.Issue(introspecttest.Claims{Subject: "alice"})
		require.Equal(t, 200, get(ctx, mw.Handler(ok), tok))
		clk.advance(45 * time.Second)
		require.Equal(t, 200, get(ctx, mw.Handler(ok), tok), "a hit within the window")
		require.NoError(t, mw.Close()) // waits for the refresh
		assert.Equal(t, map[string]int64{"": 1}, tm.sums(t, "introspect.cache.refresh_ahead"))
		assert.Equal(t, map[string]uint64{"introspect.result=active": 2}, tm.counts(t, "introspect.introspection.duration"))
		assert.Equal(t, map[string]int64{"introspect.cache.result=hit": 1, "introspect.cache.result=miss": 1},
			tm.sums(t, "introspect.cache.lookups"))
	})
	t.Run("cache down", func(t *testing.T) {
		tm := newTelemetry(t)
		as := newAS(t)
		mw := newMW(t, as, tm.hooks, introspect.WithCache(failingCache{}))
		tok := as.Issue(introspecttest.Claims{Subject: "alice"})
		require.Equal(t, 200, get(ctx, mw.Handler(ok), "Bearer "+tok), "a cache failure is a miss")
		require.Error(t, mw.Evict(ctx, tok))
		assert.Equal(t, map[string]int64{
			"introspect.cache.operation=get":    1,
			"introspect.cache.operation=set":    1,
			"introspect.cache.operation=delete": 1,
		}, tm.sums(t, "introspect.cache.errors"))
	})
	t.Run("coalesced", func(t *testing.T) {
		tm := newTelemetry(t)
		as := newAS(t)
		release := make(chan struct{})
		as.SetFault(introspecttest.Block(release))
		mw := newMW(t, as, tm.hooks, introspect.WithCache(newCache(t)))
		tok := "Bearer " + as.Issue(introspecttest.Claims{Subject: "alice"})
		var wg sync.WaitGroup
		statuses := make([]int, 3)
		for i := range statuses {
			wg.Go(func() { statuses[i] = get(ctx, mw.Handler(ok), tok) })
		}
		require.Eventually(t, func() bool {
			return tm.sums(t, "introspect.cache.lookups")["introspect.cache.result=miss"] == 3
		}, 30*time.Second, time.Millisecond, "every request missed: the call is held until they all join it")
		close(release)
		wg.Wait()
		assert.Equal(t, []int{200, 200, 200}, statuses)
		assert.Equal(t, int64(1), as.Calls())
		assert.Equal(t, map[string]int64{"": 2}, tm.sums(t, "introspect.introspection.coalesced"))
		assert.Equal(t, map[string]uint64{"introspect.result=active": 1}, tm.counts(t, "introspect.introspection.duration"))
	})
}

// The in-flight counter follows the calls, and a call not made because the
// bulkhead stayed full is counted as a rejection, with no span.
func TestBulkheadAndInFlight(t *testing.T) {
	tm := newTelemetry(t)
	as := newAS(t)
	release := make(chan struct{})
	as.SetFault(introspecttest.Block(release))
	mw := newMW(t, as, tm.hooks, introspect.WithMaxConcurrentIntrospections(1))
	first := make(chan int, 1)
	go func() {
		first <- get(context.Background(), mw.Handler(ok), "Bearer "+as.Issue(introspecttest.Claims{Subject: "a"}))
	}()
	require.Eventually(t, func() bool { return as.Calls() == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, map[string]int64{"": 1}, tm.sums(t, "introspect.introspection.in_flight"))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.Equal(t, 503, get(ctx, mw.Handler(ok), "Bearer "+as.Issue(introspecttest.Claims{Subject: "b"})))
	assert.Equal(t, map[string]int64{"": 1}, tm.sums(t, "introspect.bulkhead.rejections"))
	assert.Equal(t, map[string]int64{"": 1}, tm.sums(t, "introspect.introspection.in_flight"), "the rejected call was never in flight")

	close(release)
	require.Equal(t, 200, <-first)
	assert.Equal(t, map[string]int64{"": 0}, tm.sums(t, "introspect.introspection.in_flight"))
	assert.Len(t, tm.ended(introspectotel.SpanIntrospection), 1)
	assert.Equal(t, map[string]int64{"introspect.outcome=allowed": 1, "introspect.outcome=unavailable": 1},
		tm.sums(t, "introspect.decisions"))
}

// A callback that panics during a call is counted; the call's span ends
// with an error and the in-flight counter comes back to zero.
func TestPanicRecovered(t *testing.T) {
	tm := newTelemetry(t)
	as := newAS(t)
	panicking := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { panic("transport failure") })}
	mw := newMW(t, as, tm.hooks, introspect.WithCache(newCache(t)), introspect.WithHTTPClient(panicking))
	require.Equal(t, 503, get(context.Background(), mw.Handler(ok), "Bearer "+as.Issue(introspecttest.Claims{Subject: "a"})))
	assert.Equal(t, map[string]int64{"": 1}, tm.sums(t, "introspect.panics"))
	assert.Equal(t, map[string]int64{"": 0}, tm.sums(t, "introspect.introspection.in_flight"))
	spans := tm.ended(introspectotel.SpanIntrospection)
	require.Len(t, spans, 1)
	assert.Equal(t, "error.type=unavailable,introspect.result=error", spanAttrs(spans[0]))
	assert.Empty(t, tm.counts(t, "introspect.introspection.duration"), "a call that panicked has no duration")
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Each fetch of the metadata and the keys is timed by document and result,
// and traced as a root span with its document; failures carry the cause's
// error type.
func TestDiscovery(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		tm := newTelemetry(t)
		as := newAS(t)
		mw := newMW(t, as, tm.hooks, introspect.WithEndpoint(""), introspect.WithIssuer(as.Issuer),
			introspect.WithJWTResponse(), introspect.WithEagerDiscovery())
		require.Equal(t, 200, get(context.Background(), mw.Handler(ok), "Bearer "+as.Issue(introspecttest.Claims{Subject: "a"})))
		assert.Equal(t, map[string]uint64{
			"introspect.discovery.document=metadata,introspect.result=ok": 1,
			"introspect.discovery.document=jwks,introspect.result=ok":     1,
		}, tm.counts(t, "introspect.discovery.duration"))
		var got []string
		for _, s := range tm.ended(introspectotel.SpanDiscovery) {
			got = append(got, spanAttrs(s))
			assert.False(t, s.Parent().IsValid(), "a fetch runs in the background: a root span")
		}
		assert.Equal(t, []string{
			"introspect.discovery.document=metadata,introspect.result=ok",
			"introspect.discovery.document=jwks,introspect.result=ok",
		}, got)
	})
	for _, tc := range []struct {
		name    string
		fault   introspecttest.Fault
		errType string
	}{
		{"metadata times out", introspecttest.Hang(), "timeout"},
		{"metadata connection reset", introspecttest.Reset(), "connection_lost"},
		{"metadata answers 503", introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`), "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTelemetry(t)
			as := newAS(t)
			as.SetDiscoveryFault(tc.fault)
			_, err := introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(clientID, clientSecret),
				introspect.WithEagerDiscovery(), introspect.WithTimeout(100*time.Millisecond), introspect.WithHooks(tm.hooks))
			require.ErrorIs(t, err, introspect.ErrDiscovery)
			assert.Equal(t, map[string]uint64{
				"error.type=" + tc.errType + ",introspect.discovery.document=metadata,introspect.result=error": 1,
			}, tm.counts(t, "introspect.discovery.duration"))
			spans := tm.ended(introspectotel.SpanDiscovery)
			require.Len(t, spans, 1)
			assert.Equal(t, codes.Error, spans[0].Status().Code)
			assert.Equal(t, tc.errType, spans[0].Status().Description)
		})
	}
}

// With otelhttp on both sides, the spans nest: the API's server span, the
// middleware's call span, the transport's client span; the server span
// gets the decision. No span carries the token or the secret.
func TestSpansNestWithOtelhttp(t *testing.T) {
	tm := newTelemetry(t)
	as := newAS(t)
	hc := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithTracerProvider(tm.tp), otelhttp.WithMeterProvider(noop.NewMeterProvider()))}
	mw := newMW(t, as, tm.hooks, introspect.WithHTTPClient(hc))
	api := httptest.NewServer(otelhttp.NewHandler(mw.Handler(ok), "api",
		otelhttp.WithTracerProvider(tm.tp), otelhttp.WithMeterProvider(noop.NewMeterProvider())))
	defer api.Close()

	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, auth := range []string{"Bearer " + tok, ""} {
		req, err := http.NewRequest(http.MethodGet, api.URL+"/orders", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := api.Client().Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}

	spans := tm.spans.Ended()
	byKind := map[trace.SpanKind][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byKind[s.SpanKind()] = append(byKind[s.SpanKind()], s)
	}
	require.Len(t, byKind[trace.SpanKindServer], 2, "one server span per request")
	require.Len(t, byKind[trace.SpanKindInternal], 1, "one call: the second request had no token")
	require.Len(t, byKind[trace.SpanKindClient], 1, "the transport's span of the call")
	server, call, client := byKind[trace.SpanKindServer][0], byKind[trace.SpanKindInternal][0], byKind[trace.SpanKindClient][0]
	assert.Equal(t, introspectotel.SpanIntrospection, call.Name())
	assert.Equal(t, server.SpanContext().SpanID(), call.Parent().SpanID(), "the call is a child of the request")
	assert.Equal(t, server.SpanContext().TraceID(), call.SpanContext().TraceID())
	assert.Equal(t, call.SpanContext().SpanID(), client.Parent().SpanID(), "the transport's span is a child of the call")
	outcomes := map[string]bool{}
	for _, s := range byKind[trace.SpanKindServer] {
		for _, kv := range s.Attributes() {
			if kv.Key == introspectotel.OutcomeKey {
				outcomes[kv.Value.AsString()] = true
			}
		}
	}
	assert.Equal(t, map[string]bool{"allowed": true, "missing": true}, outcomes)
	assert.Empty(t, tm.leaks(t, tok, clientSecret))
}

// The endpoint's host is an attribute only when asked for, and then the
// host alone: never the port, the path or the query.
func TestEndpointHostAttribute(t *testing.T) {
	for _, withHost := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "with host"}[withHost], func(t *testing.T) {
			var opts []introspectotel.Option
			if withHost {
				opts = append(opts, introspectotel.WithEndpointHostAttribute())
			}
			tm := newTelemetry(t, opts...)
			as := newAS(t)
			endpoint := as.IntrospectionURL() + "?tenant=q-secret-Zr4"
			mw := newMW(t, as, tm.hooks, introspect.WithEndpoint(endpoint), introspect.WithCache(newCache(t)))
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			require.Equal(t, 200, get(context.Background(), mw.Handler(ok), "Bearer "+tok))

			result, host := "introspect.result=active", ""
			if withHost {
				result, host = "introspect.result=active,server.address=127.0.0.1", "server.address=127.0.0.1"
			}
			assert.Equal(t, map[string]uint64{result: 1}, tm.counts(t, "introspect.introspection.duration"))
			assert.Equal(t, map[string]int64{host: 0}, tm.sums(t, "introspect.introspection.in_flight"))
			spans := tm.ended(introspectotel.SpanIntrospection)
			require.Len(t, spans, 1)
			assert.Equal(t, result, spanAttrs(spans[0]))
			assert.Empty(t, tm.leaks(t, tok, clientSecret, clientID, "q-secret-Zr4", "/introspect", "alice"))
		})
	}
}

// Hooks of one's own run next to the instrumentation's through Chain.
func TestChainWithOwnHooks(t *testing.T) {
	tm := newTelemetry(t)
	as := newAS(t)
	var mine atomic.Int64
	own := &introspect.Hooks{IntrospectDone: func(context.Context, introspect.IntrospectDoneInfo) { mine.Add(1) }}
	mw := newMW(t, as, introspect.Chain(own, tm.hooks))
	require.Equal(t, 200, get(context.Background(), mw.Handler(ok), "Bearer "+as.Issue(introspecttest.Claims{Subject: "a"})))
	assert.Equal(t, int64(1), mine.Load())
	assert.Equal(t, map[string]uint64{"introspect.result=active": 1}, tm.counts(t, "introspect.introspection.duration"))
	assert.Len(t, tm.ended(introspectotel.SpanIntrospection), 1)
}

// The instruments' names, kinds, units and histogram buckets are those
// documented; every one has a description.
func TestInstruments(t *testing.T) {
	tm := newTelemetry(t)
	as := newAS(t)
	mw := newMW(t, as, tm.hooks, introspect.WithCache(newCache(t)), introspect.WithEndpoint(""),
		introspect.WithIssuer(as.Issuer), introspect.WithEagerDiscovery())
	require.Equal(t, 200, get(context.Background(), mw.Handler(ok), "Bearer "+as.Issue(introspecttest.Claims{Subject: "a"})))
	want := map[string]string{
		"introspect.decisions":               "sum {request}",
		"introspect.cache.lookups":           "sum {lookup}",
		"introspect.introspection.duration":  "histogram s",
		"introspect.introspection.in_flight": "non-monotonic sum {call}",
		"introspect.discovery.duration":      "histogram s",
	}
	got := map[string]string{}
	for _, m := range tm.collect(t) {
		assert.NotEmpty(t, m.Description, m.Name)
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			kind := "sum"
			if !d.IsMonotonic {
				kind = "non-monotonic sum"
			}
			got[m.Name] = kind + " " + m.Unit
		case metricdata.Histogram[float64]:
			got[m.Name] = "histogram " + m.Unit
			for _, dp := range d.DataPoints {
				assert.Equal(t, []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}, dp.Bounds)
			}
		default:
			got[m.Name] = "unexpected " + m.Unit
		}
	}
	assert.Equal(t, want, got)
}

// New refuses nil options and providers, in the package's words, and
// without providers uses the global ones.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []introspectotel.Option
		want string
	}{
		{"nil option", []introspectotel.Option{nil}, "introspectotel: nil option"},
		{"nil meter provider", []introspectotel.Option{introspectotel.WithMeterProvider(nil)}, "introspectotel: WithMeterProvider: nil meter provider"},
		{"nil tracer provider", []introspectotel.Option{introspectotel.WithTracerProvider(nil)}, "introspectotel: WithTracerProvider: nil tracer provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := introspectotel.New(tc.opts...)
			require.EqualError(t, err, tc.want)
			assert.Nil(t, h)
		})
	}
	t.Run("global providers", func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		tp := sdktrace.NewTracerProvider()
		otel.SetMeterProvider(mp)
		otel.SetTracerProvider(tp)
		t.Cleanup(func() {
			otel.SetMeterProvider(noop.NewMeterProvider())
			otel.SetTracerProvider(tracenoop.NewTracerProvider())
		})
		hooks, err := introspectotel.New()
		require.NoError(t, err)
		hooks.CacheMiss(context.Background())
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		require.Len(t, rm.ScopeMetrics, 1)
		assert.Equal(t, "introspect.cache.lookups", rm.ScopeMetrics[0].Metrics[0].Name)
		_, span := tp.Tracer("test").Start(context.Background(), "request")
		defer span.End()
		ctx, end := hooks.StartSpan(trace.ContextWithSpan(context.Background(), span), introspect.SpanInfo{Op: "introspect"})
		end(nil)
		assert.True(t, trace.SpanFromContext(ctx).SpanContext().IsValid(), "the global tracer provider started the span")
	})
}
