package introspectredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/redis/go-redis/v9"
)

func newCache(t testing.TB, rdb redis.UniversalClient, opts ...Option) *Cache {
	t.Helper()
	c, err := New(rdb, testSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// redisNames returns the Redis keys of key's value and generation record.
func redisNames(c *Cache, key introspect.CacheKey) (value, record string) {
	return c.names(c.keys.digest(key))
}

// fixedClock returns a clock that reads *now.
func fixedClock(now *time.Time) func() time.Time { return func() time.Time { return *now } }

func TestNewValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		secret []byte
		opts   []Option
		want   string
	}{
		{"nil client", nil, testSecret, nil, "nil client"},
		{"no secret", rdb, nil, nil, "secret must be at least 32 bytes, not 0"},
		{"short secret", rdb, testSecret[:31], nil, "secret must be at least 32 bytes, not 31"},
		{"encryption key of 20 bytes", rdb, testSecret, []Option{WithEncryptionKey(make([]byte, 20))}, "16, 24 or 32 bytes, not 20"},
		{"zero timeout", rdb, testSecret, []Option{WithTimeout(0)}, "WithTimeout: 0s is not positive"},
		{"negative backoff", rdb, testSecret, []Option{WithBackoff(-time.Second)}, "WithBackoff: -1s is negative"},
		{"tiny max value", rdb, testSecret, []Option{WithMaxValueSize(100)}, "below 1 KiB"},
		{"nil option", rdb, testSecret, []Option{nil}, "nil option"},
		{"prefix with an empty hash tag", rdb, testSecret, []Option{WithPrefix("app{}:")}, "WithPrefix: the prefix holds an empty hash tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.client, tc.secret, tc.opts...)
			if err == nil || c != nil {
				t.Fatalf("New = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "introspectredis: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.secret != nil && strings.Contains(err.Error(), string(tc.secret)) {
				t.Error("the error shows the secret")
			}
		})
	}
	for _, p := range []string{"{app}:", "{app:", "a}b:", "app{x}{}:"} {
		if _, err := New(rdb, testSecret, WithPrefix(p)); err != nil {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	for _, n := range []int{16, 24, 32} {
		if _, err := New(rdb, testSecret, WithEncryptionKey(make([]byte, n))); err != nil {
			t.Errorf("encryption key of %d bytes: %v", n, err)
		}
	}
}

func TestCacheDoesNotPrintSecrets(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	c := newCache(t, rdb, WithEncryptionKey(testEncKey))
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(format, c)
		for _, secret := range [][]byte{testSecret, testEncKey, c.keys.name, c.keys.value, c.keys.enc} {
			if strings.Contains(s, string(secret)) || strings.Contains(s, fmt.Sprint(secret)) ||
				strings.Contains(s, fmt.Sprintf("%x", secret)) || strings.Contains(s, fmt.Sprintf("%#v", secret)) {
				t.Errorf("%s of the cache shows a secret: %s", format, s)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	srv := startRedis(t)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"authenticated", nil},
		{"encrypted", []Option{WithEncryptionKey(testEncKey)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			now := t0
			c := newCache(t, srv.Client(t), append(tc.opts, WithPrefix("rt-"+tc.name+":"))...)
			c.now = fixedClock(&now)
			key := introspect.NewCacheKey("https://as/introspect", "rs", "tok")
			if _, ok, err := c.Get(ctx, key); ok || err != nil {
				t.Fatalf("Get before Set = %v, %v", ok, err)
			}
			want := fullEntry()
			if err := c.Set(ctx, key, want); err != nil {
				t.Fatal(err)
			}
			got, ok, err := c.Get(ctx, key)
			if err != nil || !ok {
				t.Fatalf("Get = %v, %v", ok, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get returned\n%+v\nwant\n%+v", got.Introspection, want.Introspection)
			}
			// Another instance with the same secret and prefix reads it.
			c2 := newCache(t, srv.Client(t), append(tc.opts, WithPrefix("rt-"+tc.name+":"))...)
			c2.now = fixedClock(&now)
			if _, ok, err := c2.Get(ctx, key); !ok || err != nil {
				t.Errorf("second instance: Get = %v, %v", ok, err)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := c2.Get(ctx, key); ok || err != nil {
				t.Errorf("Get after Delete = %v, %v", ok, err)
			}
		})
	}
}

func TestNegativeEntry(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	c := newCache(t, srv.Client(t))
	key := introspect.NewCacheKey("e", "c", "unknown")
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{}, Expiry: time.Now().Add(10 * time.Second)}
	e.StaleUntil = e.Expiry
	if err := c.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(ctx, key)
	if err != nil || !ok || got.Introspection.Active {
		t.Fatalf("Get = %+v, %v, %v; want the inactive entry", got.Introspection, ok, err)
	}
}

func TestSetRefusesNilVerdict(t *testing.T) {
	srv := startRedis(t)
	c := newCache(t, srv.Client(t))
	if err := c.Set(context.Background(), introspect.CacheKey{}, introspect.CacheEntry{StaleUntil: time.Now().Add(time.Hour)}); err == nil {
		t.Error("Set stored an entry without a verdict")
	}
}

func TestRedisTTL(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	now := time.Now()
	c := newCache(t, rdb)
	c.now = fixedClock(&now)
	entry := func(expiry, staleUntil, exp time.Duration, active bool) introspect.CacheEntry {
		ti := &introspect.Introspection{Active: active}
		if exp != 0 {
			ti.Expiry = now.Add(exp)
		}
		return introspect.CacheEntry{Introspection: ti, Expiry: now.Add(expiry), StaleUntil: now.Add(staleUntil)}
	}
	for _, tc := range []struct {
		name string
		e    introspect.CacheEntry
		want time.Duration // the Redis TTL; 0: no key
	}{
		{"until StaleUntil", entry(time.Minute, 90*time.Second, time.Hour, true), 90 * time.Second},
		{"fresh only", entry(time.Minute, time.Minute, time.Hour, true), time.Minute},
		{"never past exp", entry(time.Minute, 90*time.Second, 70*time.Second, true), 70 * time.Second},
		{"no exp", entry(30*time.Second, 30*time.Second, 0, true), 30 * time.Second},
		{"negative", entry(10*time.Second, 10*time.Second, 0, false), 10 * time.Second},
		{"sub-millisecond precision truncated", entry(time.Second, 1500*time.Millisecond+999*time.Microsecond, 0, true), 1500 * time.Millisecond},
		{"already stale", entry(-time.Second, -time.Millisecond, time.Hour, true), 0},
		{"less than a millisecond left", entry(time.Second, 999*time.Microsecond, 0, true), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := introspect.NewCacheKey("e", "c", tc.name)
			name, record := redisNames(c, key)
			// An older value is there: an entry that cannot be stored must
			// replace it by nothing.
			if err := rdb.Set(ctx, name, "old", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, key, tc.e); err != nil {
				t.Fatal(err)
			}
			pttl, err := rdb.PTTL(ctx, name).Result()
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == 0 {
				if n, _ := rdb.Exists(ctx, name).Result(); n != 0 {
					t.Fatal("the key is still there")
				}
				return
			}
			// Redis counts down from the SET; allow it a second.
			if pttl > tc.want || pttl < tc.want-time.Second {
				t.Errorf("PTTL = %v, want %v (minus the time since SET)", pttl, tc.want)
			}
			// The generation record, new here, lives as long as the value.
			rpttl, err := rdb.PTTL(ctx, record).Result()
			if err != nil {
				t.Fatal(err)
			}
			if rpttl > tc.want || rpttl < tc.want-time.Second {
				t.Errorf("PTTL of the generation record = %v, want %v (minus the time since SET)", rpttl, tc.want)
			}
		})
	}
}

func TestGetHonoursStaleUntil(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	now := time.Now()
	c := newCache(t, srv.Client(t))
	c.now = fixedClock(&now)
	key := introspect.NewCacheKey("e", "c", "t")
	e := fullEntry()
	e.Introspection.Expiry = time.Time{}
	e.Expiry, e.StaleUntil = now.Add(time.Minute), now.Add(time.Minute)
	if err := c.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute) // Redis still holds it; our clock says it is over
	if _, ok, err := c.Get(ctx, key); ok || err != nil {
		t.Errorf("Get at StaleUntil = %v, %v; want a miss", ok, err)
	}
}

func TestKeysInRedis(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	c := newCache(t, rdb, WithPrefix("svc-a:"))
	key := introspect.NewCacheKey("https://as/introspect", "rs", "tok")
	e := fullEntry()
	e.Introspection.Expiry = time.Time{}
	e.Expiry, e.StaleUntil = time.Now().Add(time.Minute), time.Now().Add(time.Minute)
	if err := c.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	names, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	d := c.keys.digest(key)
	// The digest between braces is the hash tag: value and record share a
	// Redis Cluster slot.
	want := []string{fmt.Sprintf("svc-a:{%x}", d[:]), fmt.Sprintf("svc-a:{%x}g", d[:])}
	if !slices.Equal(names, want) {
		t.Fatalf("keys in Redis = %q, want %q", names, want)
	}
	for _, name := range names {
		if strings.Contains(name, fmt.Sprintf("%x", key[:])) {
			t.Error("the name carries the core's key")
		}
	}
	gen, err := rdb.Get(ctx, want[1]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != 2*generationBytes || strings.Trim(gen, "0123456789abcdef") != "" {
		t.Errorf("generation record %q: want %d hex digits", gen, 2*generationBytes)
	}
}

func TestInvalidValuesAreErrors(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	c := newCache(t, rdb)
	key := introspect.NewCacheKey("e", "c", "victim")
	name, record := redisNames(c, key)
	good := introspect.NewCacheKey("e", "c", "admin")
	goodName, goodRecord := redisNames(c, good)
	e := fullEntry()
	e.Introspection.Expiry = time.Time{}
	e.Expiry, e.StaleUntil = time.Now().Add(time.Minute), time.Now().Add(time.Minute)
	if err := c.Set(ctx, good, e); err != nil {
		t.Fatal(err)
	}
	goodValue, err := rdb.Get(ctx, goodName).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	// The victim has an entry of its own, so a generation record: values
	// put under its name are checked against it.
	victim := e
	victim.Introspection = &introspect.Introspection{Active: true, Subject: "victim"}
	if err := c.Set(ctx, key, victim); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func() error
	}{
		{"altered byte", func() error {
			v := bytes.Clone(goodValue)
			v[len(v)/2] ^= 1
			return rdb.Set(ctx, name, v, time.Minute).Err()
		}},
		{"value copied from another key", func() error { return rdb.Set(ctx, name, goodValue, time.Minute).Err() }},
		{"value and generation record copied from another key", func() error {
			gen, err := rdb.Get(ctx, goodRecord).Result()
			if err != nil {
				return err
			}
			if err := rdb.Set(ctx, record, gen, time.Minute).Err(); err != nil {
				return err
			}
			return rdb.Set(ctx, name, goodValue, time.Minute).Err()
		}},
		{"plain garbage", func() error { return rdb.Set(ctx, name, "garbage", time.Minute).Err() }},
		{"huge value", func() error {
			return rdb.Set(ctx, name, bytes.Repeat([]byte{formatMAC}, 8<<20), time.Minute).Err()
		}},
		{"huge generation record", func() error {
			if err := rdb.Set(ctx, name, goodValue, time.Minute).Err(); err != nil {
				return err
			}
			return rdb.Set(ctx, record, bytes.Repeat([]byte{'0'}, 8<<20), time.Minute).Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.setup(); err != nil {
				t.Fatal(err)
			}
			got, ok, err := c.Get(ctx, key)
			if ok || got.Introspection != nil {
				t.Fatalf("Get returned a verdict: %+v", got.Introspection)
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("Get error = %v; want ErrInvalidValue", err)
			}
		})
	}
	t.Run("wrong type", func(t *testing.T) {
		if err := rdb.Del(ctx, name).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.LPush(ctx, name, "x").Err(); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.Get(ctx, key); ok || err == nil {
			t.Fatalf("Get = %v, %v; want an error", ok, err)
		}
	})
}

func TestSetRefusesOversizedValue(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	c := newCache(t, rdb, WithMaxValueSize(1<<10))
	e := fullEntry()
	e.Introspection.Expiry = time.Time{}
	e.Expiry, e.StaleUntil = time.Now().Add(time.Minute), time.Now().Add(time.Minute)
	e.Introspection.Subject = strings.Repeat("s", 2<<10)
	if err := c.Set(context.Background(), introspect.NewCacheKey("e", "c", "t"), e); err == nil {
		t.Error("Set stored a value above the limit")
	}
	if n, _ := rdb.DBSize(context.Background()).Result(); n != 0 {
		t.Errorf("%d keys in Redis", n)
	}
}

// TestTimeout runs the cache against servers that never answer: a listener
// that accepts and stays silent, and a frozen redis-server. Every call must
// return within the command timeout plus a margin for a loaded machine.
func TestTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	const limit = timeout + 900*time.Millisecond

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	frozen := startRedis(t)

	for _, tc := range []struct {
		name  string
		addr  string
		setup func(t *testing.T)
	}{
		{"silent listener", silent.Addr().String(), func(*testing.T) {}},
		{"frozen redis-server", frozen.Addr, func(t *testing.T) { frozen.Stop(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The client's own timeouts are long: the cache's must win.
			rdb := redis.NewClient(&redis.Options{Addr: tc.addr, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
			t.Cleanup(func() { _ = rdb.Close() })
			c := newCache(t, rdb, WithTimeout(timeout), WithBackoff(0))
			// Connect first, so the frozen server holds an open connection.
			if tc.addr == frozen.Addr {
				if err := rdb.Ping(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
			}
			tc.setup(t)
			key := introspect.NewCacheKey("e", "c", "t")
			e := fullEntry()
			e.Introspection.Expiry = time.Time{}
			e.Expiry, e.StaleUntil = time.Now().Add(time.Minute), time.Now().Add(time.Minute)
			for _, op := range []struct {
				name string
				f    func() error
			}{
				{"get", func() error { _, _, err := c.Get(context.Background(), key); return err }},
				{"set", func() error { return c.Set(context.Background(), key, e) }},
				{"delete", func() error { return c.Delete(context.Background(), key) }},
			} {
				start := time.Now()
				err := op.f()
				took := time.Since(start)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: error %v; want a deadline error", op.name, err)
				}
				if took > limit {
					t.Errorf("%s took %v; the timeout is %v", op.name, took, timeout)
				}
			}
		})
	}
}

func TestRedisDown(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	c := newCache(t, rdb, WithTimeout(100*time.Millisecond))
	ctx := context.Background()
	key := introspect.NewCacheKey("e", "c", "t")
	e := fullEntry()
	e.Introspection.Expiry = time.Time{}
	e.Expiry, e.StaleUntil = time.Now().Add(time.Minute), time.Now().Add(time.Minute)
	if err := c.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, ok, err := c.Get(ctx, key); ok || err == nil {
		t.Errorf("Get with Redis down = %v, %v; want an error", ok, err)
	}
	if err := c.Set(ctx, key, e); err == nil {
		t.Error("Set with Redis down succeeded")
	}
	if err := c.Delete(ctx, key); err == nil {
		t.Error("Delete with Redis down succeeded")
	}
}

func TestCallerCancellation(t *testing.T) {
	srv := startRedis(t)
	c := newCache(t, srv.Client(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, err := c.Get(ctx, introspect.NewCacheKey("e", "c", "t")); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, %v", ok, err)
	}
}

func TestBackoff(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	now := time.Now()
	c := newCache(t, rdb, WithTimeout(100*time.Millisecond), WithBackoff(time.Second))
	c.now = fixedClock(&now)
	key := introspect.NewCacheKey("e", "c", "t")
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}, Expiry: now.Add(time.Hour), StaleUntil: now.Add(time.Hour)}
	if err := c.Set(ctx, key, e); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	if _, _, err := c.Get(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first Get on a frozen Redis: %v; want a deadline error", err)
	}
	if _, _, err := c.Get(ctx, key); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get during the backoff: %v; want ErrUnavailable", err)
	}
	if err := c.Set(ctx, key, e); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Set during the backoff: %v; want ErrUnavailable", err)
	}
	srv.Cont(t)
	now = now.Add(999 * time.Millisecond)
	if _, _, err := c.Get(ctx, key); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get before the backoff ends: %v; want ErrUnavailable", err)
	}
	now = now.Add(time.Millisecond)
	if _, ok, err := c.Get(ctx, key); !ok || err != nil {
		t.Fatalf("Get after the backoff, Redis back: %v, %v", ok, err)
	}
	if _, ok, err := c.Get(ctx, key); !ok || err != nil {
		t.Errorf("second Get after the backoff: %v, %v", ok, err)
	}

	// An error reply means Redis is up: no backoff.
	other := introspect.NewCacheKey("e", "c", "list")
	otherName, _ := redisNames(c, other)
	if err := rdb.LPush(ctx, otherName, "x").Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := c.Get(ctx, other); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("Get of a list: %v; want Redis's WRONGTYPE", err)
		}
	}

	// The caller's own cancellation says nothing about Redis.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, _ = c.Get(cctx, key)
	if _, ok, err := c.Get(ctx, key); !ok || err != nil {
		t.Errorf("Get after a cancelled one: %v, %v", ok, err)
	}
}

func TestBackoffOff(t *testing.T) {
	srv := startRedis(t)
	c := newCache(t, srv.Client(t), WithTimeout(50*time.Millisecond), WithBackoff(0))
	srv.Stop(t)
	for i := range 2 {
		if _, _, err := c.Get(context.Background(), introspect.CacheKey{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get %d: %v; want a deadline error, Redis tried every time", i, err)
		}
	}
}
