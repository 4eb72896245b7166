package introspectredis

import (
	"context"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/printcheck"
	"github.com/redis/go-redis/v9"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if the secret, the encryption
// key, a key derived from them (the replay cache's too), a token or a cache
// key shows, or if printing panics. A new exported type fails the test until
// it has an entry. No Redis server is needed: printing never calls Redis.
func TestPrintExportedTypes(t *testing.T) {
	secret := []byte("s3cr3t-redis-Wm4Kq8Zt-0123456789abcdef")
	encKey := []byte("s3cr3t-enc-Jr5Vb-0123456789abcdef")[:32]
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	plain, err := New(rdb, secret, WithPrefix("svc:"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := New(rdb, secret, WithEncryptionKey(encKey), WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	local, err := introspect.NewLRUCache(100)
	if err != nil {
		t.Fatal(err)
	}
	twoTier, err := NewTwoTier(sealed, local, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = twoTier.Close() })

	// The local tier holds an entry; Redis, unreachable, does not.
	const token = "s3cr3t-token-Gd7Hs2"
	key := introspect.NewCacheKey("https://as.example/introspect", "rs", token)
	now := time.Now()
	entry := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true, Subject: "alice"},
		Expiry: now.Add(time.Minute), StaleUntil: now.Add(time.Minute)}
	_ = twoTier.Set(context.Background(), key, entry)
	if _, ok, _ := local.Get(context.Background(), key); !ok {
		t.Fatal("the local tier holds no entry")
	}

	replay, err := NewReplayCache(rdb, secret, WithReplayPrefix("svc:dpop:"))
	if err != nil {
		t.Fatal(err)
	}

	entries := map[string]printcheck.Entry{
		"Cache":        {Samples: []any{plain, sealed, (*Cache)(nil)}},
		"Option":       {Reason: "a function type"},
		"ReplayCache":  {Samples: []any{replay, *replay, (*ReplayCache)(nil)}},
		"ReplayOption": {Reason: "a function type"},
		"TwoTier":      {Samples: []any{twoTier, (*TwoTier)(nil)}},
	}
	bad := printcheck.StringForms("secret", string(secret))
	bad = append(bad, printcheck.BytesForms("secret", secret)...)
	bad = append(bad, printcheck.BytesForms("encryption key", encKey)...)
	for _, c := range []*Cache{plain, sealed} {
		bad = append(bad, printcheck.BytesForms("name key", c.keys.name)...)
		bad = append(bad, printcheck.BytesForms("value key", c.keys.value)...)
	}
	bad = append(bad, printcheck.BytesForms("replay name key", replay.mac)...)
	bad = append(bad, printcheck.StringForms("token", token)...)
	bad = append(bad, printcheck.BytesForms("cache key", key[:])...)
	printcheck.Check(t, ".", entries, bad)
}
