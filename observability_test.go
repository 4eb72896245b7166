package introspect_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// events records what hooks and a transport see, in order.
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, s)
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	all := e.all
	e.all = nil
	return all
}

// spanKey marks the contexts a StartSpan hook returned.
type spanKey struct{}

// spanOf names the span on ctx, "-" if none.
func spanOf(ctx context.Context) string {
	if s, ok := ctx.Value(spanKey{}).(string); ok {
		return s
	}
	return "-"
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// watchedClient is an HTTP client whose transport records the span on each
// request's context, then sends it on.
func watchedClient(ev *events) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		ev.add("transport " + r.URL.Path + " span=" + spanOf(r.Context()))
		return http.DefaultTransport.RoundTrip(r)
	})}
}

// spanHooks records every event that carries the span, naming each span
// after its op.
func spanHooks(ev *events) *introspect.Hooks {
	return &introspect.Hooks{
		StartSpan: func(ctx context.Context, info introspect.SpanInfo) (context.Context, func(error)) {
			ev.add("start " + info.Op + " " + info.Endpoint + " parent=" + spanOf(ctx))
			return context.WithValue(ctx, spanKey{}, info.Op), func(err error) {
				ev.add("end " + info.Op + " err=" + errClass(err))
			}
		},
		IntrospectStart: func(ctx context.Context, endpoint string) {
			ev.add("introspect-start " + endpoint + " span=" + spanOf(ctx))
		},
		IntrospectDone: func(ctx context.Context, info introspect.IntrospectDoneInfo) {
			ev.add("introspect-done span=" + spanOf(ctx) + " err=" + errClass(info.Err))
		},
		DiscoveryDone: func(ctx context.Context, info introspect.DiscoveryInfo) {
			if info.Duration <= 0 {
				ev.add("discovery-done without a duration")
			}
			ev.add("discovery-done " + info.Document + " span=" + spanOf(ctx) + " err=" + errClass(info.Err))
		},
	}
}

// errClass names err by the sentinel it matches.
func errClass(err error) string {
	var re *introspect.ResponseError
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, introspect.ErrDiscovery):
		return "discovery"
	case errors.As(err, &re):
		return "status-" + http.StatusText(re.StatusCode)
	case errors.Is(err, introspect.ErrUnavailable):
		return "unavailable"
	}
	return "other"
}

// Chain calls every hook of Hooks, each in the order of its arguments,
// skipping nil arguments and unset hooks: a hook added to Hooks and
// forgotten by Chain fails this test.
func TestChainCallsEveryHook(t *testing.T) {
	ht := reflect.TypeFor[introspect.Hooks]()
	for i := range ht.NumField() {
		field := ht.Field(i)
		t.Run(field.Name, func(t *testing.T) {
			var got []string
			recorder := func(name string) reflect.Value {
				return reflect.MakeFunc(field.Type, func(args []reflect.Value) []reflect.Value {
					got = append(got, name)
					out := make([]reflect.Value, field.Type.NumOut())
					for j := range out {
						out[j] = reflect.Zero(field.Type.Out(j))
					}
					return out
				})
			}
			var a, b, unset introspect.Hooks
			reflect.ValueOf(&a).Elem().Field(i).Set(recorder("a"))
			reflect.ValueOf(&b).Elem().Field(i).Set(recorder("b"))
			chained := reflect.ValueOf(introspect.Chain(&a, nil, &unset, &b)).Elem().Field(i)
			require.False(t, chained.IsNil(), "Chain leaves %s unset", field.Name)
			args := make([]reflect.Value, field.Type.NumIn())
			for j := range args {
				switch in := field.Type.In(j); in {
				case reflect.TypeFor[context.Context]():
					args[j] = reflect.ValueOf(context.Background())
				case reflect.TypeFor[*http.Request]():
					args[j] = reflect.ValueOf(httptest.NewRequest(http.MethodGet, "/", nil))
				default:
					args[j] = reflect.Zero(in)
				}
			}
			out := chained.Call(args)
			assert.Equal(t, []string{"a", "b"}, got)
			if field.Name == "StartSpan" {
				require.NotNil(t, out[0].Interface(), "StartSpan returned no context")
				out[1].Interface().(func(error))(nil) // ends nothing: neither hook returned an end
			}

			alone := reflect.ValueOf(introspect.Chain(&unset, nil)).Elem().Field(i)
			assert.True(t, alone.IsNil(), "Chain sets %s though no argument has it", field.Name)
		})
	}
}

