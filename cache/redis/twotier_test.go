package introspectredis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/introspect-go/introspect"
)

// recordingCache is a local tier that remembers what it was given.
type recordingCache struct {
	mu      sync.Mutex // guards entries, deletes
	entries map[introspect.CacheKey]introspect.CacheEntry
	deletes int
}

func newRecordingCache() *recordingCache {
	return &recordingCache{entries: make(map[introspect.CacheKey]introspect.CacheEntry)}
}

func (r *recordingCache) Get(_ context.Context, k introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[k]
	return e, ok, nil
}

func (r *recordingCache) Set(_ context.Context, k introspect.CacheKey, e introspect.CacheEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries[k] = e
	return nil
}

func (r *recordingCache) Delete(_ context.Context, k introspect.CacheKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, k)
	r.deletes++
	return nil
}

func (r *recordingCache) entry(k introspect.CacheKey) (introspect.CacheEntry, bool) {
	e, ok, _ := r.Get(context.Background(), k)
	return e, ok
}

func newTwoTier(t testing.TB, remote *Cache, local introspect.Cache, ttl time.Duration) *TwoTier {
	t.Helper()
	tt, err := NewTwoTier(remote, local, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tt.Close() })
	return tt
}

func TestNewTwoTierValidates(t *testing.T) {
	srv := startRedis(t)
	remote := newCache(t, srv.Client(t))
	for _, tc := range []struct {
		name   string
		remote *Cache
		local  introspect.Cache
		ttl    time.Duration
	}{
		{"nil remote", nil, newRecordingCache(), time.Second},
		{"nil local", remote, nil, time.Second},
		{"zero TTL", remote, newRecordingCache(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tt, err := NewTwoTier(tc.remote, tc.local, tc.ttl); err == nil {
				tt.Close()
				t.Error("NewTwoTier accepted it")
			}
		})
	}
}

func TestLocalTierBounds(t *testing.T) {
	srv := startRedis(t)
	now := time.Now()
	remote := newCache(t, srv.Client(t))
	remote.now = fixedClock(&now)
	const localTTL = 5 * time.Second
	for _, tc := range []struct {
		name                      string
		expiry, staleUntil        time.Duration
		wantExpiry, wantStaleUtil time.Duration
	}{
		{"cut to the local TTL", time.Minute, 2 * time.Minute, time.Minute, localTTL},
		{"kept to its own StaleUntil", 2 * time.Second, 3 * time.Second, 2 * time.Second, 3 * time.Second},
		{"StaleUntil past the local TTL, Expiry before", 2 * time.Second, time.Minute, 2 * time.Second, localTTL},
	} {
		for _, path := range []string{"set", "remote hit"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				local := newRecordingCache()
				tt := newTwoTier(t, remote, local, localTTL)
				tt.now = fixedClock(&now)
				key := introspect.NewCacheKey("e", "c", tc.name)
				e := introspect.CacheEntry{
					Introspection: &introspect.Introspection{Active: true, Subject: "s"},
					Expiry:        now.Add(tc.expiry), StaleUntil: now.Add(tc.staleUntil),
				}
				ctx := context.Background()
				if path == "set" {
					if err := tt.Set(ctx, key, e); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := remote.Set(ctx, key, e); err != nil {
						t.Fatal(err)
					}
					got, ok, err := tt.Get(ctx, key)
					if err != nil || !ok {
						t.Fatalf("Get = %v, %v", ok, err)
					}
					if !got.Expiry.Equal(e.Expiry) || !got.StaleUntil.Equal(e.StaleUntil) {
						t.Errorf("Get returned times %v, %v; want the entry's own %v, %v", got.Expiry, got.StaleUntil, e.Expiry, e.StaleUntil)
					}
				}
				le, ok := local.entry(key)
				if !ok {
					t.Fatal("the local tier holds nothing")
				}
				if want := now.Add(tc.wantStaleUtil); !le.StaleUntil.Equal(want) {
					t.Errorf("local StaleUntil = now%+v, want now%+v", le.StaleUntil.Sub(now), tc.wantStaleUtil)
				}
				if want := now.Add(tc.wantExpiry); !le.Expiry.Equal(want) {
					t.Errorf("local Expiry = now%+v, want now%+v", le.Expiry.Sub(now), tc.wantExpiry)
				}
				if le.Introspection == nil || le.Introspection.Subject != "s" {
					t.Errorf("local verdict = %+v", le.Introspection)
				}
			})
		}
	}
}

