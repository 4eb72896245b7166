package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/internal/testredis"
	"github.com/introspect-go/introspect/introspecttest"
)

// TestHealthz checks that /healthz answers on the operations address, and
// that the proxied address does not serve it (the upstream does).
func TestHealthz(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up))
	got := do(t, http.MethodGet, p.ops+"/healthz", "")
	assert.Equal(t, http.StatusOK, got.status)
	assert.JSONEq(t, `{"status":"ok"}`, got.body)
	got = do(t, http.MethodGet, p.url+"/healthz", "")
	assert.Equal(t, http.StatusUnauthorized, got.status, "the proxied address protects every path")
}

// TestReadyzDiscovery checks that /readyz fails until discovery has loaded
// the authorization server's metadata (-issuer), then succeeds.
func TestReadyzDiscovery(t *testing.T) {
	as := newAS(t)
	as.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "text/plain", "starting"))
	up := newUpstream(t, nil)
	p := startProxy(t, []string{"-upstream", up.URL, "-issuer", as.Issuer, "-client-id", clientID})
	var got answer
	waitFor(t, 10*time.Second, "a failed discovery", func() bool { return as.DiscoveryCalls() > 0 })
	got = do(t, http.MethodGet, p.ops+"/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, got.status)
	assert.Contains(t, got.body, "discovery")
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	assert.Equal(t, http.StatusServiceUnavailable, do(t, http.MethodGet, p.url+"/x", bearer(tok)).status, "no endpoint yet")

	as.SetDiscoveryFault(introspecttest.Fault{})
	waitFor(t, 20*time.Second, "/readyz to succeed", func() bool {
		do(t, http.MethodGet, p.url+"/x", bearer(tok)) // a request asks for the metadata again once the backoff is over
		got = do(t, http.MethodGet, p.ops+"/readyz", "")
		return got.status == http.StatusOK
	})
	assert.JSONEq(t, `{"status":"ready"}`, got.body)
	assert.Equal(t, http.StatusOK, do(t, http.MethodGet, p.url+"/x", bearer(tok)).status)
}

// TestReadyzJWTIssuers checks that /readyz waits for every issuer of local
// JWT validation, -jwt-issuers included, and names the one it waits for.
func TestReadyzJWTIssuers(t *testing.T) {
	as, other := newAS(t), newAS(t)
	other.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "text/plain", "starting"))
	up := newUpstream(t, nil)
	p := startBare(t, []string{"-upstream", up.URL, "-validate", "jwt", "-issuer", as.Issuer,
		"-jwt-issuers", other.Issuer, "-jwt-audience", "https://api.example"})
	var got answer
	waitFor(t, 10*time.Second, "the first issuer's discovery and a failed one of the other", func() bool {
		got = do(t, http.MethodGet, p.ops+"/readyz", "")
		return other.DiscoveryCalls() > 0 && as.JWKSCalls() > 0 && !strings.Contains(got.body, as.Issuer)
	})
	assert.Equal(t, http.StatusServiceUnavailable, got.status)
	assert.Contains(t, got.body, other.Issuer+" (metadata)")

	other.SetDiscoveryFault(introspecttest.Fault{})
	waitFor(t, 20*time.Second, "/readyz to succeed", func() bool { // the loop retries after its backoff (≤ 5 s)
		got = do(t, http.MethodGet, p.ops+"/readyz", "")
		return got.status == http.StatusOK
	})
	assert.JSONEq(t, `{"status":"ready"}`, got.body)
}

