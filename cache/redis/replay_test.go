package introspectredis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
	"github.com/redis/go-redis/v9"
)

func newReplayCache(t testing.TB, rdb redis.UniversalClient, opts ...ReplayOption) *ReplayCache {
	t.Helper()
	c, err := NewReplayCache(rdb, testSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replayKey stands for the verifier's replay key of a proof.
func replayKey(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// replayRecords returns the names of the keys under prefix.
func replayRecords(t *testing.T, rdb *redis.Client, prefix string) []string {
	t.Helper()
	names, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestNewReplayCacheValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		secret []byte
		opts   []ReplayOption
		want   string
	}{
		{"nil client", nil, testSecret, nil, "nil client"},
		{"no secret", rdb, nil, nil, "secret must be at least 32 bytes, not 0"},
		{"short secret", rdb, testSecret[:31], nil, "secret must be at least 32 bytes, not 31"},
		{"zero timeout", rdb, testSecret, []ReplayOption{WithReplayTimeout(0)}, "WithReplayTimeout: 0s is not positive"},
		{"negative timeout", rdb, testSecret, []ReplayOption{WithReplayTimeout(-time.Second)}, "WithReplayTimeout: -1s is not positive"},
		{"nil option", rdb, testSecret, []ReplayOption{nil}, "nil option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewReplayCache(tc.client, tc.secret, tc.opts...)
			if err == nil || c != nil {
				t.Fatalf("NewReplayCache = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "introspectredis: ") {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := NewReplayCache(nil, nil, WithReplayTimeout(0)); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("error %q, want the three problems", err)
	}
}

// TestReplayCacheSeen checks the records against a real Redis: a key is new
// once, its record carries no trace of it and expires when the verifier
// said, and only caches of the same secret and prefix share records.
func TestReplayCacheSeen(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()

	t.Run("first use, then replay", func(t *testing.T) {
		c := newReplayCache(t, rdb, WithReplayPrefix("t1:"))
		until := time.Now().Add(time.Minute)
		for i, want := range []bool{false, true, true} {
			seen, err := c.Seen(ctx, replayKey("a"), until)
			if err != nil || seen != want {
				t.Fatalf("call %d: Seen = %v, %v; want %v", i, seen, err, want)
			}
		}
		if seen, err := c.Seen(ctx, replayKey("b"), until); err != nil || seen {
			t.Fatalf("another key: Seen = %v, %v; want false", seen, err)
		}
	})

	t.Run("the record", func(t *testing.T) {
		c := newReplayCache(t, rdb, WithReplayPrefix("t2:"))
		key := replayKey("record")
		until := time.Now().Add(90 * time.Second).Truncate(time.Millisecond).Add(123 * time.Millisecond)
		if _, err := c.Seen(ctx, key, until); err != nil {
			t.Fatal(err)
		}
		names := replayRecords(t, rdb, "t2:")
		if len(names) != 1 {
			t.Fatalf("records %q, want one", names)
		}
		name := names[0]
		digest := strings.TrimPrefix(name, "t2:")
		if b, err := hex.DecodeString(digest); err != nil || len(b) != sha256.Size {
			t.Errorf("name %q: want the prefix and 64 hex digits", name)
		}
		if strings.Contains(strings.ToLower(name), hex.EncodeToString(key[:])) {
			t.Errorf("name %q holds the replay key", name)
		}
		if v, err := rdb.Get(ctx, name).Result(); err != nil || v != "1" {
			t.Errorf("value = %q, %v; want 1", v, err)
		}
		// The TTL is set, to the time the verifier gave (Redis and this
		// test share a clock; the command's trip takes a little of it).
		if at, err := rdb.Do(ctx, "PEXPIRETIME", name).Int64(); err != nil || at < until.UnixMilli()-1000 || at > until.UnixMilli()+1 {
			t.Errorf("PEXPIRETIME = %d, %v; want %d or up to a second before", at, err, until.UnixMilli())
		}
		if ttl, err := rdb.PTTL(ctx, name).Result(); err != nil || ttl <= 85*time.Second || ttl > 91*time.Second {
			t.Errorf("PTTL = %v, %v; want about 90 s", ttl, err)
		}
	})

	// A record lasts the time left by the replica's clock, whatever
	// Redis's says: with a replica an hour behind Redis, a record set for
	// the end by Redis's clock would already be gone, and the proof
	// accepted again.
	t.Run("a replica's clock apart from Redis's", func(t *testing.T) {
		for _, skew := range []time.Duration{-time.Hour, time.Hour} {
			c := newReplayCache(t, rdb, WithReplayPrefix("t7:"))
			c.now = func() time.Time { return time.Now().Add(skew) }
			key := replayKey(skew.String())
			until := c.now().Add(time.Minute)
			for i, want := range []bool{false, true} {
				if seen, err := c.Seen(ctx, key, until); err != nil || seen != want {
					t.Fatalf("skew %v, call %d: Seen = %v, %v; want %v", skew, i, seen, err, want)
				}
			}
			names := replayRecords(t, rdb, "t7:")
			if len(names) != 1 {
				t.Fatalf("skew %v: records %q, want one", skew, names)
			}
			if ttl, err := rdb.PTTL(ctx, names[0]).Result(); err != nil || ttl <= 55*time.Second || ttl > time.Minute {
				t.Errorf("skew %v: PTTL = %v, %v; want about a minute", skew, ttl, err)
			}
			if err := rdb.Del(ctx, names[0]).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("expired record", func(t *testing.T) {
		c := newReplayCache(t, rdb, WithReplayPrefix("t3:"))
		key := replayKey("short")
		if seen, err := c.Seen(ctx, key, time.Now().Add(100*time.Millisecond)); err != nil || seen {
			t.Fatalf("Seen = %v, %v; want false", seen, err)
		}
		if seen, _ := c.Seen(ctx, key, time.Now().Add(time.Minute)); !seen {
			t.Fatal("a live record not seen")
		}
		time.Sleep(200 * time.Millisecond)
		if seen, err := c.Seen(ctx, key, time.Now().Add(time.Minute)); err != nil || seen {
			t.Fatalf("after the record's end: Seen = %v, %v; want false", seen, err)
		}
		if n := len(replayRecords(t, rdb, "t3:")); n != 1 {
			t.Errorf("%d records, want 1", n)
		}
	})

	// An end centuries ahead (more than a Duration holds) is a record
	// that lasts, not one that ends at once.
	t.Run("an end centuries ahead", func(t *testing.T) {
		c := newReplayCache(t, rdb, WithReplayPrefix("t9:"))
		key := replayKey("far")
		until := time.Now().AddDate(300, 0, 0)
		for i, want := range []bool{false, true} {
			if seen, err := c.Seen(ctx, key, until); err != nil || seen != want {
				t.Fatalf("call %d: Seen = %v, %v; want %v", i, seen, err, want)
			}
		}
		names := replayRecords(t, rdb, "t9:")
		if len(names) != 1 {
			t.Fatalf("records %q, want one", names)
		}
		// In milliseconds: go-redis's Duration of it would overflow.
		if ms, err := rdb.Do(ctx, "PTTL", names[0]).Int64(); err != nil || ms < (290*365*24*time.Hour).Milliseconds() {
			t.Errorf("PTTL = %d ms, %v; want the largest Duration", ms, err)
		}
	})

	// An end already past records nothing that lasts (a millisecond), but
	// still sees a live record.
	t.Run("an end already past", func(t *testing.T) {
		c := newReplayCache(t, rdb, WithReplayPrefix("t4:"))
		if seen, err := c.Seen(ctx, replayKey("past"), time.Now().Add(-time.Second)); err != nil || seen {
			t.Fatalf("Seen = %v, %v; want false", seen, err)
		}
		time.Sleep(20 * time.Millisecond)
		if n := len(replayRecords(t, rdb, "t4:")); n != 0 {
			t.Errorf("%d records of an end already past, want none", n)
		}
		key := replayKey("live")
		if seen, err := c.Seen(ctx, key, time.Now().Add(time.Minute)); err != nil || seen {
			t.Fatalf("Seen = %v, %v; want false", seen, err)
		}
		if seen, err := c.Seen(ctx, key, time.Now().Add(-time.Second)); err != nil || !seen {
			t.Fatalf("an end already past: Seen = %v, %v; want the live record seen", seen, err)
		}
	})

	t.Run("who shares records", func(t *testing.T) {
		until := time.Now().Add(time.Minute)
		key := replayKey("shared")
		first := newReplayCache(t, rdb, WithReplayPrefix("t5:"))
		if seen, err := first.Seen(ctx, key, until); err != nil || seen {
			t.Fatalf("Seen = %v, %v; want false", seen, err)
		}
		otherSecret, err := NewReplayCache(rdb, []byte(strings.Repeat("x", MinSecretSize)), WithReplayPrefix("t5:"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			c    *ReplayCache
			want bool
		}{
			{"another replica: same secret and prefix", newReplayCache(t, rdb, WithReplayPrefix("t5:")), true},
			{"another prefix", newReplayCache(t, rdb, WithReplayPrefix("t5b:")), false},
			{"another secret", otherSecret, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if seen, err := tc.c.Seen(ctx, key, until); err != nil || seen != tc.want {
					t.Fatalf("Seen = %v, %v; want %v", seen, err, tc.want)
				}
			})
		}
	})

	t.Run("refusals", func(t *testing.T) {
		c := newReplayCache(t, rdb, WithReplayPrefix("t6:"))
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		for _, tc := range []struct {
			name  string
			c     *ReplayCache
			ctx   context.Context
			until time.Time
		}{
			{"zero time", c, ctx, time.Time{}},
			{"before 1970", c, ctx, time.Unix(-10, 0)},
			{"canceled context", c, canceled, time.Now().Add(time.Minute)},
			{"nil cache", nil, ctx, time.Now().Add(time.Minute)},
			{"zero cache", &ReplayCache{}, ctx, time.Now().Add(time.Minute)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				seen, err := tc.c.Seen(tc.ctx, replayKey(tc.name), tc.until)
				if err == nil || seen || !strings.HasPrefix(err.Error(), "introspectredis: replay: ") {
					t.Fatalf("Seen = %v, %v; want an error", seen, err)
				}
			})
		}
		if n := len(replayRecords(t, rdb, "t6:")); n != 0 {
			t.Errorf("%d records after refusals, want none", n)
		}
	})
}

// TestReplayCacheRedisFails: a dead or frozen Redis is an error within the
// timeout, never a proof taken for new.
func TestReplayCacheRedisFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(t *testing.T, s *redisServer)
	}{
		{"killed", func(_ *testing.T, s *redisServer) { s.Kill() }},
		{"frozen", func(t *testing.T, s *redisServer) { s.Stop(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t)
			c := newReplayCache(t, srv.Client(t), WithReplayTimeout(100*time.Millisecond))
			until := time.Now().Add(time.Minute)
			if _, err := c.Seen(context.Background(), replayKey("warm"), until); err != nil {
				t.Fatal(err)
			}
			tc.fail(t, srv)
			start := time.Now()
			seen, err := c.Seen(context.Background(), replayKey("new"), until)
			if err == nil || seen {
				t.Fatalf("Seen = %v, %v; want an error", seen, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Seen took %v with a timeout of 100 ms", d)
			}
		})
	}
}

// A protected API run as two replicas behind a load balancer: each sees its
// own URL, and both are configured with the URL clients use.
const replayExternalURL = "https://api.example.com"

// dpopReplica serves a middleware that accepts DPoP with replay, and answers
// the subject.
func dpopReplica(t *testing.T, as *introspecttest.Server, replay introspect.DPoPReplayCache) *httptest.Server {
	t.Helper()
	dpop := []introspect.DPoPOption{introspect.WithDPoPExternalURL(replayExternalURL), introspect.WithDPoPProofLifetime(time.Minute)}
	if replay != nil {
		dpop = append(dpop, introspect.WithDPoPReplayCache(replay))
	}
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsClientSecret),
		introspect.WithDPoP(introspect.DPoPAllowed, dpop...),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	srv := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		_, _ = io.WriteString(w, ti.Subject)
	})))
	t.Cleanup(srv.Close)
	return srv
}

type dpopAnswer struct {
	status    int
	body      string
	challenge string
}

// postDPoP sends a POST to base+"/api/orders" with the token under the DPoP
// scheme (Bearer when proof is "") and the proof.
func postDPoP(t *testing.T, base, token, proof string) dpopAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	if proof == "" {
		req.Header.Set("Authorization", "Bearer "+token)
	} else {
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return dpopAnswer{resp.StatusCode, string(b), strings.Join(resp.Header.Values("WWW-Authenticate"), "\n")}
}

// TestDPoPReplayAcrossReplicas: a proof accepted by replica A is a replay to
// replica B when they share a ReplayCache; with an in-memory cache each,
// B accepts it too, which is what the shared cache is for. A Redis that
// fails refuses proofs (closed) and leaves Bearer tokens alone.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsClientSecret))
	t.Cleanup(as.Close)
	key, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	bound := as.Issue(key.Bind(introspecttest.Claims{Subject: "alice"}))
	plain := as.Issue(introspecttest.Claims{Subject: "bob"})
	htu := replayExternalURL + "/api/orders"
	srv := startRedis(t)
	rdb := srv.Client(t)

	for _, tc := range []struct {
		name   string
		shared bool
		wantB  int
	}{
		{"shared Redis replay cache", true, http.StatusUnauthorized},
		{"in-memory cache per replica", false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a, b *httptest.Server
			if tc.shared {
				a = dpopReplica(t, as, newReplayCache(t, rdb, WithReplayPrefix(tc.name+":")))
				b = dpopReplica(t, as, newReplayCache(t, rdb, WithReplayPrefix(tc.name+":")))
			} else {
				a, b = dpopReplica(t, as, nil), dpopReplica(t, as, nil)
			}
			iat := time.Now().Truncate(time.Second)
			proof := key.Proof(http.MethodPost, htu, bound, introspecttest.WithProofIssuedAt(iat))
			if got := postDPoP(t, a.URL, bound, proof); got.status != http.StatusOK || got.body != "alice" {
				t.Fatalf("replica A: %+v, want 200 alice", got)
			}
			got := postDPoP(t, b.URL, bound, proof)
			if got.status != tc.wantB {
				t.Fatalf("replica B, the same proof: %+v, want %d", got, tc.wantB)
			}
			if tc.wantB == http.StatusUnauthorized && (!strings.Contains(got.body, `"error":"invalid_dpop_proof"`) ||
				!strings.Contains(got.challenge, `DPoP error="invalid_dpop_proof"`)) {
				t.Errorf("replica B: %+v, want invalid_dpop_proof in the body and the DPoP challenge", got)
			}
			if got := postDPoP(t, a.URL, bound, proof); got.status != http.StatusUnauthorized {
				t.Errorf("replica A, the same proof again: %+v, want 401", got)
			}
			if got := postDPoP(t, b.URL, bound, key.Proof(http.MethodPost, htu, bound)); got.status != http.StatusOK {
				t.Errorf("replica B, a new proof: %+v, want 200", got)
			}
			if !tc.shared {
				return
			}
			// The record of the first proof ends after its lifetime.
			names := replayRecords(t, rdb, tc.name+":")
			if len(names) != 2 {
				t.Fatalf("records %q, want two (one per accepted proof)", names)
			}
			var ends []int64
			for _, n := range names {
				at, err := rdb.Do(context.Background(), "PEXPIRETIME", n).Int64()
				if err != nil {
					t.Fatal(err)
				}
				ends = append(ends, at)
			}
			// PX counts from when Redis runs the command: a record ends
			// the command's trip after the verifier's end.
			lo, hi := iat.Add(time.Minute).UnixMilli(), iat.Add(time.Minute+6*time.Second).UnixMilli()
			if !(lo <= ends[0] && ends[0] <= hi || lo <= ends[1] && ends[1] <= hi) {
				t.Errorf("records end at %v ms, want one between %d and %d (iat plus the lifetime and the leeway)", ends, lo, hi)
			}
		})
	}

	t.Run("Redis down", func(t *testing.T) {
		down := startRedis(t)
		replay := newReplayCache(t, down.Client(t))
		api := dpopReplica(t, as, replay)
		down.Kill()
		got := postDPoP(t, api.URL, bound, key.Proof(http.MethodPost, htu, bound))
		if got.status != http.StatusUnauthorized || !strings.Contains(got.body, `"error":"invalid_dpop_proof"`) {
			t.Errorf("a proof with Redis down: %+v, want 401 invalid_dpop_proof", got)
		}
		if got := postDPoP(t, api.URL, plain, ""); got.status != http.StatusOK || got.body != "bob" {
			t.Errorf("a Bearer token with Redis down: %+v, want 200 bob", got)
		}
		// The verifier's error keeps the cache's reachable.
		r := httptest.NewRequest(http.MethodPost, htu, nil)
		r.Header.Set("DPoP", key.Proof(http.MethodPost, htu, bound))
		v, err := introspect.NewDPoPVerifier(introspect.WithDPoPReplayCache(replay))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), r, bound, key.JKT())
		if !errors.Is(err, introspect.ErrInvalidDPoPProof) || !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify = %v, want ErrInvalidDPoPProof and Redis's error", err)
		}
	})
}
