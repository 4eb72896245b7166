package introspectredis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/redis/go-redis/v9"
)

// sealModes are the two ways a value is sealed.
var sealModes = []struct {
	name string
	opts []Option
}{
	{"authenticated", nil},
	{"encrypted", []Option{WithEncryptionKey(testEncKey)}},
}

// activeEntry is an active verdict for subject, fresh for a minute from now.
func activeEntry(now time.Time, subject string) introspect.CacheEntry {
	return introspect.CacheEntry{
		Introspection: &introspect.Introspection{Active: true, Subject: subject},
		Expiry:        now.Add(time.Minute),
		StaleUntil:    now.Add(time.Minute),
	}
}

// TestFencedSetAfterEviction plays a call to the authorization server in
// flight on replica B while replica A evicts the token: B read the fence
// before the call, A's Delete replaced the generation, and B's store under
// the old fence must be refused, leaving nothing for either replica. Each
// replica is its own Cache on its own Redis client.
func TestFencedSetAfterEviction(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	for _, sm := range sealModes {
		for _, tc := range []struct {
			name string
			// before prepares the key through A.
			before func(t *testing.T, a *Cache, key introspect.CacheKey)
			// noFence: the key has no generation record, B reads the fence "".
			noFence bool
		}{
			{"token never cached", func(*testing.T, *Cache, introspect.CacheKey) {}, true},
			{"token evicted before", func(t *testing.T, a *Cache, key introspect.CacheKey) {
				t.Helper()
				if err := a.Set(ctx, key, activeEntry(time.Now(), "old")); err != nil {
					t.Fatal(err)
				}
				if err := a.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
			}, false},
			{"value gone, generation record left", func(t *testing.T, a *Cache, key introspect.CacheKey) {
				t.Helper()
				if err := a.Set(ctx, key, activeEntry(time.Now(), "old")); err != nil {
					t.Fatal(err)
				}
				value, _ := redisNames(a, key)
				if err := a.client.Del(ctx, value).Err(); err != nil {
					t.Fatal(err)
				}
			}, false},
		} {
			t.Run(sm.name+"/"+tc.name, func(t *testing.T) {
				prefix := "fence-" + sm.name + "-" + strings.ReplaceAll(tc.name, " ", "-") + ":"
				opts := append([]Option{WithPrefix(prefix)}, sm.opts...)
				a := newCache(t, srv.Client(t), opts...)
				b := newCache(t, srv.Client(t), opts...)
				key := introspect.NewCacheKey("https://as/introspect", "rs", "tok")
				tc.before(t, a, key)

				// Without an eviction in between, the fenced store succeeds:
				// the refusal below is the eviction's doing.
				control := introspect.NewCacheKey("https://as/introspect", "rs", "control")
				tc.before(t, a, control)
				_, _, fence, err := b.GetFenced(ctx, control)
				if err != nil {
					t.Fatal(err)
				}
				if stored, err := b.SetFenced(ctx, control, activeEntry(time.Now(), "control"), fence); !stored || err != nil {
					t.Fatalf("SetFenced without an eviction = %v, %v; want stored", stored, err)
				}
				if _, ok, err := a.Get(ctx, control); !ok || err != nil {
					t.Fatalf("Get after SetFenced without an eviction = %v, %v", ok, err)
				}

				_, found, fence, err := b.GetFenced(ctx, key)
				if err != nil || found {
					t.Fatalf("B: GetFenced = %v, %v; want a miss", found, err)
				}
				if (fence == "") != tc.noFence {
					t.Fatalf("B: fence %q; want one only when the key has a record", fence)
				}
				// The authorization server answers B; the token is revoked
				// and A evicts it before B's answer is stored.
				if err := a.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				stored, err := b.SetFenced(ctx, key, activeEntry(time.Now(), "before revocation"), fence)
				if err != nil {
					t.Fatal(err)
				}
				if stored {
					t.Error("SetFenced stored an answer to a call begun before the eviction")
				}
				for name, c := range map[string]*Cache{"A": a, "B": b} {
					if e, ok, err := c.Get(ctx, key); ok || err != nil {
						t.Errorf("%s: Get after the eviction = %+v, %v, %v; want a plain miss", name, e.Introspection, ok, err)
					}
				}

				// The key is usable again under its new generation.
				_, _, fence2, err := b.GetFenced(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if fence2 == "" || fence2 == fence {
					t.Fatalf("fence after the eviction %q, before %q; want a new one", fence2, fence)
				}
				if stored, err := b.SetFenced(ctx, key, activeEntry(time.Now(), "after"), fence2); !stored || err != nil {
					t.Fatalf("SetFenced under the new fence = %v, %v", stored, err)
				}
				if e, ok, err := a.Get(ctx, key); !ok || err != nil || e.Introspection.Subject != "after" {
					t.Errorf("A: Get = %+v, %v, %v; want the entry stored after the eviction", e.Introspection, ok, err)
				}
			})
		}
	}
}

// TestRollbackIsRefused plays a Redis writer who saves an entry's value,
// waits for the token to be revoked and evicted, and writes the value back.
// The value is bound to the generation the eviction replaced: every replica
// refuses it, reporting ErrInvalidValue.
func TestRollbackIsRefused(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	for _, sm := range sealModes {
		t.Run(sm.name, func(t *testing.T) {
			opts := append([]Option{WithPrefix("rollback-" + sm.name + ":")}, sm.opts...)
			c := newCache(t, rdb, opts...)
			other := newCache(t, srv.Client(t), opts...)
			key := introspect.NewCacheKey("https://as/introspect", "rs", "revoked-soon")
			value, record := redisNames(c, key)
			if err := c.Set(ctx, key, activeEntry(time.Now(), "alice")); err != nil {
				t.Fatal(err)
			}
			saved, err := rdb.Get(ctx, value).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			savedTTL, err := rdb.PTTL(ctx, value).Result()
			if err != nil {
				t.Fatal(err)
			}
			// Written back before any eviction, the value is as good as
			// ever: what the writer loses below is the eviction's doing.
			if err := rdb.Set(ctx, value, saved, savedTTL).Err(); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := c.Get(ctx, key); !ok || err != nil {
				t.Fatalf("Get of the value written back before the eviction = %v, %v", ok, err)
			}

			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, value, saved, savedTTL).Err(); err != nil {
				t.Fatal(err)
			}
			for name, r := range map[string]*Cache{"evicting replica": c, "other replica": other} {
				e, ok, err := r.Get(ctx, key)
				if ok || e.Introspection != nil {
					t.Errorf("%s: the value written back after the eviction was served: %+v", name, e.Introspection)
				}
				if !errors.Is(err, ErrInvalidValue) {
					t.Errorf("%s: Get error = %v; want ErrInvalidValue", name, err)
				}
			}
			// Deleting the generation record does not bring it back: a value
			// without a record is a miss.
			if err := rdb.Del(ctx, record).Err(); err != nil {
				t.Fatal(err)
			}
			if e, ok, err := c.Get(ctx, key); ok || err != nil {
				t.Errorf("Get without a generation record = %+v, %v, %v; want a plain miss", e.Introspection, ok, err)
			}
		})
	}
}

