package introspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// capture records every log line, hook event and error the middleware
// produces, to check that no secret is among them.
type capture struct {
	logs   bytes.Buffer // guarded by mu (the slog handler writes through lockedWriter)
	mu     sync.Mutex   // guards logs and events
	events []string
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.Write(p)
}

func (c *capture) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, s)
}

func (c *capture) options() []introspect.Option {
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	return []introspect.Option{
		introspect.WithLogger(slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		introspect.WithHooks(&introspect.Hooks{
			CacheError:      func(_ context.Context, op string, err error) { c.add(op + errText(err)) },
			StaleServed:     func(_ context.Context, err error) { c.add(errText(err)) },
			IntrospectStart: func(_ context.Context, ep string) { c.add(ep) },
			IntrospectDone: func(_ context.Context, i introspect.IntrospectDoneInfo) {
				c.add(i.Endpoint + i.Duration.String() + errText(i.Err))
			},
			Rejected: func(_ context.Context, status int, err error) { c.add(http.StatusText(status) + errText(err)) },
		}),
	}
}

func (c *capture) assertClean(t *testing.T, secrets ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.logs.String() + "\n" + strings.Join(c.events, "\n")
	for _, s := range secrets {
		assert.NotContains(t, all, s, "a log line or hook event reveals a secret")
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestFaultMatrix drives the middleware through every misbehaviour of the
// authorization server. For each: 503 (no verdict) within the call timeout
// plus a margin, a token cached before keeps working, the process
// reads nothing unbounded, nothing secret is logged or answered, and once
// the server recovers new tokens work and no goroutine is left behind.
func TestFaultMatrix(t *testing.T) {
	const timeout = 400 * time.Millisecond
	const margin = 2 * time.Second // generous: -race and a busy machine
	tests := []struct {
		name   string
		fault  introspecttest.Fault
		status int
		// refused is set when the endpoint is a closed port instead of a fault.
		refused bool
		// revoked presents a revoked token instead of an active one.
		revoked bool
	}{
		{name: "connection refused", refused: true, status: 503},
		{name: "never answers", fault: introspecttest.Hang(), status: 503},
		{name: "body trickles", fault: introspecttest.Trickle(20 * time.Millisecond), status: 503},
		{name: "connection reset mid-answer", fault: introspecttest.Reset(), status: 503},
		{name: "500", fault: introspecttest.Respond(500, "application/json", `{"error":"server_error"}`), status: 503},
		{name: "503", fault: introspecttest.Respond(503, "text/html", "<h1>maintenance</h1>"), status: 503},
		{name: "429 with Retry-After", fault: introspecttest.Respond(429, "application/json", `{"error":"slow_down"}`, "Retry-After: 5"), status: 503},
		{name: "401 invalid_client", fault: introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`), status: 503},
		{name: "400 invalid_client", fault: introspecttest.Respond(400, "application/json", `{"error":"invalid_client"}`), status: 503},
		{name: "400 invalid_token", fault: introspecttest.InvalidTokenError(), status: 401, revoked: true},
		{name: "redirect", fault: introspecttest.Redirect("REDIRECT"), status: 503},
		{name: "HTML", fault: introspecttest.Respond(200, "text/html", "<html><body>Sign in</body></html>"), status: 503},
		{name: "non-object JSON", fault: introspecttest.Answer(`"active"`), status: 503},
		{name: "truncated JSON", fault: introspecttest.Answer(`{"active":true,"sub":"al`), status: 503},
		{name: "64 MiB body", fault: introspecttest.Oversized(64 << 20), status: 503},
		{name: `active "true"`, fault: introspecttest.Answer(`{"active":"true","sub":"x"}`), status: 503},
		{name: "active 1", fault: introspecttest.Answer(`{"active":1,"sub":"x"}`), status: 503},
		{name: "active null", fault: introspecttest.Answer(`{"active":null,"sub":"x"}`), status: 503},
		{name: "active missing", fault: introspecttest.Answer(`{"sub":"x"}`), status: 503},
		{name: "exp past with active true", fault: introspecttest.Answer(`{"active":true,"sub":"x","exp":1600000000}`), status: 401},
		{name: "nbf in the future", fault: introspecttest.Answer(`{"active":true,"sub":"x","nbf":4102444800}`), status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
				// Idle keep-alive connections of the shared transport are pooled, not leaked.
				goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
				goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
				goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
			)
			as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
			defer as.Close()
			elsewhere := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
			defer elsewhere.Close()
			cached := as.Issue(introspecttest.Claims{Subject: "cached"})
			fresh := as.Issue(introspecttest.Claims{Subject: "fresh"})
			if tt.revoked {
				as.Revoke(fresh)
			}
			var c capture
			endpoint := as.IntrospectionURL()
			opts := append(c.options(),
				introspect.WithCache(newLRU(t, 100)), introspect.WithTimeout(timeout),
				introspect.WithEndpoint(endpoint), introspect.WithClientCredentials(rsClientID, rsSecret))
			mw, err := introspect.New(opts...)
			require.NoError(t, err)
			defer mw.Close()
			h := mw.Handler(okHandler)
			require.Equal(t, 200, serve(h, bearer(cached)).status)

			fault := tt.fault
			if tt.name == "redirect" {
				fault = introspecttest.Redirect(elsewhere.IntrospectionURL())
			}
			var faulty http.Handler = h
			if tt.refused {
				mwDown, err := introspect.New(append(c.options(), introspect.WithTimeout(timeout),
					introspect.WithEndpoint("http://"+closedPort(t)+"/introspect"),
					introspect.WithClientCredentials(rsClientID, rsSecret))...)
				require.NoError(t, err)
				defer mwDown.Close()
				faulty = mwDown.Handler(okHandler)
			} else {
				as.SetFault(fault)
			}

			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			res := serve(faulty, bearer(fresh))
			elapsed := time.Since(start)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)

			assert.Equal(t, tt.status, res.status, "body %s", res.body)
			assert.Less(t, elapsed, timeout+margin, "answered within the timeout")
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "nothing unbounded was read")
			assertNoLeak(t, res, fresh, cached, rsSecret)
			assert.Equal(t, 200, serve(h, bearer(cached)).status, "a token cached before keeps working")
			assert.Zero(t, elsewhere.Calls(), "credentials never followed a redirect")

			as.ClearFault()
			again := as.Issue(introspecttest.Claims{Subject: "again"})
			assert.Equal(t, 200, serve(h, bearer(again)).status, "works again once the server recovers")
			c.assertClean(t, fresh, cached, again, rsSecret)
			// End the server's hanging handlers before the leak check.
			as.Close()
			elsewhere.Close()
		})
	}
}

// TestBulkhead: with the authorization server stuck, at most N calls are in
// flight; the other requests wait until their own deadline and get 503.
func TestBulkhead(t *testing.T) {
	const limit = 4
	as := newAS(t)
	release := make(chan struct{})
	as.SetFault(introspecttest.Block(release))
	mw := newMW(t, as, introspect.WithMaxConcurrentIntrospections(limit), introspect.WithTimeout(30*time.Second))
	h := mw.Handler(okHandler)

	// The first requests take every slot and hold it.
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(h, bearer(as.Issue(introspecttest.Claims{Subject: "holder"})))
		}()
	}
	require.Eventually(t, func() bool { return as.Calls() == limit }, 10*time.Second, time.Millisecond)

	const waiters = 36
	var unavailable atomic.Int64
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if serve(h, bearer(as.Issue(introspecttest.Claims{Subject: "u"})).WithContext(ctx)).status == 503 {
				unavailable.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool { return unavailable.Load() == waiters }, 20*time.Second, 5*time.Millisecond,
		"every request beyond the limit gets 503 at its deadline")
	assert.Equal(t, int64(limit), as.Calls(), "never more than the limit in flight")
	close(release)
	wg.Wait()
	assert.Equal(t, int64(limit), as.Calls(), "requests that gave up never reached the server")
}