// TestMetrics scrapes /metrics after known requests and checks the
// middleware's decisions, the cache lookups and the proxy's own request
// histogram.
func TestMetrics(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up, "-require-scope", "/admin=admin"))
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	for range 3 {
		require.Equal(t, http.StatusOK, do(t, http.MethodGet, p.url+"/x", bearer(tok)).status)
	}
	require.Equal(t, http.StatusUnauthorized, do(t, http.MethodGet, p.url+"/x", "").status)
	require.Equal(t, http.StatusForbidden, do(t, http.MethodGet, p.url+"/admin", bearer(tok)).status)

	got := do(t, http.MethodGet, p.ops+"/metrics", "")
	require.Equal(t, http.StatusOK, got.status)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(got.body))
	require.NoError(t, err)
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf, ok := families[name]
		require.True(t, ok, "no metric %s in:\n%s", name, got.body)
		var sum float64
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	// The refused /admin request counts as allowed (its token) and as
	// insufficient_scope (the rule).
	assert.Equal(t, 4.0, value("introspect_decisions_total", map[string]string{"introspect_outcome": "allowed"}))
	assert.Equal(t, 1.0, value("introspect_decisions_total", map[string]string{"introspect_outcome": "missing"}))
	assert.Equal(t, 1.0, value("introspect_decisions_total", map[string]string{"introspect_outcome": "insufficient_scope"}))
	assert.Equal(t, 1.0, value("introspect_cache_lookups_total", map[string]string{"introspect_cache_result": "miss"}))
	assert.Equal(t, 3.0, value("introspect_cache_lookups_total", map[string]string{"introspect_cache_result": "hit"}))
	assert.Equal(t, 3.0, value("introspect_proxy_request_duration_seconds", map[string]string{"introspect_outcome": "allowed", "http_response_status_code": "200"}))
	assert.Equal(t, 1.0, value("introspect_proxy_request_duration_seconds", map[string]string{"introspect_outcome": "insufficient_scope", "http_response_status_code": "403"}))
	assert.Contains(t, got.body, "go_goroutines")
	assert.NotContains(t, got.body, tok)
}

// TestAccessLog checks the access log: one JSON line per request with
// method, path without query, status, duration and outcome; never the
// token, nor the query.
func TestAccessLog(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	require.Equal(t, http.StatusOK, do(t, http.MethodGet, p.url+"/items/7?access_token=in-query&q=x", bearer(tok)).status)
	require.Equal(t, http.StatusUnauthorized, do(t, http.MethodPost, p.url+"/items", bearer("unknown-token-value")).status)
	waitFor(t, 5*time.Second, "two access log lines", func() bool { return len(p.logs.lines(t, "request")) == 2 })
	lines := p.logs.lines(t, "request")
	for i, want := range []map[string]any{
		{"method": "GET", "path": "/items/7", "status": float64(200), "outcome": "allowed"},
		{"method": "POST", "path": "/items", "status": float64(401), "outcome": "inactive"},
	} {
		for k, v := range want {
			assert.Equal(t, v, lines[i][k], k)
		}
		assert.IsType(t, float64(0), lines[i]["duration_ms"])
		assert.Equal(t, "INFO", lines[i]["level"])
	}
	logs := p.logs.String()
	for _, secret := range []string{tok, "unknown-token-value", "in-query", clientSecret, "access_token"} {
		assert.NotContains(t, logs, secret)
	}
}

// TestGracefulShutdown stops the proxy while a request is in flight: the
// request completes, /readyz fails during the drain, new connections are
// refused, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	as := newAS(t)
	entered, release := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	p := startProxy(t, reverseArgs(as, up, "-shutdown-timeout", "20s"))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	result := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/slow", nil)
		req.Header.Set("Authorization", bearer(tok))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- answer{status: resp.StatusCode, body: string(b)}
	}()
	<-entered
	p.stop()
	waitNotAccepting(t, p.addr)
	got := do(t, http.MethodGet, p.ops+"/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, got.status)
	assert.Contains(t, got.body, "shutting down")
	select {
	case err := <-p.done:
		t.Fatalf("Serve returned while a request was in flight: %v", err)
	default:
	}
	close(release)
	a := <-result
	assert.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "finished", a.body)
	select {
	case err := <-p.done:
		assert.NoError(t, err)
		p.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last request")
	}
}

