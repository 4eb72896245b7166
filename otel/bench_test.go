package introspectotel_test

import (
	"net/http"
	"testing"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
	introspectotel "github.com/introspect-go/introspect/otel"
)

// discard is a ResponseWriter that allocates nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkCacheHit is the middleware's cache-hit path without hooks, with
// the hooks on the global providers (no-op unless the program sets them),
// and with the hooks on the SDK recording into a manual reader: the
// difference to "no-hooks" is what the instrumentation adds per request.
//
//	go test -run '^$' -bench BenchmarkCacheHit -benchmem
func BenchmarkCacheHit(b *testing.B) {
	as := newAS(b)
	tok := as.Issue(introspecttest.Claims{Subject: "bench", Scope: "read"})
	global, err := introspectotel.New()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		hooks func(b *testing.B) *introspect.Hooks
	}{
		{"no-hooks", func(*testing.B) *introspect.Hooks { return nil }},
		{"otel-global-noop", func(*testing.B) *introspect.Hooks { return global }},
		{"otel-sdk-manual-reader", func(b *testing.B) *introspect.Hooks { return newTelemetry(b).hooks }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := []introspect.Option{
				introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentials(clientID, clientSecret),
				introspect.WithCache(newCache(b)),
			}
			if h := bc.hooks(b); h != nil {
				opts = append(opts, introspect.WithHooks(h))
			}
			mw, err := introspect.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer mw.Close()
			h := mw.Handler(ok)
			warm, _ := http.NewRequest(http.MethodGet, "http://api.example/orders", nil)
			warm.Header.Set("Authorization", "Bearer "+tok)
			if _, err := mw.Authenticate(warm); err != nil {
				b.Fatal(err)
			}
			before := as.Calls()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r, _ := http.NewRequest(http.MethodGet, "http://api.example/orders", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				w := &discard{h: make(http.Header)}
				for pb.Next() {
					h.ServeHTTP(w, r)
				}
			})
			if as.Calls() != before {
				b.Fatalf("the benchmark called the authorization server %d times", as.Calls()-before)
			}
		})
	}
}