func TestHeaderInjectionImpossible(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "x", Scope: "read"})
	mw := newMW(t, as)
	evil := []string{"admin\r\nSet-Cookie: a=b", `x" error="invalid_token`, "ok\\", "tab\tbed", "ünï"}
	for _, s := range evil {
		assert.Panics(t, func() { mw.RequireScope(s) }, "%q is refused when the guard is built", s)
	}
	// A custom check may still return anything: the challenge holds no
	// invalid scope token.
	refuse := func(*introspect.Introspection) error { return &introspect.InsufficientScopeError{Scopes: evil} }
	res := serve(mw.Handler(mw.Require(refuse)(okHandler)), bearer(tok))
	require.Equal(t, 403, res.status)
	assert.NotContains(t, res.challenge, "\r")
	assert.NotContains(t, res.challenge, "\n")
	assert.NotContains(t, res.challenge, "Set-Cookie")
	assert.Equal(t, `Bearer realm="api", error="insufficient_scope", error_description="the access token does not grant access to this resource"`, res.challenge,
		"invalid scope tokens are left out of the challenge")
	assert.Empty(t, res.header.Get("Set-Cookie"))

	_, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret), introspect.WithRealm("a\"b\r\nX: y"))
	assert.Error(t, err, "a realm with CR/LF is refused at New")
	assert.Equal(t, `Bearer realm="a\"b\\c"`, introspect.Challenge(`a"b\c`, "", "", nil, ""), "quotes are escaped in the realm")

	// Text from the authorization server never reaches the response.
	as.SetFault(introspecttest.Respond(400, "application/json", `{"error":"invalid_client\r\nX-Evil: 1","error_description":"<script>"}`))
	res = serve(mw.Handler(okHandler), bearer(tok))
	assert.Equal(t, 503, res.status)
	assert.Empty(t, res.header.Get("X-Evil"))
	assert.NotContains(t, res.body, "<script>")
	assert.NotContains(t, res.body, "invalid_client")
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "x"})
	client, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret), introspect.WithTimeout(300*time.Millisecond))
	require.NoError(t, err)
	for _, f := range []introspecttest.Fault{
		introspecttest.Respond(401, "application/json", `{"error":"invalid_client","error_description":"secret `+rsSecret+` token `+tok+`"}`),
		introspecttest.Respond(500, "text/plain", tok),
		introspecttest.Answer(`{"active":"` + tok + `"}`),
		introspecttest.Hang(),
		introspecttest.Reset(),
	} {
		as.SetFault(f)
		_, err := client.Introspect(context.Background(), tok)
		require.Error(t, err, f.String())
		for _, s := range []string{tok, rsSecret} {
			assert.NotContains(t, err.Error(), s, f.String())
		}
		var re *introspect.ResponseError
		if errors.As(err, &re) {
			assert.NotContains(t, re.Description, "\n")
		}
	}
}