func TestLocalTierExpiresWithLRU(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	now := time.Now()
	remote := newCache(t, rdb)
	remote.now = fixedClock(&now)
	local, err := introspect.NewLRUCache(100, introspect.WithLRUClock(fixedClock(&now)))
	if err != nil {
		t.Fatal(err)
	}
	tt := newTwoTier(t, remote, local, 5*time.Second)
	tt.now = fixedClock(&now)
	ctx := context.Background()
	key := introspect.NewCacheKey("e", "c", "t")
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: now.Add(time.Minute), StaleUntil: now.Add(time.Minute)}
	if err := tt.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := tt.Get(ctx, key); !ok || err != nil {
		t.Fatalf("Get with the entry only in the local tier = %v, %v", ok, err)
	}
	now = now.Add(5 * time.Second)
	if _, ok, err := tt.Get(ctx, key); ok || err != nil {
		t.Errorf("Get after the local TTL, Redis empty = %v, %v; want a miss", ok, err)
	}
}

func TestTwoTierLocalHitSparesRedis(t *testing.T) {
	srv := startRedis(t)
	remote := newCache(t, srv.Client(t))
	local := newRecordingCache()
	tt := newTwoTier(t, remote, local, time.Minute)
	ctx := context.Background()
	key := introspect.NewCacheKey("e", "c", "t")
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: time.Now().Add(time.Minute), StaleUntil: time.Now().Add(time.Minute)}
	if err := tt.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, ok, err := tt.Get(ctx, key); !ok || err != nil {
		t.Errorf("local hit with Redis dead = %v, %v", ok, err)
	}
	other := introspect.NewCacheKey("e", "c", "other")
	if _, ok, err := tt.Get(ctx, other); ok || err == nil {
		t.Errorf("local miss with Redis dead = %v, %v; want the Redis error", ok, err)
	}
}

func TestTwoTierDeleteReachesOtherReplicas(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	localA, localB := newRecordingCache(), newRecordingCache()
	a := newTwoTier(t, newCache(t, srv.Client(t)), localA, time.Minute)
	b := newTwoTier(t, newCache(t, srv.Client(t)), localB, time.Minute)
	otherPrefix := newRecordingCache()
	c := newTwoTier(t, newCache(t, srv.Client(t), WithPrefix("elsewhere:")), otherPrefix, time.Minute)
	key := introspect.NewCacheKey("e", "c", "t")
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: time.Now().Add(time.Minute), StaleUntil: time.Now().Add(time.Minute)}
	if err := a.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Get(ctx, key); !ok || err != nil {
		t.Fatalf("b.Get = %v, %v", ok, err)
	}
	if err := c.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	if _, ok := localB.entry(key); !ok {
		t.Fatal("b's local tier holds nothing")
	}
	if err := a.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok := localA.entry(key); ok {
		t.Error("a's local tier still holds the entry")
	}
	waitFor(t, "b's local tier to drop the entry", func() bool { _, ok := localB.entry(key); return !ok })
	if _, ok, err := b.Get(ctx, key); ok || err != nil {
		t.Errorf("b.Get after a.Delete = %v, %v", ok, err)
	}
	if _, ok := otherPrefix.entry(key); !ok {
		t.Error("an eviction under one prefix reached a cache under another")
	}
}

// NewTwoTier returns once Redis has the subscription: an eviction that
// another replica announces at once reaches this one. (On loopback the
// window this closes, SUBSCRIBE sent but not yet read by Redis, is too
// short to open on purpose: this checks the guarantee, round after round.)
func TestTwoTierSubscribedOnReturn(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	remote := newCache(t, rdb)
	for i := range 50 {
		tt, err := NewTwoTier(remote, newRecordingCache(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		subs, err := rdb.PubSubNumSub(ctx, remote.channel).Result()
		_ = tt.Close()
		if err != nil {
			t.Fatal(err)
		}
		if subs[remote.channel] != 1 {
			t.Fatalf("round %d: %d subscribers to the evictions when NewTwoTier returned, want 1", i, subs[remote.channel])
		}
	}
}

// A subscription that Redis refuses (an ACL user without the eviction
// channel) fails NewTwoTier, naming the cause: that replica would never
// learn of the others' evictions.
func TestTwoTierSubscriptionRefused(t *testing.T) {
	srv := startRedis(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nochannels", "on", ">pw", "~*", "+@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "nochannels", Password: "pw"})
	t.Cleanup(func() { _ = rdb.Close() })
	tt, err := NewTwoTier(newCache(t, rdb), newRecordingCache(), time.Minute)
	if err == nil {
		_ = tt.Close()
		t.Fatal("NewTwoTier succeeded without a subscription")
	}
	if !strings.HasPrefix(err.Error(), "introspectredis: NewTwoTier: subscribing to the evictions: ") || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("error %q, want the refusal named", err)
	}
}

