package introspectredis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// BenchmarkRedisCache measures a hit in each tier: two-tier-hit is served by
// the in-process tier, redis-hit by a round trip to a local redis-server
// (loopback, so a floor for a network hop). The middleware sub-benchmark is
// a whole request with a two-tier hit, to compare with the core's
// BenchmarkMiddleware/cache-hit.
func BenchmarkRedisCache(b *testing.B) {
	srv := startRedis(b)
	ctx := context.Background()
	key := introspect.NewCacheKey("https://as.example.com/introspect", "rs", "a-token")
	e := fullEntry()
	e.Introspection.Expiry = time.Time{}
	e.Expiry, e.StaleUntil = time.Now().Add(time.Hour), time.Now().Add(time.Hour)
	hit := func(b *testing.B, c introspect.Cache) {
		b.Helper()
		if _, ok, err := c.Get(ctx, key); !ok || err != nil {
			b.Fatalf("Get = %v, %v", ok, err)
		}
	}

	b.Run("two-tier-hit", func(b *testing.B) {
		local, err := introspect.NewLRUCache(10_000)
		if err != nil {
			b.Fatal(err)
		}
		tt := newTwoTier(b, newCache(b, srv.Client(b), WithPrefix("bench-tt:")), local, time.Minute)
		if err := tt.Set(ctx, key, e); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				hit(b, tt)
			}
		})
	})
	for _, tc := range []struct {
		name     string
		opts     []Option
		parallel bool
	}{
		{"redis-hit", nil, false},
		{"redis-hit-encrypted", []Option{WithEncryptionKey(testEncKey)}, false},
		{"redis-hit-parallel", nil, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := newCache(b, srv.Client(b), append(tc.opts, WithPrefix("bench-"+tc.name+":"), WithTimeout(time.Second))...)
			if err := c.Set(ctx, key, e); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if !tc.parallel {
				for range b.N {
					hit(b, c)
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					hit(b, c)
				}
			})
		})
	}
	b.Run("middleware-two-tier-hit", func(b *testing.B) {
		as := newAS(b)
		r := newReplica(b, as, srv, mode{twoTier: true})
		tok := as.Issue(introspecttest.Claims{Subject: "alice"})
		if code, _ := r.get(b, tok); code != http.StatusOK {
			b.Fatalf("status %d", code)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			for pb.Next() {
				r.h.ServeHTTP(w, req)
			}
		})
		b.StopTimer()
		if n := as.Calls(); n != 1 {
			b.Errorf("%d calls to the authorization server", n)
		}
	})
}