func TestSecretsStayOutOfErrorsAndPrints(t *testing.T) {
	tok := "tok3n-that-must-not-leak"
	as := newAS(t)
	client, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret))
	require.NoError(t, err)

	// An AS that puts the token into its error code.
	as.SetFault(introspecttest.Respond(400, "application/json", `{"error":"`+tok+`"}`))
	_, err = client.Introspect(context.Background(), tok)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), tok)
	assert.Contains(t, err.Error(), "unregistered error code")
	as.SetFault(introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`))
	_, err = client.Introspect(context.Background(), tok)
	assert.EqualError(t, err, "introspect: authorization server answered 401 invalid_client")

	// Endpoint errors never repeat user info or a query.
	for _, ep := range []string{"https://rs:p4ssw0rd%zz@as.example.com/i", "http://as.example.com/i?key=p4ssw0rd", "ftp://as.example.com/i?key=p4ssw0rd"} {
		_, err := introspect.NewClient(introspect.WithEndpoint(ep), introspect.WithClientCredentials("id", "x"))
		require.Error(t, err, ep)
		assert.NotContains(t, err.Error(), "p4ssw0rd", ep)
	}

	// Credentials print without the secret under every verb and in JSON.
	cr := introspect.Credentials{ClientID: "rs", ClientSecret: rsSecret}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		assert.NotContains(t, fmt.Sprintf(format, cr), rsSecret, format)
		assert.NotContains(t, fmt.Sprintf(format, introspect.ClientContext{Credentials: cr}), rsSecret, format)
	}
	b, err := json.Marshal(cr)
	require.NoError(t, err)
	assert.NotContains(t, string(b), rsSecret)

	// An empty token is refused before any call.
	before := as.Calls()
	_, err = client.Introspect(context.Background(), "")
	assert.ErrorIs(t, err, introspect.ErrMissingToken)
	assert.Equal(t, before, as.Calls())
}

func TestChallengeLeavesOutEmptiedAttributes(t *testing.T) {
	assert.Equal(t, `Bearer error="invalid_token"`, introspect.Challenge("é", "invalid_token", "\r\n", nil, ""))
	assert.Equal(t, `Bearer`, introspect.Challenge("", "\"", "", []string{"\r"}, "\x00"))
}

// decidingAS answers active while active is set, decided when the request
// arrives; the first reply waits for gate. It stands for an authorization
// server whose answer was made just before a revocation.
type decidingAS struct {
	active atomic.Bool
	calls  atomic.Int64
	gate   chan struct{}
}

func (a *decidingAS) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := a.calls.Add(1)
	active := a.active.Load()
	if n == 1 {
		<-a.gate
	}
	w.Header().Set("Content-Type", "application/json")
	if !active {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	_, _ = fmt.Fprintf(w, `{"active":true,"sub":"x","exp":%d}`, time.Now().Add(time.Hour).Unix())
}

// TestEvictDuringCallIsNotUndone: a call in flight when the token is evicted
// answers its own request, but its (pre-revocation) answer is not cached.
func TestEvictDuringCallIsNotUndone(t *testing.T) {
	as := &decidingAS{gate: make(chan struct{})}
	as.active.Store(true)
	srv := httptest.NewServer(as)
	t.Cleanup(srv.Close)
	mw, err := introspect.New(introspect.WithEndpoint(srv.URL), introspect.WithClientCredentials("rs", "s"),
		introspect.WithCache(newLRU(t, 100)))
	require.NoError(t, err)
	h := mw.Handler(okHandler)
	done := make(chan int, 1)
	go func() { done <- serve(h, bearer("tok123")).status }()
	require.Eventually(t, func() bool { return as.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	as.active.Store(false) // revoked at the AS...
	require.NoError(t, mw.Evict(context.Background(), "tok123"))
	close(as.gate) // ...after it made the answer now arriving
	assert.Equal(t, 200, <-done, "the call answers the request it was made for")
	assert.Equal(t, 401, serve(h, bearer("tok123")).status, "but its answer was not cached")
	assert.Equal(t, int64(2), as.calls.Load())
}

func TestBindingFailsClosed(t *testing.T) {
	as := newAS(t)
	dpop := as.Issue(introspecttest.Claims{Subject: "d", Confirmation: map[string]string{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	unknown := as.Issue(introspecttest.Claims{Subject: "u", Confirmation: map[string]string{"x5t": "bm90LXNoYTI1Ng"}})
	for _, scheme := range []string{"", "DPoP", "Bearer"} {
		ex := introspect.ExtractorFunc(func(r *http.Request) (introspect.Token, error) {
			v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return introspect.Token{}, introspect.ErrMissingToken
			}
			return introspect.Token{Value: v, Scheme: scheme, Source: introspect.SourceCustom}, nil
		})
		h := newMW(t, as, introspect.WithExtractor(ex)).Handler(okHandler)
		assert.Equal(t, 401, serve(h, bearer(dpop)).status, "DPoP-bound token without a verified proof, scheme %q", scheme)
		assert.Equal(t, 401, serve(h, bearer(unknown)).status, "binding method that cannot be enforced, scheme %q", scheme)
	}
	lax := newMW(t, as, introspect.InsecureSkipTokenBinding()).Handler(okHandler)
	assert.Equal(t, 200, serve(lax, bearer(unknown)).status)
}

func TestTokenNeverInJSON(t *testing.T) {
	b, err := json.Marshal(struct{ T introspect.Token }{introspect.Token{Value: "SECRET-TOKEN", Scheme: "Bearer"}})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "SECRET-TOKEN")
}

func TestFailedNewStartsNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
	as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
	defer as.Close()
	for range 5 {
		_, err := introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(rsClientID, rsSecret),
			introspect.WithCache(newLRU(t, 10)), introspect.WithMaxTTL(time.Minute), introspect.WithRefreshAhead(time.Minute))
		require.Error(t, err)
	}
	assert.Zero(t, as.DiscoveryCalls(), "a refused configuration never reaches the server")
}

// TestStaleOnlyForOutages: stale-if-error covers an unreachable or failing
// server, not an answer it gave.
func TestStaleOnlyForOutages(t *testing.T) {
	tests := []struct {
		name  string
		fault introspecttest.Fault
		stale bool
	}{
		{"503", introspecttest.Respond(503, "", ""), true},
		{"429", introspecttest.Respond(429, "", ""), true},
		{"hang", introspecttest.Hang(), true},
		{"401 invalid_client", introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`), false},
		{"404", introspecttest.Respond(404, "text/plain", "not found"), false},
		{"malformed", introspecttest.Answer(`{"active":"yes"}`), false},
		{"oversized", introspecttest.Oversized(2 << 20), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			as := newAS(t, introspecttest.WithClock(clk.Now))
			tok := as.Issue(introspecttest.Claims{Subject: "x", TTL: time.Hour})
			h := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(time.Hour),
				introspect.WithTimeout(300*time.Millisecond)).Handler(okHandler)
			require.Equal(t, 200, serve(h, bearer(tok)).status)
			as.SetFault(tt.fault)
			clk.Advance(2 * time.Minute)
			want := 503
			if tt.stale {
				want = 200
			}
			assert.Equal(t, want, serve(h, bearer(tok)).status)
		})
	}
}