// A refusal that passes (Redis busy with a script) is tried again within
// the timeout: the subscription is there when NewTwoTier returns. go-redis
// would not send SUBSCRIBE again after it.
func TestTwoTierSubscribesWhileRedisBusy(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "busy-reply-threshold", "50").Err(); err != nil {
		t.Fatal(err)
	}
	script := srv.Client(t)
	done := make(chan error, 1)
	go func() {
		done <- script.Eval(ctx, `local s = redis.call('TIME'); local start = s[1] * 1000000 + s[2]
			while true do local n = redis.call('TIME'); if n[1] * 1000000 + n[2] - start > 500000 then break end end
			return 1`, nil).Err()
	}()
	waitFor(t, "Redis to be busy", func() bool { return redis.HasErrorPrefix(rdb.Ping(ctx).Err(), "BUSY") })
	remote := newCache(t, srv.Client(t))
	tt, err := NewTwoTier(remote, newRecordingCache(), time.Minute)
	if err != nil {
		t.Fatalf("NewTwoTier while Redis is busy: %v", err)
	}
	t.Cleanup(func() { _ = tt.Close() })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	subs, err := rdb.PubSubNumSub(ctx, remote.channel).Result()
	if err != nil {
		t.Fatal(err)
	}
	if subs[remote.channel] != 1 {
		t.Errorf("%d subscribers to the evictions, want 1", subs[remote.channel])
	}
}

