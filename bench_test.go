package introspect_test

import (
	"net/http"
	"runtime/metrics"
	"testing"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// discard is a ResponseWriter that allocates nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
})

// benchMiddleware is the middleware of the hit-path benchmarks: a static
// endpoint and client, an LRU cache of 100,000, defaults otherwise; tok is a
// token its test server, as, knows. Both end with b.
func benchMiddleware(b *testing.B) (as *introspecttest.Server, mw *introspect.Middleware, tok string) {
	b.Helper()
	as = introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
	b.Cleanup(as.Close)
	tok = as.Issue(introspecttest.Claims{Subject: "bench", Scope: "read write", ClientID: "app"})
	cache, err := introspect.NewLRUCache(100_000)
	if err != nil {
		b.Fatal(err)
	}
	mw, err = introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithCache(cache),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mw.Close() })
	return as, mw, tok
}

// BenchmarkMiddleware compares the cache-hit path with the bare handler:
// cache-hit minus bare is the middleware's cost per request.
//
//	go test -run '^$' -bench BenchmarkMiddleware -benchmem
func BenchmarkMiddleware(b *testing.B) {
	as, mw, tok := benchMiddleware(b)

	run := func(b *testing.B, h http.Handler, auth string) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			r, _ := http.NewRequest(http.MethodGet, "http://api.example/orders", nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := &discard{h: make(http.Header)}
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
	}
	b.Run("bare", func(b *testing.B) { run(b, benchHandler, "Bearer "+tok) })
	protected := mw.Handler(benchHandler)
	b.Run("cache-hit", func(b *testing.B) {
		// Warm the cache; the timed loop makes no call.
		if _, err := mw.Authenticate(bearer(tok)); err != nil {
			b.Fatal(err)
		}
		before := as.Calls()
		run(b, protected, "Bearer "+tok)
		if as.Calls() != before {
			b.Fatalf("the cache-hit benchmark called the authorization server %d times", as.Calls()-before)
		}
	})
	b.Run("cache-miss", func(b *testing.B) {
		// Every request asks the server (no cache): the miss path over loopback.
		uncached, err := introspect.New(
			introspect.WithEndpoint(as.IntrospectionURL()),
			introspect.WithClientCredentials(rsClientID, rsSecret),
		)
		if err != nil {
			b.Fatal(err)
		}
		run(b, uncached.Handler(benchHandler), "Bearer "+tok)
	})
}

// reportCPU, deferred at its start, reports the process's CPU time per
// operation of a benchmark as cpu-ns/op: what a request costs the machine,
// garbage collection included, and a figure that another job on the machine
// inflates less than ns/op when all of GOMAXPROCS run the benchmark. Of it,
// gc-cpu-ns/op is the runtime's estimate of the garbage collector's share.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	gcStart := gcCPU()
	return func() {
		if end, ok2 := processCPU(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
			b.ReportMetric((gcCPU()-gcStart)*1e9/float64(b.N), "gc-cpu-ns/op")
		}
	}
}

// gcCPU is the runtime's estimate of the CPU time spent in garbage
// collection so far, in seconds.
func gcCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}

// BenchmarkCacheKey is the SHA-256 key derivation alone.
func BenchmarkCacheKey(b *testing.B) {
	b.ReportAllocs()
	tok := "2YotnFZFEjr1zCsicMWpAA2YotnFZFEjr1zCsicMWpAA"
	for b.Loop() {
		_ = introspect.NewCacheKey("https://as.example.com/oauth2/introspect", "resource-server", tok)
	}
}