// Chained StartSpan hooks nest: each sees the context of the one before,
// and the ends run in the reverse order, each once, with the work's error.
func TestChainStartSpanNests(t *testing.T) {
	var ev events
	span := func(name string) *introspect.Hooks {
		return &introspect.Hooks{StartSpan: func(ctx context.Context, info introspect.SpanInfo) (context.Context, func(error)) {
			ev.add(name + " starts " + info.Op + " under " + spanOf(ctx))
			return context.WithValue(ctx, spanKey{}, name), func(err error) { ev.add(name + " ends err=" + errClass(err)) }
		}}
	}
	quiet := &introspect.Hooks{StartSpan: func(context.Context, introspect.SpanInfo) (context.Context, func(error)) {
		ev.add("quiet starts")
		return nil, nil // neither a new context nor an end
	}}
	h := introspect.Chain(span("outer"), quiet, span("inner"))
	ctx, end := h.StartSpan(context.Background(), introspect.SpanInfo{Op: "introspect"})
	assert.Equal(t, "inner", spanOf(ctx))
	end(introspect.ErrUnavailable)
	assert.Equal(t, []string{
		"outer starts introspect under -",
		"quiet starts",
		"inner starts introspect under outer",
		"inner ends err=unavailable",
		"outer ends err=unavailable",
	}, ev.take())
}

// Chain reads its arguments once: a hook set on them later is not called.
func TestChainCopies(t *testing.T) {
	var calls []string
	h := &introspect.Hooks{CacheMiss: func(context.Context) { calls = append(calls, "first") }}
	c := introspect.Chain(h)
	h.CacheMiss = func(context.Context) { calls = append(calls, "later") }
	c.CacheMiss(context.Background())
	assert.Equal(t, []string{"first"}, calls)
}

// The StartSpan hook wraps each call to the authorization server: its
// context reaches IntrospectStart, the HTTP transport and IntrospectDone,
// its end comes last with the call's error, also when the transport
// panics; the endpoint it sees has no query.
func TestStartSpanWrapsIntrospection(t *testing.T) {
	tests := []struct {
		name      string
		fault     *introspecttest.Fault
		panics    bool
		wantEvent []string
		status    int
	}{
		{name: "verdict", status: http.StatusOK, wantEvent: []string{
			"start introspect ENDPOINT parent=-",
			"introspect-start ENDPOINT span=introspect",
			"transport /introspect span=introspect",
			"introspect-done span=introspect err=nil",
			"end introspect err=nil",
		}},
		{name: "server error", fault: ptr(introspecttest.Respond(http.StatusBadGateway, "text/plain", "down")),
			status: http.StatusServiceUnavailable, wantEvent: []string{
				"start introspect ENDPOINT parent=-",
				"introspect-start ENDPOINT span=introspect",
				"transport /introspect span=introspect",
				"introspect-done span=introspect err=status-Bad Gateway",
				"end introspect err=status-Bad Gateway",
			}},
		{name: "transport panics", panics: true, status: http.StatusServiceUnavailable, wantEvent: []string{
			"start introspect ENDPOINT parent=-",
			"introspect-start ENDPOINT span=introspect",
			"transport /introspect span=introspect",
			"end introspect err=unavailable",
			"panicked",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as := newAS(t)
			if tc.fault != nil {
				as.SetFault(*tc.fault)
			}
			var ev events
			hooks := spanHooks(&ev)
			hooks.Panicked = func(context.Context, any, []byte) { ev.add("panicked") }
			hc := watchedClient(&ev)
			if tc.panics {
				hc = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					ev.add("transport " + r.URL.Path + " span=" + spanOf(r.Context()))
					panic("transport failure")
				})}
			}
			cache, err := introspect.NewLRUCache(10)
			require.NoError(t, err)
			mw := newMW(t, as, introspect.WithEndpoint(as.IntrospectionURL()+"?tenant=t1"), introspect.WithCache(cache),
				introspect.WithHooks(hooks), introspect.WithHTTPClient(hc))
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			res := serve(mw.Handler(okHandler), bearer(tok))
			require.Equal(t, tc.status, res.status)
			want := slices.Clone(tc.wantEvent)
			for i := range want {
				want[i] = strings.ReplaceAll(want[i], "ENDPOINT", as.IntrospectionURL())
			}
			assert.Equal(t, want, ev.take())

			if tc.status == http.StatusOK {
				// A cache hit makes no call: no span.
				require.Equal(t, http.StatusOK, serve(mw.Handler(okHandler), bearer(tok)).status)
				assert.Empty(t, ev.take())
			}
		})
	}
}

// The span of a call on the request's own context (no cache) is a child of
// the request's: StartSpan gets the request's context, values included.
func TestStartSpanParentIsTheRequest(t *testing.T) {
	as := newAS(t)
	var ev events
	mw := newMW(t, as, introspect.WithHooks(spanHooks(&ev)))
	r := bearer(as.Issue(introspecttest.Claims{Subject: "alice"}))
	r = r.WithContext(context.WithValue(r.Context(), spanKey{}, "server"))
	require.Equal(t, http.StatusOK, serve(mw.Handler(okHandler), r).status)
	got := ev.take()
	require.NotEmpty(t, got)
	assert.Equal(t, "start introspect "+as.IntrospectionURL()+" parent=server", got[0])
}