// A Ring client is refused: it would run the eviction's script on the
// key's shard and subscribe on the channel's.
func TestTwoTierRefusesRing(t *testing.T) {
	srv := startRedis(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": srv.Addr}})
	t.Cleanup(func() { _ = ring.Close() })
	tt, err := NewTwoTier(newCache(t, ring), newRecordingCache(), time.Minute)
	if err == nil {
		_ = tt.Close()
	}
	if want := "introspectredis: NewTwoTier: a Ring client cannot carry the eviction announcements: use a Client or a ClusterClient"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestTwoTierIgnoresForgedEvictions(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	local := newRecordingCache()
	tt := newTwoTier(t, newCache(t, rdb), local, time.Minute)
	key := introspect.NewCacheKey("e", "c", "t")
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: time.Now().Add(time.Minute), StaleUntil: time.Now().Add(time.Minute)}
	if err := tt.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	stranger := newCache(t, rdb)
	stranger.keys = mustKeys(t, []byte("a secret of another deployment!!"), nil)
	msg, err := stranger.keys.sealEvict(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []any{"garbage", key[:], msg} {
		if err := rdb.Publish(ctx, DefaultPrefix+"evict", m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A genuine eviction of another key, published last, shows the listener
	// has processed the forged ones.
	marker := introspect.NewCacheKey("e", "c", "marker")
	if err := tt.Set(ctx, marker, e); err != nil {
		t.Fatal(err)
	}
	if err := newCache(t, rdb).Delete(ctx, marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the genuine eviction", func() bool { _, ok := local.entry(marker); return !ok })
	if _, ok := local.entry(key); !ok {
		t.Error("a forged eviction dropped the entry")
	}
}

func TestTwoTierClose(t *testing.T) {
	srv := startRedis(t)
	tt, err := NewTwoTier(newCache(t, srv.Client(t)), newRecordingCache(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tt.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-tt.done:
	default:
		t.Error("the listener still runs after Close")
	}
}

func TestTwoTierStartsWithRedisDown(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	srv.Kill()
	start := time.Now()
	tt, err := NewTwoTier(newCache(t, rdb), newRecordingCache(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tt.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("NewTwoTier took %v with Redis down", took)
	}
	_, _, err = tt.Get(context.Background(), introspect.CacheKey{})
	if err == nil || errors.Is(err, ErrInvalidValue) {
		t.Errorf("Get with Redis down: %v; want the Redis error", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hookedCache is a local tier that runs beforeSet once, at the first Set,
// before storing, and reports every Delete on deleted.
type hookedCache struct {
	*recordingCache
	once      sync.Once
	beforeSet func()
	deleted   chan introspect.CacheKey
}

func (h *hookedCache) Set(ctx context.Context, k introspect.CacheKey, e introspect.CacheEntry) error {
	h.once.Do(h.beforeSet)
	return h.recordingCache.Set(ctx, k, e)
}

func (h *hookedCache) Delete(ctx context.Context, k introspect.CacheKey) error {
	err := h.recordingCache.Delete(ctx, k)
	select {
	case h.deleted <- k:
	default:
	}
	return err
}

// TestTwoTierCopyRacingWithEviction has another replica evict the key, and
// this replica's listener process the announcement, between the moment an
// entry is obtained from Redis (or stored there) and the moment it is
// copied into the local tier: the copy must not survive.
func TestTwoTierCopyRacingWithEviction(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// run does the operation on tt; the entry is in Redis beforehand
		// unless empty is set.
		run   func(t *testing.T, tt *TwoTier, key introspect.CacheKey, e introspect.CacheEntry)
		empty bool
	}{
		{"get", func(t *testing.T, tt *TwoTier, key introspect.CacheKey, _ introspect.CacheEntry) {
			if _, ok, err := tt.Get(ctx, key); !ok || err != nil {
				t.Fatalf("Get = %v, %v; want the entry read before the eviction", ok, err)
			}
		}, false},
		{"get-fenced", func(t *testing.T, tt *TwoTier, key introspect.CacheKey, _ introspect.CacheEntry) {
			if _, ok, _, err := tt.GetFenced(ctx, key); !ok || err != nil {
				t.Fatalf("GetFenced = %v, %v; want the entry read before the eviction", ok, err)
			}
		}, false},
		{"set-fenced", func(t *testing.T, tt *TwoTier, key introspect.CacheKey, e introspect.CacheEntry) {
			_, _, fence, err := tt.GetFenced(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if stored, err := tt.SetFenced(ctx, key, e, fence); !stored || err != nil {
				t.Fatalf("SetFenced = %v, %v; want stored, before the eviction", stored, err)
			}
		}, true},
		{"set", func(t *testing.T, tt *TwoTier, key introspect.CacheKey, e introspect.CacheEntry) {
			if err := tt.Set(ctx, key, e); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{WithPrefix("race-" + tc.name + ":")}
			remote := newCache(t, srv.Client(t), opts...)
			other := newCache(t, srv.Client(t), opts...) // another replica
			key := introspect.NewCacheKey("e", "c", "t")
			e := activeEntry(time.Now(), "s")
			if !tc.empty {
				if err := other.Set(ctx, key, e); err != nil {
					t.Fatal(err)
				}
			}
			local := &hookedCache{recordingCache: newRecordingCache(), deleted: make(chan introspect.CacheKey, 1)}
			local.beforeSet = func() {
				if err := other.Delete(ctx, key); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-local.deleted: // the listener has processed the announcement
				case <-time.After(5 * time.Second):
					t.Error("the eviction announcement did not arrive")
				}
			}
			tt := newTwoTier(t, remote, local, time.Minute)
			tc.run(t, tt, key, e)
			if _, ok := local.entry(key); ok {
				t.Error("the local tier holds a copy made across the eviction")
			}
			if _, ok, err := tt.Get(ctx, key); ok || err != nil {
				t.Errorf("Get after the eviction = %v, %v; want a miss", ok, err)
			}
		})
	}
}

// TestTwoTierFenced checks the fenced operations of the two tiers: the fence
// is Redis's, a refused store leaves the local tier alone, and an accepted
// one or an entry found by GetFenced fills it.
func TestTwoTierFenced(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	remote := newCache(t, srv.Client(t))
	other := newCache(t, srv.Client(t))
	local := newRecordingCache()
	tt := newTwoTier(t, remote, local, time.Minute)
	key := introspect.NewCacheKey("e", "c", "t")
	e := activeEntry(time.Now(), "s")

	_, ok, fence, err := tt.GetFenced(ctx, key)
	if ok || err != nil || fence != "" {
		t.Fatalf("GetFenced of a new key = %v, %q, %v", ok, fence, err)
	}
	if err := other.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if stored, err := tt.SetFenced(ctx, key, e, fence); stored || err != nil {
		t.Fatalf("SetFenced after another replica's eviction = %v, %v; want refused", stored, err)
	}
	if _, ok := local.entry(key); ok {
		t.Fatal("a refused SetFenced filled the local tier")
	}

	_, _, fence, err = tt.GetFenced(ctx, key)
	if err != nil || fence == "" {
		t.Fatalf("GetFenced after the eviction: fence %q, %v", fence, err)
	}
	if _, _, want, _ := remote.GetFenced(ctx, key); fence != want {
		t.Errorf("TwoTier's fence %q, Redis's %q", fence, want)
	}
	if stored, err := tt.SetFenced(ctx, key, e, fence); !stored || err != nil {
		t.Fatalf("SetFenced = %v, %v", stored, err)
	}
	if _, ok := local.entry(key); !ok {
		t.Error("an accepted SetFenced left the local tier empty")
	}
	if _, ok, err := other.Get(ctx, key); !ok || err != nil {
		t.Errorf("another replica's Get after SetFenced = %v, %v", ok, err)
	}

	// An entry found in Redis by GetFenced is copied into the local tier.
	local2 := newRecordingCache()
	tt2 := newTwoTier(t, newCache(t, srv.Client(t)), local2, time.Minute)
	if _, ok, fence2, err := tt2.GetFenced(ctx, key); !ok || err != nil || fence2 != fence {
		t.Fatalf("GetFenced of a stored entry = %v, %q, %v", ok, fence2, err)
	}
	if _, ok := local2.entry(key); !ok {
		t.Error("GetFenced did not copy the entry into the local tier")
	}
}