// TestMissingRecordIsAMiss deletes the generation record of a live entry:
// the value is refused (a plain miss), GetFenced reports no fence, a store
// under the fence read before is refused, and one under the new (empty)
// fence heals the key.
func TestMissingRecordIsAMiss(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	c := newCache(t, rdb)
	key := introspect.NewCacheKey("e", "c", "t")
	_, record := redisNames(c, key)
	if err := c.Set(ctx, key, activeEntry(time.Now(), "s")); err != nil {
		t.Fatal(err)
	}
	_, ok, fence, err := c.GetFenced(ctx, key)
	if !ok || err != nil || fence == "" {
		t.Fatalf("GetFenced = %v, %q, %v; want a hit and a fence", ok, fence, err)
	}
	if err := rdb.Del(ctx, record).Err(); err != nil {
		t.Fatal(err)
	}
	_, ok, fence2, err := c.GetFenced(ctx, key)
	if ok || err != nil || fence2 != "" {
		t.Fatalf("GetFenced without a record = %v, %q, %v; want a plain miss and no fence", ok, fence2, err)
	}
	if stored, err := c.SetFenced(ctx, key, activeEntry(time.Now(), "s"), fence); stored || err != nil {
		t.Errorf("SetFenced under the vanished fence = %v, %v; want refused", stored, err)
	}
	if stored, err := c.SetFenced(ctx, key, activeEntry(time.Now(), "s"), fence2); !stored || err != nil {
		t.Fatalf("SetFenced under the empty fence = %v, %v; want stored", stored, err)
	}
	if _, ok, err := c.Get(ctx, key); !ok || err != nil {
		t.Errorf("Get after the key was stored again = %v, %v", ok, err)
	}
}

