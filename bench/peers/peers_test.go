package peers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/oathkeeper/driver/configuration"
	"github.com/ory/oathkeeper/pipeline/authn"
	"github.com/ory/x/configx"
	"github.com/ory/x/logrusx"
	"github.com/patrickmn/go-cache"
	"github.com/sirupsen/logrus"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/zitadel-go/v3/pkg/authorization"
	"github.com/zitadel/zitadel-go/v3/pkg/authorization/oauth"
	"github.com/zitadel/zitadel-go/v3/pkg/http/middleware"
	"github.com/zitadel/zitadel-go/v3/pkg/zitadel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/bench/stub"
)

const (
	clientID     = "rs"
	clientSecret = "rs-secret"
	cacheTTL     = 5 * time.Minute
)

// ok is the protected handler.
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

// peer builds a guarded handler of one library against the introspection
// endpoint.
type peer struct {
	name string
	new  func(tb testing.TB, endpoint string) http.Handler
}

var peers = []peer{
	{"introspect", newIntrospect},
	{"zitadel", newZitadel},
	{"oathkeeper", newOathkeeper},
}

// newIntrospect is this library: LRU cache, defaults otherwise.
func newIntrospect(tb testing.TB, endpoint string) http.Handler {
	return newIntrospectCache(tb, endpoint, 100_000)
}

// newIntrospectSmallCache is this library with a cache of 1,000 entries.
func newIntrospectSmallCache(tb testing.TB, endpoint string) http.Handler {
	return newIntrospectCache(tb, endpoint, 1000)
}

func newIntrospectCache(tb testing.TB, endpoint string, size int) http.Handler {
	c, err := introspect.NewLRUCache(size)
	if err != nil {
		tb.Fatal(err)
	}
	mw, err := introspect.New(
		introspect.WithEndpoint(endpoint),
		introspect.WithClientCredentials(clientID, clientSecret),
		introspect.WithCache(c),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = mw.Close() })
	return mw.Handler(ok)
}

// newIntrospectUncached is this library with no cache: every request is
// introspected.
func newIntrospectUncached(tb testing.TB, endpoint string) http.Handler {
	mw, err := introspect.New(
		introspect.WithEndpoint(endpoint),
		introspect.WithClientCredentials(clientID, clientSecret),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = mw.Close() })
	return mw.Handler(ok)
}

// newZitadel is zitadel-go's HTTP middleware over its cached introspection
// verifier, with the go-cache adapter of its documentation example
// (ExampleIntrospectionVerificationWithCache), client_secret_basic and its
// default HTTP client.
func newZitadel(tb testing.TB, endpoint string) http.Handler {
	ctx := context.Background()
	server, err := rs.NewResourceServerClientCredentials(ctx, issuerOf(endpoint), clientID, clientSecret,
		rs.WithStaticEndpoints(endpoint, endpoint))
	if err != nil {
		tb.Fatal(err)
	}
	verifier := oauth.NewIntrospectionVerificationWithCache[*oauth.IntrospectionContext](
		server, newGoCacheAdapter[*oauth.IntrospectionContext](cacheTTL, 10*time.Minute), cacheTTL)
	authz, err := authorization.New(ctx, zitadel.New("localhost"),
		func(context.Context, *zitadel.Zitadel) (authorization.Verifier[*oauth.IntrospectionContext], error) {
			return verifier, nil
		})
	if err != nil {
		tb.Fatal(err)
	}
	return middleware.New(authz).RequireAuthorization()(ok)
}

// goCacheAdapter is zitadel-go's documented TokenCache on patrickmn/go-cache
// (it lives in an example test of the library, so it is copied here).
type goCacheAdapter[T any] struct{ c *cache.Cache }

func newGoCacheAdapter[T any](ttl, cleanup time.Duration) *goCacheAdapter[T] {
	return &goCacheAdapter[T]{c: cache.New(ttl, cleanup)}
}

func (a *goCacheAdapter[T]) Get(token string) (T, bool) {
	var zero T
	v, found := a.c.Get(token)
	if !found {
		return zero, false
	}
	t, ok := v.(T)
	return t, ok
}

func (a *goCacheAdapter[T]) Set(token string, v T, ttl time.Duration) { a.c.Set(token, v, ttl) }

