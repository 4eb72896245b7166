package introspect_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// debugLogger logs everything, as text, into the returned buffer.
func debugLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// panickingCache is an in-memory cache whose Set panics.
type panickingCache struct{ *introspect.LRUCache }

func (c panickingCache) Set(context.Context, introspect.CacheKey, introspect.CacheEntry) error {
	panic("cache failure")
}

// panickingTransport panics on every call.
type panickingTransport struct{}

func (panickingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	panic("transport failure")
}

// panicStore is a ClientStore whose credentials' secret function panics.
type panicStore struct{ endpoint string }

func (s panicStore) ClientContext(*http.Request) (introspect.ClientContext, error) {
	return introspect.ClientContext{Endpoint: s.endpoint, Credentials: introspect.Credentials{
		ClientID:   rsClientID,
		SecretFunc: func(context.Context) (string, error) { panic("store secret failure") },
	}}, nil
}

// A panic in a user callback during a call that runs on a goroutine of the
// library (the request's deadline is below the call timeout, so the request
// can leave at its deadline) or on the request's own is recovered: the
// request gets 503, the panic is reported with its stack through the hooks
// and the logger, and the process goes on (a panic left unrecovered on a
// library goroutine would end this test binary).
func TestCallbackPanicRecovered(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", TTL: time.Hour})
	panicHook := func(context.Context, string) { panic("hook failure") }
	tests := []struct {
		name  string
		opts  func(h *introspect.Hooks) []introspect.Option
		value string
	}{
		{name: "SecretFunc", value: "secret failure", opts: func(*introspect.Hooks) []introspect.Option {
			return []introspect.Option{
				introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentialsFunc(rsClientID, func(context.Context) (string, error) { panic("secret failure") }),
				introspect.WithCache(newLRU(t, 10)),
			}
		}},
		{name: "ClientStore credentials", value: "store secret failure", opts: func(*introspect.Hooks) []introspect.Option {
			return []introspect.Option{
				introspect.WithClientStore(panicStore{as.IntrospectionURL()}),
				introspect.WithCache(newLRU(t, 10)),
			}
		}},
		{name: "Cache", value: "cache failure", opts: func(*introspect.Hooks) []introspect.Option {
			return []introspect.Option{
				introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentials(rsClientID, rsSecret),
				introspect.WithCache(panickingCache{newLRU(t, 10)}),
			}
		}},
		{name: "hook", value: "hook failure", opts: func(h *introspect.Hooks) []introspect.Option {
			h.IntrospectStart = panicHook
			return []introspect.Option{
				introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentials(rsClientID, rsSecret),
				introspect.WithCache(newLRU(t, 10)),
			}
		}},
		{name: "HTTP transport", value: "transport failure", opts: func(*introspect.Hooks) []introspect.Option {
			return []introspect.Option{
				introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentials(rsClientID, rsSecret),
				introspect.WithHTTPClient(&http.Client{Transport: panickingTransport{}}),
				introspect.WithCache(newLRU(t, 10)),
			}
		}},
		{name: "hook, no cache", value: "hook failure", opts: func(h *introspect.Hooks) []introspect.Option {
			h.IntrospectStart = panicHook
			return []introspect.Option{
				introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentials(rsClientID, rsSecret),
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reports atomic.Int64
			var value atomic.Value
			var stack atomic.Value
			hooks := &introspect.Hooks{Panicked: func(_ context.Context, v any, s []byte) {
				reports.Add(1)
				value.Store(v)
				stack.Store(string(s))
			}}
			log, logs := debugLogger()
			opts := append(tt.opts(hooks), introspect.WithHooks(hooks), introspect.WithLogger(log),
				introspect.WithTimeout(10*time.Second))
			mw, err := introspect.New(opts...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = mw.Close() })
			h := mw.Handler(okHandler)
			for _, deadline := range []time.Duration{5 * time.Second, time.Minute} {
				// 5 s is below the 10 s call timeout: the call runs on a
				// goroutine of the library. A minute: on the request's own.
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				res := serve(h, bearer(tok).WithContext(ctx))
				cancel()
				assert.Equal(t, http.StatusServiceUnavailable, res.status, "deadline %v", deadline)
			}
			require.Equal(t, int64(2), reports.Load(), "each panic is reported once")
			assert.Equal(t, tt.value, value.Load())
			assert.Contains(t, stack.Load(), "goroutine")
			assert.Contains(t, logs.String(), "level=ERROR")
			assert.Contains(t, logs.String(), "recovered a panic in a callback")
			assert.Contains(t, logs.String(), tt.value)
		})
	}
}

