package introspect_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
)

// BenchmarkHitParts times the pieces of a cache hit one by one, with the
// token, endpoint and client of BenchmarkMiddleware, each in parallel like
// it: a table of where the hit path's time goes, to read next to a CPU
// profile of BenchmarkMiddleware/cache-hit.
//
//	go test -run '^$' -bench BenchmarkHitParts -benchmem -cpu 1,2
//
// authenticate is the whole check (Middleware.Authenticate); handler adds
// the request copy carrying the verdict (BenchmarkMiddleware/cache-hit
// without the bare handler). The others are parts of authenticate.
func BenchmarkHitParts(b *testing.B) {
	as, mw, tok := benchMiddleware(b)
	ti, err := mw.Authenticate(bearer(tok))
	if err != nil {
		b.Fatal(err)
	}
	// The LRU alone, read at a fixed time: no clock in its lookup.
	ctx := context.Background()
	at := time.Now()
	lru, err := introspect.NewLRUCache(100_000, introspect.WithLRUClock(func() time.Time { return at }))
	if err != nil {
		b.Fatal(err)
	}
	key := introspect.NewCacheKey(as.IntrospectionURL(), rsClientID, tok)
	if err := lru.Set(ctx, key, introspect.CacheEntry{Introspection: ti, Expiry: at.Add(time.Hour), StaleUntil: at.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	endpoint := as.IntrospectionURL()

	parallel := func(name string, f func(r *http.Request)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r, _ := http.NewRequest(http.MethodGet, "http://api.example/orders", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				for pb.Next() {
					f(r)
				}
			})
		})
	}
	parallel("authenticate", func(r *http.Request) {
		if _, err := mw.Authenticate(r); err != nil {
			panic(err)
		}
	})
	protected := mw.Handler(benchHandler)
	w := &discard{h: make(http.Header)}
	parallel("handler", func(r *http.Request) { protected.ServeHTTP(w, r) })
	parallel("extract", func(r *http.Request) {
		if _, err := (introspect.BearerExtractor{}).Extract(r); err != nil {
			panic(err)
		}
	})
	parallel("clock", func(*http.Request) { _ = time.Now() })
	parallel("cache-key", func(*http.Request) { _ = introspect.NewCacheKey(endpoint, rsClientID, tok) })
	parallel("lru-get", func(*http.Request) {
		if _, ok, _ := lru.Get(ctx, key); !ok {
			panic("miss")
		}
	})
	// The LRU with 10,000 tokens in use at once, each found in turn: few of
	// them in the hot slots of its shards.
	spread := make([]introspect.CacheKey, 10_000)
	for i := range spread {
		spread[i] = introspect.NewCacheKey(endpoint, rsClientID, fmt.Sprintf("token-%d", i))
		if err := lru.Set(ctx, spread[i], introspect.CacheEntry{Introspection: ti, Expiry: at.Add(time.Hour), StaleUntil: at.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("lru-get-10k", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := rand.Uint64(); pb.Next(); i += 7919 {
				if _, ok, _ := lru.Get(ctx, spread[i%uint64(len(spread))]); !ok {
					panic("miss")
				}
			}
		})
	})
	parallel("context", func(r *http.Request) {
		benchHandler.ServeHTTP(w, r.WithContext(introspect.NewContext(r.Context(), ti)))
	})
}