func TestEndpointRedactedInHooksAndLogs(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "x"})
	var c capture
	mw, err := introspect.New(append(c.options(),
		introspect.WithEndpoint(as.IntrospectionURL()+"?api_key=p4ssw0rd"),
		introspect.WithClientCredentials(rsClientID, rsSecret))...)
	require.NoError(t, err)
	as.SetFault(introspecttest.Respond(500, "", ""))
	serve(mw.Handler(okHandler), bearer(tok))
	c.assertClean(t, "p4ssw0rd", tok, rsSecret)
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Contains(t, strings.Join(c.events, "\n"), as.IntrospectionURL(), "the endpoint is still named")
}

// stallingCache is an LRU cache whose Get and Set can be made to wait:
// getStall makes every Get after the first wait until its context is done;
// setGate makes Set signal inSet and wait for the gate.
type stallingCache struct {
	*introspect.LRUCache
	gets     atomic.Int64
	getStall bool
	setGate  chan struct{}
	inSet    chan struct{}
}

func (c *stallingCache) Get(ctx context.Context, key introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	if c.gets.Add(1) > 1 && c.getStall {
		<-ctx.Done()
		return introspect.CacheEntry{}, false, ctx.Err()
	}
	return c.LRUCache.Get(ctx, key)
}

func (c *stallingCache) Set(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry) error {
	if c.setGate != nil {
		c.inSet <- struct{}{}
		<-c.setGate
	}
	return c.LRUCache.Set(ctx, key, e)
}