// A panic in the background refresh of a cached verdict (refresh-ahead) is
// recovered and reported; the cached verdict goes on serving.
func TestRefreshAheadPanicRecovered(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "alice", TTL: time.Hour})
	var refreshing atomic.Bool
	reported := make(chan any, 1)
	mw := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithRefreshAhead(30*time.Second),
		introspect.WithHooks(&introspect.Hooks{
			IntrospectStart: func(context.Context, string) {
				if refreshing.Load() {
					panic("refresh failure")
				}
			},
			Panicked: func(_ context.Context, v any, _ []byte) { reported <- v },
		}))
	h := mw.Handler(okHandler)
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
	refreshing.Store(true)
	clk.Advance(45 * time.Second) // within the refresh window
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status, "the cached verdict serves while the refresh runs")
	select {
	case v := <-reported:
		assert.Equal(t, "refresh failure", v)
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh's panic was not reported")
	}
	require.NoError(t, mw.Close(), "Close waits for the refresh, which ended")
	assert.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
}

// A CacheMiss or RefreshAhead hook that panics is reported and changes
// nothing else: the request goes on (a call it leads still runs, so no
// later request waits on a call nobody runs), a later refresh runs, and
// Close returns.
func TestPanickingHooksDoNotWedge(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "alice", TTL: time.Hour})
	var missPanics, refreshPanics atomic.Int64
	missPanics.Store(1)
	refreshPanics.Store(1)
	var reported atomic.Int64
	mw := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithRefreshAhead(30*time.Second),
		introspect.WithHooks(&introspect.Hooks{
			CacheMiss: func(context.Context) {
				if missPanics.Add(-1) == 0 {
					panic("miss hook")
				}
			},
			RefreshAhead: func(context.Context) {
				if refreshPanics.Add(-1) == 0 {
					panic("refresh hook")
				}
			},
			Panicked: func(context.Context, any, []byte) { reported.Add(1) },
		}))
	h := mw.Handler(okHandler)
	assert.Equal(t, http.StatusOK, serve(h, bearer(tok)).status, "the request whose hook panicked")
	require.NoError(t, mw.Evict(context.Background(), tok)) // a miss again, the hook quiet now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := mw.Verify(ctx, tok)
	require.NoError(t, err, "the next request is answered")

	clk.Advance(45 * time.Second) // within the refresh window: its hook panics
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
	require.Eventually(t, func() bool { return reported.Load() == 2 }, 5*time.Second, time.Millisecond)
	calls := as.Calls()
	clk.Advance(time.Second + time.Millisecond) // past promote and refresh pacing
	require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
	require.Eventually(t, func() bool { return as.Calls() > calls }, 5*time.Second, time.Millisecond, "a later refresh runs")
	closed := make(chan error, 1)
	go func() { closed <- mw.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// A panicking CacheMiss hook is recovered for a request whose context has
// ended before its lookup too: it gets its error, not the panic.
func TestPanickingMissHookOnEndedRequest(t *testing.T) {
	as := newAS(t)
	var reported atomic.Int64
	mw := newMW(t, as, introspect.WithCache(newLRU(t, 10)), introspect.WithHooks(&introspect.Hooks{
		CacheMiss: func(context.Context) { panic("miss hook") },
		Panicked:  func(context.Context, any, []byte) { reported.Add(1) },
	}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mw.Verify(ctx, as.Issue(introspecttest.Claims{Subject: "s"}))
	require.ErrorIs(t, err, introspect.ErrRequestCanceled)
	assert.EqualValues(t, 1, reported.Load())
}

// A request whose client goes away is no outage: it is logged at debug
// level, not as a failed introspection; the hooks count it through Canceled,
// not Rejected; and stale-if-error is not used for it.
func TestClientHangUpIsNotAnOutage(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "no cache"
		if cached {
			name = "cache"
		}
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			as := newAS(t, introspecttest.WithClock(clk.Now))
			tok := as.Issue(introspecttest.Claims{Subject: "alice", TTL: time.Hour})
			var canceled, rejected, stale atomic.Int64
			var doneErr atomic.Value
			log, logs := debugLogger()
			opts := []introspect.Option{introspect.WithLogger(log), introspect.WithHooks(&introspect.Hooks{
				Canceled:       func(_ context.Context, err error) { canceled.Add(1) },
				Rejected:       func(context.Context, int, error) { rejected.Add(1) },
				StaleServed:    func(context.Context, error) { stale.Add(1) },
				IntrospectDone: func(_ context.Context, info introspect.IntrospectDoneInfo) { doneErr.Store(errBox{info.Err}) },
			})}
			var h http.Handler
			if cached {
				opts = append(opts, introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(time.Hour))
				h = cachedMW(t, as, clk, opts...).Handler(okHandler)
				require.Equal(t, http.StatusOK, serve(h, bearer(tok)).status)
				clk.Advance(2 * time.Minute) // stale: a miss, with a stale entry to serve on an outage
			} else {
				h = newMW(t, as, opts...).Handler(okHandler)
			}
			calls := as.Calls()
			release := make(chan struct{})
			as.SetFault(introspecttest.Block(release))
			ctx, cancel := context.WithCancel(context.Background())
			rec := httptest.NewRecorder()
			served := make(chan struct{})
			go func() {
				defer close(served)
				h.ServeHTTP(rec, bearer(tok).WithContext(ctx))
			}()
			require.Eventually(t, func() bool { return as.Calls() == calls+1 }, 10*time.Second, time.Millisecond)
			cancel() // the client hangs up while the authorization server thinks
			if cached {
				// With a cache the call goes on, detached, for the others that
				// may wait for it: let the authorization server answer it.
				close(release)
				<-served
			} else {
				// Without one the call runs on the request's context and ends
				// with it; the server answers only after, so that its answer
				// cannot race with the cancel.
				<-served
				close(release)
			}

			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, int64(1), canceled.Load(), "counted as canceled")
			assert.Zero(t, rejected.Load(), "not counted as a refusal")
			assert.Zero(t, stale.Load(), "no stale verdict for a request nobody waits for")
			out := logs.String()
			assert.NotContains(t, out, "level=WARN", "no warning about the authorization server")
			assert.Contains(t, out, "level=DEBUG")
			assert.Contains(t, out, "request canceled before a verdict")
			if !cached {
				// The call ran on the request's context: it saw the cancel.
				box, _ := doneErr.Load().(errBox)
				require.Error(t, box.err)
				assert.ErrorIs(t, box.err, introspect.ErrRequestCanceled)
				assert.Contains(t, out, "introspection abandoned")
			}
		})
	}
}

type errBox struct{ err error }

// ErrRequestCanceled is a 503 (ErrUnavailable) that callers can tell apart.
func TestErrRequestCanceled(t *testing.T) {
	assert.True(t, errors.Is(introspect.ErrRequestCanceled, introspect.ErrUnavailable))
	assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(introspect.ErrRequestCanceled))
	assert.True(t, strings.HasPrefix(introspect.ErrRequestCanceled.Error(), "introspect: "))
}

// A panic during discovery, on the refresher's own goroutine, is recovered
// and reported, and the fetch fails closed.
func TestDiscoveryPanicRecovered(t *testing.T) {
	as := discoAS(t)
	reported := make(chan any, 4)
	_, err := introspect.New(
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(discoClientID, discoSecret),
		introspect.WithEagerDiscovery(),
		introspect.WithHTTPClient(&http.Client{Transport: panickingTransport{}}),
		introspect.WithHooks(&introspect.Hooks{Panicked: func(_ context.Context, v any, _ []byte) { reported <- v }}),
	)
	require.Error(t, err)
	assert.ErrorIs(t, err, introspect.ErrDiscovery)
	assert.Contains(t, err.Error(), "a callback panicked during a fetch")
	assert.Equal(t, "transport failure", <-reported)
}