// waitNotAccepting waits until nothing accepts connections at addr.
func waitNotAccepting(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 5*time.Second, "the proxy to stop accepting connections", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

// TestShutdownTimeout stops the proxy while a request outlives
// -shutdown-timeout: its connection is closed and Serve reports it.
func TestShutdownTimeout(t *testing.T) {
	as := newAS(t)
	entered := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	p := startProxy(t, reverseArgs(as, up, "-shutdown-timeout", "300ms"))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	go func() {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/stuck", nil)
		req.Header.Set("Authorization", bearer(tok))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	p.stop()
	select {
	case err := <-p.done:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		p.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the shutdown timeout")
	}
}

// TestReadyzRedis runs two proxies sharing a Redis cache: /readyz follows
// Redis, and a token costs one call to the authorization server for both.
func TestReadyzRedis(t *testing.T) {
	addr, kill := startRedis(t)
	as := newAS(t)
	up := newUpstream(t, nil)
	env := []string{"INTROSPECT_REDIS_SECRET=" + strings.Repeat("s", 32)}
	args := reverseArgs(as, up, "-redis-addr", addr, "-redis-prefix", "proxy-test:", "-redis-timeout", "500ms")
	a := startProxy(t, args, env...)
	b := startProxy(t, args, env...)
	waitFor(t, 5*time.Second, "/readyz", func() bool { return do(t, http.MethodGet, a.ops+"/readyz", "").status == http.StatusOK })

	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	before := as.Calls()
	require.Equal(t, http.StatusOK, do(t, http.MethodGet, a.url+"/x", bearer(tok)).status)
	require.Equal(t, http.StatusOK, do(t, http.MethodGet, b.url+"/x", bearer(tok)).status)
	assert.Equal(t, int64(1), as.Calls()-before, "calls to the authorization server for two replicas")

	kill()
	got := do(t, http.MethodGet, a.ops+"/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, got.status)
	assert.Contains(t, got.body, "redis")
}

// startRedis starts a redis-server on a free loopback port, stopped when
// the test ends or when kill is called. Without the binary the test fails
// under CI=true and is skipped elsewhere.
func startRedis(t *testing.T) (addr string, kill func()) {
	t.Helper()
	srv := testredis.Start(t, testredis.Missing{
		Reason: "redis-server is not installed (Debian: apt-get install redis-server)",
		Skip:   "SKIPPED: ",
	})
	return srv.Addr, srv.Kill
}

// The shutdown waits for upgraded connections (websockets), which
// http.Server's Shutdown ignores: one that ends within -shutdown-timeout
// ends as its client chooses, and Serve returns nil after it; one still
// open at the end is closed, and Serve says so.
func TestShutdownUpgraded(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, wsEcho)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})

	t.Run("drained", func(t *testing.T) {
		p := startProxy(t, reverseArgs(as, up, "-shutdown-timeout", "30s"))
		resp, conn, br := upgradeAt(t, p.addr, bearer(tok))
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		p.stop()
		waitNotAccepting(t, p.addr)
		echoes(t, conn, br, "still open\n")
		select {
		case err := <-p.done:
			t.Fatalf("Serve returned with a websocket open: %v", err)
		default:
		}
		conn.Close()
		select {
		case err := <-p.done:
			assert.NoError(t, err)
			p.done <- err // for the cleanup
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after the websocket ended")
		}
	})
	t.Run("closed at the timeout", func(t *testing.T) {
		p := startProxy(t, reverseArgs(as, up, "-shutdown-timeout", "300ms"))
		resp, conn, br := upgradeAt(t, p.addr, bearer(tok))
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		echoes(t, conn, br, "open\n")
		p.stop()
		select {
		case err := <-p.done:
			require.Error(t, err)
			assert.Contains(t, err.Error(), "upgraded connections were still open at the end of the shutdown timeout")
			p.done <- nil
		case <-time.After(20 * time.Second):
			t.Fatal("Serve did not return after the shutdown timeout")
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := br.ReadByte()
		assert.ErrorIs(t, err, io.EOF, "the proxy closed the websocket")
		assert.Len(t, p.logs.lines(t, "upgraded connections still open at the end of the shutdown timeout: closing them"), 1)
	})
}

// An upgraded connection whose upstream side has closed, while the client
// keeps its side open, is closed at the end of the shutdown timeout too:
// ending the request's context closes only the upstream side, and the
// proxy would wait for the client's.
func TestShutdownHalfClosedUpgrade(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		conn.Close() // the upstream's side ends at once
	})
	p := startProxy(t, reverseArgs(as, up, "-shutdown-timeout", "300ms"))
	resp, conn, br := upgradeAt(t, p.addr, bearer(as.Issue(introspecttest.Claims{Subject: "alice"})))
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	p.stop()
	select {
	case err := <-p.done:
		require.Error(t, err)
		p.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	assert.Empty(t, p.logs.lines(t, "upgraded connections did not end after being closed"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the proxy closed the client's side")
}
