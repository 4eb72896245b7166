package introspectredis

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

const (
	rsClientID     = "rs"
	rsClientSecret = "rs-secret-0123456789"
)

// replica is one instance of a protected API: its own middleware and cache
// over the shared Redis.
type replica struct {
	mw      *introspect.Middleware
	h       http.Handler
	local   *introspect.LRUCache // nil for a Redis-only cache
	cacheEr atomic.Int64
}

type mode struct {
	name     string
	twoTier  bool
	cacheOpt []Option
}

var modes = []mode{
	{name: "redis"},
	{name: "two-tier", twoTier: true},
}

func newReplica(t testing.TB, as *introspecttest.Server, srv *redisServer, m mode, opts ...introspect.Option) *replica {
	t.Helper()
	remote := newCache(t, srv.Client(t), m.cacheOpt...)
	var cache introspect.Cache = remote
	r := &replica{}
	if m.twoTier {
		local, err := introspect.NewLRUCache(1000)
		if err != nil {
			t.Fatal(err)
		}
		r.local = local
		cache = newTwoTier(t, remote, local, time.Minute)
	}
	opts = append([]introspect.Option{
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsClientSecret),
		introspect.WithCache(cache),
		introspect.WithHooks(&introspect.Hooks{
			CacheError: func(context.Context, string, error) { r.cacheEr.Add(1) },
		}),
	}, opts...)
	mw, err := introspect.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	r.mw = mw
	r.h = mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ti, _ := introspect.FromContext(req.Context())
		_, _ = w.Write([]byte(ti.Subject))
	}))
	return r
}

func (r *replica) get(t testing.TB, token string) (int, time.Duration) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	start := time.Now()
	r.h.ServeHTTP(w, req)
	return w.Code, time.Since(start)
}

func newAS(t testing.TB) *introspecttest.Server {
	t.Helper()
	as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsClientSecret))
	t.Cleanup(as.Close)
	return as
}

func TestFleetMakesOneCallPerToken(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startRedis(t)
			as := newAS(t)
			a, b := newReplica(t, as, srv, m), newReplica(t, as, srv, m)
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			if code, _ := a.get(t, tok); code != http.StatusOK {
				t.Fatalf("A: status %d", code)
			}
			if code, _ := b.get(t, tok); code != http.StatusOK {
				t.Fatalf("B: status %d", code)
			}
			if n := as.Calls(); n != 1 {
				t.Errorf("%d calls to the authorization server; want 1", n)
			}
			// A definite "active": false is shared too.
			if code, _ := a.get(t, "unknown-token"); code != http.StatusUnauthorized {
				t.Fatalf("A, unknown token: status %d", code)
			}
			if code, _ := b.get(t, "unknown-token"); code != http.StatusUnauthorized {
				t.Fatalf("B, unknown token: status %d", code)
			}
			if n := as.Calls(); n != 2 {
				t.Errorf("%d calls to the authorization server; want 2", n)
			}
			if n := a.cacheEr.Load() + b.cacheEr.Load(); n != 0 {
				t.Errorf("%d cache errors", n)
			}
		})
	}
}