// TestFullRollbackIsBoundedBySealedExpiry is the limit of sealing: a writer
// who restores both the value and its generation record to a saved copy
// brings the entry back, but only until the StaleUntil sealed into it.
func TestFullRollbackIsBoundedBySealedExpiry(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	now := time.Now()
	c := newCache(t, rdb)
	c.now = fixedClock(&now)
	key := introspect.NewCacheKey("e", "c", "t")
	value, record := redisNames(c, key)
	if err := c.Set(ctx, key, activeEntry(now, "s")); err != nil {
		t.Fatal(err)
	}
	savedValue, err := rdb.Get(ctx, value).Result()
	if err != nil {
		t.Fatal(err)
	}
	savedGen, err := rdb.Get(ctx, record).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{value: savedValue, record: savedGen} {
		if err := rdb.Set(ctx, name, v, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := c.Get(ctx, key); !ok || err != nil {
		t.Fatalf("Get after a full rollback = %v, %v; the documented limit says it is served", ok, err)
	}
	now = now.Add(time.Minute) // the entry's sealed StaleUntil
	if _, ok, err := c.Get(ctx, key); ok || err != nil {
		t.Errorf("Get of the rolled-back entry past its sealed StaleUntil = %v, %v; want a miss", ok, err)
	}
}

// TestGetFencedOnInvalidValue: a value that does not open is an error
// wrapping ErrInvalidValue, with the key's fence, under which SetFenced
// replaces the value.
func TestGetFencedOnInvalidValue(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	c := newCache(t, rdb)
	key := introspect.NewCacheKey("e", "c", "t")
	value, record := redisNames(c, key)
	if err := c.Set(ctx, key, activeEntry(time.Now(), "s")); err != nil {
		t.Fatal(err)
	}
	gen, err := rdb.Get(ctx, record).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, value, "garbage", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, ok, fence, err := c.GetFenced(ctx, key)
	if ok || !errors.Is(err, ErrInvalidValue) || fence != gen {
		t.Fatalf("GetFenced = %v, %q, %v; want ErrInvalidValue and the fence %q", ok, fence, err, gen)
	}
	if stored, err := c.SetFenced(ctx, key, activeEntry(time.Now(), "s"), fence); !stored || err != nil {
		t.Fatalf("SetFenced = %v, %v", stored, err)
	}
	if _, ok, err := c.Get(ctx, key); !ok || err != nil {
		t.Errorf("Get after SetFenced = %v, %v", ok, err)
	}
}

// TestSetAfterEviction: plain Set, which does not know when its answer was
// obtained, stores under the generation an eviction left.
func TestSetAfterEviction(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	c := newCache(t, srv.Client(t))
	key := introspect.NewCacheKey("e", "c", "t")
	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, _, fence, err := c.GetFenced(ctx, key)
	if err != nil || fence == "" {
		t.Fatalf("GetFenced after Delete: fence %q, %v; want the new generation", fence, err)
	}
	if err := c.Set(ctx, key, activeEntry(time.Now(), "s")); err != nil {
		t.Fatal(err)
	}
	_, ok, fence2, err := c.GetFenced(ctx, key)
	if !ok || err != nil {
		t.Fatalf("Get after Set = %v, %v", ok, err)
	}
	if fence2 != fence {
		t.Errorf("Set replaced the generation: %q, was %q", fence2, fence)
	}
}

// TestGenerationRecordTTL checks how long generation records live: a
// Delete keeps its record for the tombstone TTL, or as long as the record it
// replaces if that is longer; a store keeps the record at least as long as
// the value, never shortening it.
func TestGenerationRecordTTL(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	pttl := func(t *testing.T, name string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, name).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// within reports whether got is want, less at most a second Redis spent
	// counting down.
	within := func(got, want time.Duration) bool { return got <= want && got > want-time.Second }
	for _, tc := range []struct {
		name string
		opts []Option
		run  func(t *testing.T, c *Cache, key introspect.CacheKey, record string) (got, want time.Duration)
	}{
		{"delete of a key without a record: default tombstone", nil,
			func(t *testing.T, c *Cache, key introspect.CacheKey, record string) (time.Duration, time.Duration) {
				if err := c.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				return pttl(t, record), DefaultTombstoneTTL
			}},
		{"delete: tombstone option", []Option{WithTombstoneTTL(10 * time.Second)},
			func(t *testing.T, c *Cache, key introspect.CacheKey, record string) (time.Duration, time.Duration) {
				if err := c.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				return pttl(t, record), 10 * time.Second
			}},
		{"delete keeps a longer-lived record's TTL", []Option{WithTombstoneTTL(10 * time.Second)},
			func(t *testing.T, c *Cache, key introspect.CacheKey, record string) (time.Duration, time.Duration) {
				if err := c.Set(ctx, key, activeEntry(time.Now(), "s")); err != nil {
					t.Fatal(err)
				}
				if err := rdb.PExpire(ctx, record, 2*time.Hour).Err(); err != nil {
					t.Fatal(err)
				}
				if err := c.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				return pttl(t, record), 2 * time.Hour
			}},
		{"store after delete keeps the tombstone", nil,
			func(t *testing.T, c *Cache, key introspect.CacheKey, record string) (time.Duration, time.Duration) {
				if err := c.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				if err := c.Set(ctx, key, activeEntry(time.Now(), "s")); err != nil {
					t.Fatal(err)
				}
				return pttl(t, record), DefaultTombstoneTTL
			}},
		{"store extends a shorter-lived record", []Option{WithTombstoneTTL(10 * time.Second)},
			func(t *testing.T, c *Cache, key introspect.CacheKey, record string) (time.Duration, time.Duration) {
				if err := c.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				_, _, fence, err := c.GetFenced(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if stored, err := c.SetFenced(ctx, key, activeEntry(time.Now(), "s"), fence); !stored || err != nil {
					t.Fatalf("SetFenced = %v, %v", stored, err)
				}
				value, _ := redisNames(c, key)
				want := pttl(t, value) // read first: the record's expires at the same instant
				return pttl(t, record), want
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, rdb, append([]Option{WithPrefix("ttl-" + strings.ReplaceAll(tc.name, " ", "-") + ":")}, tc.opts...)...)
			key := introspect.NewCacheKey("e", "c", "t")
			_, record := redisNames(c, key)
			if got, want := tc.run(t, c, key, record); !within(got, want) {
				t.Errorf("PTTL of the generation record = %v, want %v", got, want)
			}
		})
	}
}

func TestWithTombstoneTTLValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, d := range []time.Duration{0, -time.Second, time.Microsecond} {
		_, err := New(rdb, testSecret, WithTombstoneTTL(d))
		if err == nil || !strings.HasPrefix(err.Error(), "introspectredis: WithTombstoneTTL: ") {
			t.Errorf("WithTombstoneTTL(%v): %v; want an error", d, err)
		}
	}
}

func TestSetFencedRefusesLongFence(t *testing.T) {
	srv := startRedis(t)
	c := newCache(t, srv.Client(t))
	stored, err := c.SetFenced(context.Background(), introspect.CacheKey{}, activeEntry(time.Now(), "s"), strings.Repeat("f", maxGeneration+1))
	if stored || err == nil || !strings.HasPrefix(err.Error(), "introspectredis: ") {
		t.Errorf("SetFenced = %v, %v; want an error", stored, err)
	}
}