// BulkheadFull reports a call not made because the bulkhead stayed full
// until the call's deadline; the request gets 503 and no span starts.
func TestBulkheadFullHook(t *testing.T) {
	as := newAS(t)
	release := make(chan struct{})
	as.SetFault(introspecttest.Block(release))
	var ev events
	hooks := spanHooks(&ev)
	hooks.BulkheadFull = func(ctx context.Context) { ev.add("bulkhead-full span=" + spanOf(ctx)) }
	mw := newMW(t, as, introspect.WithMaxConcurrentIntrospections(1), introspect.WithHooks(hooks))

	first := make(chan int, 1)
	go func() {
		first <- serve(mw.Handler(okHandler), bearer(as.Issue(introspecttest.Claims{Subject: "alice"}))).status
	}()
	require.Eventually(t, func() bool { return as.Calls() == 1 }, 5*time.Second, 5*time.Millisecond,
		"the first call reaches the server and holds the only slot")
	ev.take()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	second := bearer(as.Issue(introspecttest.Claims{Subject: "bob"})).WithContext(ctx)
	assert.Equal(t, http.StatusServiceUnavailable, serve(mw.Handler(okHandler), second).status)
	assert.Equal(t, []string{"bulkhead-full span=-"}, ev.take())

	close(release)
	assert.Equal(t, http.StatusOK, <-first)
	assert.Equal(t, int64(1), as.Calls(), "the second request made no call")
}

// DiscoveryDone reports each fetch of the metadata and the keys, with its
// duration and error; StartSpan wraps each, on the client's background
// context, and its context reaches the transport.
func TestDiscoveryHooks(t *testing.T) {
	t.Run("eager, good", func(t *testing.T) {
		as := discoAS(t)
		var ev events
		mw, err := introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(discoClientID, discoSecret),
			introspect.WithJWTResponse(), introspect.WithEagerDiscovery(),
			introspect.WithHooks(spanHooks(&ev)), introspect.WithHTTPClient(watchedClient(&ev)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = mw.Close() })
		assert.Equal(t, []string{
			"start metadata  parent=-",
			"transport /.well-known/oauth-authorization-server span=metadata",
			"discovery-done metadata span=metadata err=nil",
			"end metadata err=nil",
			"start jwks  parent=-",
			"transport /jwks span=jwks",
			"discovery-done jwks span=jwks err=nil",
			"end jwks err=nil",
		}, ev.take())
	})
	t.Run("server down", func(t *testing.T) {
		as := discoAS(t)
		as.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`))
		var ev events
		mw, err := introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(discoClientID, discoSecret),
			introspect.WithHooks(spanHooks(&ev)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = mw.Close() })
		res := serve(mw.Handler(okHandler), bearer(as.Issue(introspecttest.Claims{Subject: "alice"})))
		require.Equal(t, http.StatusServiceUnavailable, res.status)
		got := ev.take()
		assert.Contains(t, got, "discovery-done metadata span=metadata err=discovery")
		assert.Contains(t, got, "end metadata err=discovery")
		assert.Contains(t, got, "introspect-done span=introspect err=discovery", "the request's call fails for want of metadata")
	})
}

// Hooks that panic on the refresher's goroutine are recovered and
// reported: the process goes on and discovery succeeds.
func TestPanickingDiscoveryHooksRecovered(t *testing.T) {
	for _, hook := range []string{"StartSpan", "DiscoveryDone", "end"} {
		t.Run(hook, func(t *testing.T) {
			as := discoAS(t)
			var ev events
			hooks := &introspect.Hooks{Panicked: func(_ context.Context, v any, _ []byte) { ev.add("panicked: " + v.(string)) }}
			switch hook {
			case "StartSpan":
				hooks.StartSpan = func(context.Context, introspect.SpanInfo) (context.Context, func(error)) { panic("in StartSpan") }
			case "DiscoveryDone":
				hooks.DiscoveryDone = func(context.Context, introspect.DiscoveryInfo) { panic("in DiscoveryDone") }
			case "end":
				hooks.StartSpan = func(ctx context.Context, info introspect.SpanInfo) (context.Context, func(error)) {
					if info.Op == "introspect" {
						return ctx, nil
					}
					return ctx, func(error) { panic("in end") }
				}
			}
			mw, err := introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(discoClientID, discoSecret),
				introspect.WithEagerDiscovery(), introspect.WithHooks(hooks))
			require.NoError(t, err)
			t.Cleanup(func() { _ = mw.Close() })
			assert.Equal(t, []string{"panicked: in " + hook}, ev.take())
			_, ok := mw.Client().Metadata()
			assert.True(t, ok, "the metadata was kept")
		})
	}
}