// TestCallTimeoutBoundsTheCache: the call timeout bounds the whole shared
// call, its cache reads included, for the request that runs it too: a cache
// that stalls until its context is done cannot hold a request without a
// deadline.
func TestCallTimeoutBoundsTheCache(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	cache := &stallingCache{LRUCache: newLRU(t, 100), getStall: true}
	h := newMW(t, as, introspect.WithCache(cache), introspect.WithTimeout(200*time.Millisecond)).Handler(okHandler)
	done := make(chan int, 1)
	go func() { done <- serve(h, bearer(tok)).status }()
	select {
	case status := <-done:
		assert.Equal(t, 503, status)
	case <-time.After(time.Minute):
		t.Fatal("the request outlived the call timeout by a minute")
	}
}

// TestEvictDuringCacheWrite: an Evict that lands while the call's answer is
// being written to the cache (after the call checked for evictions) still
// removes it.
func TestEvictDuringCacheWrite(t *testing.T) {
	as := &decidingAS{gate: make(chan struct{})}
	as.active.Store(true)
	close(as.gate)
	srv := httptest.NewServer(as)
	t.Cleanup(srv.Close)
	cache := &stallingCache{LRUCache: newLRU(t, 100), setGate: make(chan struct{}), inSet: make(chan struct{})}
	mw, err := introspect.New(introspect.WithEndpoint(srv.URL), introspect.WithClientCredentials("rs", "s"),
		introspect.WithCache(cache))
	require.NoError(t, err)
	h := mw.Handler(okHandler)
	done := make(chan int, 1)
	go func() { done <- serve(h, bearer("tok123")).status }()
	<-cache.inSet // the answer is checked and about to be written
	as.active.Store(false)
	require.NoError(t, mw.Evict(context.Background(), "tok123"))
	close(cache.setGate)
	assert.Equal(t, 200, <-done, "the call answers the request it was made for")
	cache.setGate = nil
	assert.Equal(t, 401, serve(h, bearer("tok123")).status, "but its answer did not stay cached")
	assert.Equal(t, int64(2), as.calls.Load())
}