// newOathkeeper is Ory Oathkeeper's oauth2_introspection authenticator with
// its cache on (max_cost 100,000 entries, TTL 5 min), the client credentials
// sent as a Basic header through introspection_request_headers (the
// authenticator has no client authentication of its own), and its default
// resilient HTTP client. Only the authenticator runs, not Oathkeeper's rule
// matching and pipeline: the figures flatter Oathkeeper as a proxy.
func newOathkeeper(tb testing.TB, endpoint string) http.Handler {
	logger := logrusx.New("bench", "", logrusx.ForceLevel(logrus.ErrorLevel))
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)))
	conf, err := configuration.NewKoanfProvider(context.Background(), nil, logger, configx.WithValues(map[string]any{
		"authenticators.oauth2_introspection.enabled":                                            true,
		"authenticators.oauth2_introspection.config.introspection_url":                           endpoint,
		"authenticators.oauth2_introspection.config.cache.enabled":                               true,
		"authenticators.oauth2_introspection.config.cache.ttl":                                   "5m",
		"authenticators.oauth2_introspection.config.cache.max_cost":                              100_000,
		"authenticators.oauth2_introspection.config.introspection_request_headers.authorization": "Basic " + basic,
	}))
	if err != nil {
		tb.Fatal(err)
	}
	a := authn.NewAuthenticatorOAuth2Introspection(conf, logger, noop.NewTracerProvider())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s authn.AuthenticationSession
		if err := a.Authenticate(r, &s, nil, nil); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ok.ServeHTTP(w, r)
	})
}

func issuerOf(endpoint string) string {
	u, _ := url.Parse(endpoint)
	return u.Scheme + "://" + u.Host
}

// newStub starts the stub authorization server over plain http on loopback.
func newStub(tb testing.TB, latency time.Duration) (*stub.AS, string) {
	as := stub.New(stub.Config{ClientID: clientID, ClientSecret: clientSecret, Issuer: "https://as.bench.test", Latency: latency})
	srv := httptest.NewUnstartedServer(as)
	srv.Config.ConnState = as.ConnState
	srv.Start()
	tb.Cleanup(srv.Close)
	return as, srv.URL + "/introspect"
}

// tokenSeq numbers the tokens made up by the benchmarks, so that no token is
// reused across the runs of a benchmark (a reused token would hit the cache).
var tokenSeq atomic.Int64

// recorder is a ResponseWriter that keeps the status and allocates nothing.
type recorder struct {
	h      http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://api.bench.test/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// serve runs h on a request for token and returns the status.
func serve(h http.Handler, token string) int {
	w := &recorder{h: make(http.Header), status: http.StatusOK}
	h.ServeHTTP(w, request(token))
	return w.status
}

// BenchmarkHit is the cache-hit path: one token, cached before the timer
// starts, requests in parallel. "bare" is the handler alone.
func BenchmarkHit(b *testing.B) {
	as, endpoint := newStub(b, 0)
	b.Run("bare", func(b *testing.B) { runParallel(b, ok, func() string { return "valid-hit-bare" }) })
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			h := p.new(b, endpoint)
			tok := "valid-hit-" + p.name
			if s := serve(h, tok); s != http.StatusOK {
				b.Fatalf("warm-up: status %d", s)
			}
			time.Sleep(50 * time.Millisecond) // Ristretto (Oathkeeper) stores asynchronously
			before := as.CallsFor(tok)
			runParallel(b, h, func() string { return tok })
			b.ReportMetric(float64(as.CallsFor(tok)-before)/float64(b.N), "AS-calls/op")
		})
	}
}