// TestNoTokenInRedis reads every key and value in Redis after a run and
// looks for the tokens in every form a careless cache might store them.
func TestNoTokenInRedis(t *testing.T) {
	for _, m := range []mode{
		{name: "authenticated", twoTier: true},
		{name: "encrypted", twoTier: true, cacheOpt: []Option{WithEncryptionKey(testEncKey)}},
	} {
		t.Run(m.name, func(t *testing.T) {
			srv := startRedis(t)
			rdb := srv.Client(t)
			ctx := context.Background()
			as := newAS(t)
			a, b := newReplica(t, as, srv, m), newReplica(t, as, srv, m)
			var tokens []string
			for _, sub := range []string{"subject-alice", "subject-bob", "subject-carol"} {
				tok := as.Issue(introspecttest.Claims{Subject: sub, Scope: "read"})
				tokens = append(tokens, tok)
				a.get(t, tok)
				b.get(t, tok)
			}
			revoked := as.Issue(introspecttest.Claims{Subject: "subject-dave"})
			as.Revoke(revoked)
			a.get(t, revoked)
			tokens = append(tokens, revoked, "never-issued-token")
			a.get(t, "never-issued-token")
			if err := a.mw.Evict(ctx, tokens[0]); err != nil {
				t.Fatal(err)
			}

			var forbidden [][]byte
			for _, tok := range tokens {
				forms := []string{
					tok,
					base64.StdEncoding.EncodeToString([]byte(tok)),
					base64.RawStdEncoding.EncodeToString([]byte(tok)),
					base64.URLEncoding.EncodeToString([]byte(tok)),
					base64.RawURLEncoding.EncodeToString([]byte(tok)),
					hex.EncodeToString([]byte(tok)),
				}
				if raw, err := base64.RawURLEncoding.DecodeString(tok); err == nil {
					forms = append(forms, string(raw), hex.EncodeToString(raw))
				}
				key := introspect.NewCacheKey(as.IntrospectionURL(), rsClientID, tok)
				forms = append(forms, string(key[:]), hex.EncodeToString(key[:]), base64.StdEncoding.EncodeToString(key[:]))
				for _, f := range forms {
					forbidden = append(forbidden, []byte(f))
				}
			}
			forbidden = append(forbidden, []byte(rsClientSecret), testSecret, testEncKey)

			var names []string
			iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
			for iter.Next(ctx) {
				names = append(names, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			// Values: two tokens left active, one revoked and one unknown
			// (negative entries); the evicted one is gone. Generation
			// records: those four, and the evicted token's.
			if len(names) != 9 {
				t.Errorf("%d keys in Redis, want 9: %q", len(names), names)
			}
			var sawClaims bool
			for _, name := range names {
				v, err := rdb.Get(ctx, name).Bytes()
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range forbidden {
					if bytes.Contains([]byte(name), f) || bytes.Contains(v, f) {
						t.Errorf("key %q or its value holds a token, a secret or an unsalted hash: %q", name, f)
					}
				}
				sawClaims = sawClaims || bytes.Contains(v, []byte("subject-"))
			}
			// The scan did read the values: the claims are there in clear
			// unless encrypted.
			if wantClaims := m.cacheOpt == nil; sawClaims != wantClaims {
				t.Errorf("claims readable in Redis: %v, want %v", sawClaims, wantClaims)
			}
		})
	}
}

// TestRedisFailsMidRun kills or freezes redis-server under running replicas:
// every request still gets its answer from the authorization server, in at
// most the Redis timeout per cache call (a miss makes two: Get, then Set)
// plus a margin for a loaded machine.
func TestRedisFailsMidRun(t *testing.T) {
	const timeout = 100 * time.Millisecond
	const limit = 2*timeout + time.Second
	for _, m := range modes {
		for _, failure := range []string{"killed", "frozen"} {
			t.Run(m.name+"/"+failure, func(t *testing.T) {
				srv := startRedis(t)
				as := newAS(t)
				a := newReplica(t, as, srv, mode{twoTier: m.twoTier, cacheOpt: []Option{WithTimeout(timeout)}})
				warm := as.Issue(introspecttest.Claims{Subject: "warm"})
				if code, _ := a.get(t, warm); code != http.StatusOK {
					t.Fatalf("status %d", code)
				}
				switch failure {
				case "killed":
					srv.Kill()
				case "frozen":
					srv.Stop(t)
				}
				calls := as.Calls()
				for i := range 5 {
					tok := as.Issue(introspecttest.Claims{Subject: "s"})
					for _, token := range []string{tok, tok, warm} {
						code, took := a.get(t, token)
						if code != http.StatusOK {
							t.Fatalf("request %d: status %d", i, code)
						}
						if took > limit {
							t.Errorf("request %d took %v; Redis timeout %v", i, took, timeout)
						}
					}
				}
				if a.cacheEr.Load() == 0 {
					t.Error("no cache error reported through the hooks")
				}
				// Without Redis every request for a new token asks the
				// authorization server (the two-tier cache still answers
				// from memory for the tokens it holds).
				if n := as.Calls() - calls; n < 5 {
					t.Errorf("%d calls to the authorization server for 5 new tokens", n)
				}
			})
		}
	}
}

func TestEvictReachesTheFleet(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startRedis(t)
			as := newAS(t)
			a, b := newReplica(t, as, srv, m), newReplica(t, as, srv, m)
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			a.get(t, tok)
			if code, _ := b.get(t, tok); code != http.StatusOK {
				t.Fatalf("B: status %d", code)
			}
			if n := as.Calls(); n != 1 {
				t.Fatalf("%d calls before the eviction", n)
			}
			as.Revoke(tok)
			if err := a.mw.Evict(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			if b.local != nil {
				key := introspect.NewCacheKey(as.IntrospectionURL(), rsClientID, tok)
				waitFor(t, "B's local tier to drop the token", func() bool {
					_, ok, _ := b.local.Get(context.Background(), key)
					return !ok
				})
			}
			if code, _ := b.get(t, tok); code != http.StatusUnauthorized {
				t.Errorf("B after the eviction on A: status %d, want 401", code)
			}
			if code, _ := a.get(t, tok); code != http.StatusUnauthorized {
				t.Errorf("A after the eviction: status %d, want 401", code)
			}
			// B asked once; A found B's negative entry in Redis.
			if n := as.Calls(); n != 2 {
				t.Errorf("%d calls to the authorization server; want 2", n)
			}
		})
	}
}