// TestPanicIsNotAnOutage: a shared call that panics releases the requests
// waiting for it with 503, and they are not served a stale verdict: the
// panic may have come after the authorization server answered.
func TestPanicIsNotAnOutage(t *testing.T) {
	clk := newClock()
	as := newAS(t, introspecttest.WithClock(clk.Now))
	tok := as.Issue(introspecttest.Claims{Subject: "alice", TTL: time.Hour})
	var panicking atomic.Bool
	proceed := make(chan struct{})
	var misses, stale atomic.Int64
	h := cachedMW(t, as, clk, introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(5*time.Minute),
		introspect.WithHooks(&introspect.Hooks{
			CacheMiss:   func(context.Context) { misses.Add(1) },
			StaleServed: func(context.Context, error) { stale.Add(1) },
			IntrospectDone: func(context.Context, introspect.IntrospectDoneInfo) {
				if panicking.Load() {
					<-proceed
					panic("hook failure")
				}
			},
		})).Handler(okHandler)
	require.Equal(t, 200, serve(h, bearer(tok)).status)

	as.Revoke(tok)
	clk.Advance(2 * time.Minute) // past the cache TTL, within StaleTTL
	panicking.Store(true)
	misses.Store(0)
	leader := make(chan int, 1)
	go func() { leader <- serve(h, bearer(tok)).status }()
	require.Eventually(t, func() bool { return misses.Load() == 1 && as.Calls() == 2 }, 10*time.Second, time.Millisecond)
	waiter := make(chan int, 1)
	go func() { waiter <- serve(h, bearer(tok)).status }()
	require.Eventually(t, func() bool { return misses.Load() == 2 }, 10*time.Second, time.Millisecond)
	close(proceed)
	assert.Equal(t, 503, <-leader, "the panic is recovered: no stale verdict for a revoked token")
	assert.Equal(t, 503, <-waiter, "no stale verdict for a revoked token")
	assert.Zero(t, stale.Load())
}