// BenchmarkMiss is the cache-miss path: every request carries a token never
// seen before, so each makes one call to the stub over loopback HTTP (no
// added latency). "bare" is the cost of the harness (a new token and request
// per operation) without any check; "http-post" is the floor: a bare
// http.Client POST of the same form with Basic credentials, the answer read
// but not decoded, on a transport pooled like the library's default;
// "http-post-json" also unmarshals the answer into a struct.
func BenchmarkMiss(b *testing.B) {
	as, endpoint := newStub(b, 0)
	for _, decode := range []bool{false, true} {
		name := "http-post"
		if decode {
			name = "http-post-json"
		}
		b.Run(name, func(b *testing.B) {
			hc := &http.Client{Transport: pooledTransport()}
			b.Cleanup(hc.CloseIdleConnections)
			conns := as.Stats().NewConns
			defer func() { b.ReportMetric(float64(as.Stats().NewConns-conns), "new-conns") }()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := post(hc, endpoint, fmt.Sprintf("valid-miss-post-%d", tokenSeq.Add(1)), decode); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	// The harness alone: a new token and request per operation, no check.
	b.Run("bare", func(b *testing.B) {
		runParallel(b, ok, func() string { return fmt.Sprintf("valid-miss-bare-%d", tokenSeq.Add(1)) })
	})
	// This library without a cache, and with a cache of 1,000 entries (full
	// after the first thousand operations: each miss evicts one): the miss
	// path without the cost of a cache that grows by one entry per
	// operation, whose live heap makes every garbage collection longer.
	missPeers := append([]peer{
		{"introspect-uncached", newIntrospectUncached},
		{"introspect-cache-1k", newIntrospectSmallCache},
	}, peers...)
	for _, p := range missPeers {
		b.Run(p.name, func(b *testing.B) {
			h := p.new(b, endpoint)
			before := as.Stats()
			runParallel(b, h, func() string { return fmt.Sprintf("valid-miss-%s-%d", p.name, tokenSeq.Add(1)) })
			after := as.Stats()
			b.ReportMetric(float64(after.Calls-before.Calls)/float64(b.N), "AS-calls/op")
			b.ReportMetric(float64(after.NewConns-before.NewConns), "new-conns")
		})
	}
}

func pooledTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// answer is what http-post-json decodes: the RFC 7662 members the stub sends.
type answer struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	Issuer    string `json:"iss"`
	TokenType string `json:"token_type"`
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	Audience  string `json:"aud"`
}

// post is the floor of the miss path: one form POST with Basic credentials,
// the answer read and, with decode, unmarshalled into a struct.
func post(hc *http.Client, endpoint, token string, decode bool) error {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return err
	}
	req.SetBasicAuth(clientID, clientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && decode {
		var a answer
		if err = json.Unmarshal(body, &a); err == nil && !a.Active {
			err = fmt.Errorf("inactive")
		}
	}
	return err
}

// runParallel serves b.N requests in parallel, each with the token tok
// returns, and fails on any status but 200.
func runParallel(b *testing.B, h http.Handler, tok func() string) {
	b.ReportAllocs()
	runtime.GC() // what an earlier benchmark left is not collected on this one's time
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &recorder{h: make(http.Header)}
		var r *http.Request
		for pb.Next() {
			t := tok()
			if r == nil || r.Header.Get("Authorization") != "Bearer "+t {
				r = request(t)
			}
			w.status = http.StatusOK
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// herdSize is the number of concurrent first requests for one new token.
const herdSize = 50

// BenchmarkHerd sends 50 concurrent first requests for one new token, per
// iteration, to an authorization server that takes 20 ms to answer, and
// reports the calls it received per herd (1 is ideal) and the requests that
// were not answered 200.
func BenchmarkHerd(b *testing.B) {
	as, endpoint := newStub(b, 20*time.Millisecond)
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			h := p.new(b, endpoint)
			var calls, failed int64
			for i := 0; i < b.N; i++ {
				tok := fmt.Sprintf("valid-herd-%s-%d", p.name, tokenSeq.Add(1))
				failed += herd(h, tok)
				calls += as.CallsFor(tok)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "AS-calls/herd")
			b.ReportMetric(float64(failed)/float64(b.N), "non-200/herd")
		})
	}
}

// herd releases herdSize requests for tok at once and returns how many were
// not answered 200.
func herd(h http.Handler, tok string) int64 {
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for range herdSize {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := request(tok)
			w := &recorder{h: make(http.Header), status: http.StatusOK}
			<-start
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				failed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return failed.Load()
}

// TestPeersAgree checks, quickly, that every peer is wired correctly: a valid
// token passes, an unknown one does not.
func TestPeersAgree(t *testing.T) {
	_, endpoint := newStub(t, 0)
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			h := p.new(t, endpoint)
			if s := serve(h, "valid-agree-"+p.name); s != http.StatusOK {
				t.Errorf("valid token: status %d, want 200", s)
			}
			if s := serve(h, "unknown-"+p.name); s == http.StatusOK {
				t.Errorf("unknown token: status %d, want a refusal", s)
			}
		})
	}
}