// holdingTransport lets the first call to the authorization server reach it
// and read its whole answer, then holds that answer back until release is
// closed: the call has begun, and been answered, before whatever the test
// does meanwhile. Later calls pass.
type holdingTransport struct {
	base     http.RoundTripper
	held     atomic.Bool
	answered chan struct{} // closed when the held answer is in hand
	release  chan struct{}
}

func newHoldingTransport() *holdingTransport {
	return &holdingTransport{base: http.DefaultTransport, answered: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(req)
	if err != nil || !h.held.CompareAndSwap(false, true) {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	close(h.answered)
	select {
	case <-h.release:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return resp, nil
}

// TestEvictDuringCallInFlight is a fleet-wide Evict racing with a call in
// flight on another replica: B asks the authorization server about a token
// and gets its answer, "active"; before that answer lands, the token is
// revoked and A evicts it. B's answer serves the request that asked, but
// must not be cached: afterwards neither replica serves the token.
func TestEvictDuringCallInFlight(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := startRedis(t)
			as := newAS(t)
			hold := newHoldingTransport()
			a := newReplica(t, as, srv, m)
			b := newReplica(t, as, srv, m, introspect.WithHTTPClient(&http.Client{Transport: hold}))
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})

			codes := make(chan int, 1)
			go func() {
				code, _ := b.get(t, tok)
				codes <- code
			}()
			select {
			case <-hold.answered:
			case <-time.After(10 * time.Second):
				t.Fatal("B's call did not reach the authorization server")
			}
			as.Revoke(tok)
			if err := a.mw.Evict(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			close(hold.release)
			if code := <-codes; code != http.StatusOK {
				t.Fatalf("B's request in flight: status %d; want 200, the answer given before the revocation", code)
			}

			if code, _ := b.get(t, tok); code != http.StatusUnauthorized {
				t.Errorf("B after the eviction: status %d, want 401", code)
			}
			if code, _ := a.get(t, tok); code != http.StatusUnauthorized {
				t.Errorf("A after the eviction: status %d, want 401", code)
			}
			if n := a.cacheEr.Load() + b.cacheEr.Load(); n != 0 {
				t.Errorf("%d cache errors", n)
			}
		})
	}
}
