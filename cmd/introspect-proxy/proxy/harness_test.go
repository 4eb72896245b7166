package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/proxy"
	"github.com/introspect-go/introspect/introspecttest"
)

// The proxy's client at the test authorization server.
const (
	clientID     = "proxy"
	clientSecret = "proxy-secret-with+/=:%"
)

// upstream is a service behind the proxy that records what it receives.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request // clones, bodies dropped
}

// newUpstream starts a service answering 200 "upstream: METHOD PATH" to
// every request, or serving h when it is not nil.
func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests = append(u.requests, r.Clone(context.Background()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "upstream: "+r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

// last returns the last request the service received.
func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	require.NotEmpty(t, u.requests, "the upstream received no request")
	return u.requests[len(u.requests)-1]
}

// count is the number of requests the service received.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

// logBuffer collects the proxy's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the JSON log lines whose msg is msg.
func (l *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "log line %q", sc.Text())
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// running is a proxy serving on loopback ports.
type running struct {
	srv   *proxy.Server
	cfg   *config.Config
	url   string // the proxy's base URL
	ops   string // the operations endpoints' base URL
	logs  *logBuffer
	stop  context.CancelFunc
	done  chan error // Serve's result
	addr  string
	opsLn net.Listener
}

// startProxy loads a configuration from args and env (INTROSPECT_ variables
// as os.Environ writes them), with the client secret of the test server in
// the environment, and serves it on free loopback ports until the test
// ends.
func startProxy(t *testing.T, args []string, env ...string) *running {
	t.Helper()
	env = append([]string{config.EnvClientSecret + "=" + clientSecret}, env...)
	cfg, err := config.Load(args, env, io.Discard)
	require.NoError(t, err)
	return serveConfig(t, cfg)
}

// serveConfig serves cfg on free loopback ports until the test ends.
func serveConfig(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := proxy.New(cfg, logger)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	r := &running{srv: srv, cfg: cfg, logs: logs, stop: stop, done: make(chan error, 1), addr: ln.Addr().String(), opsLn: opsLn}
	scheme := "http://"
	if cfg.TLSCertificate != nil {
		scheme = "https://"
	}
	r.url = scheme + ln.Addr().String()
	r.ops = "http://" + opsLn.Addr().String()
	go func() { r.done <- srv.Serve(ctx, ln, opsLn) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("the proxy did not stop")
		}
		require.NoError(t, srv.Close())
	})
	return r
}

// newHandler builds the proxy of args, with the client secret of the test
// server in the environment and its log written as JSON to log, and
// returns its handler, served by no listener; the proxy is closed when the
// test ends.
func newHandler(tb testing.TB, args []string, log io.Writer) http.Handler {
	tb.Helper()
	cfg, err := config.Load(args, []string{config.EnvClientSecret + "=" + clientSecret}, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := proxy.New(cfg, slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: cfg.LogLevel})))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv.Handler()
}

// newAS starts a test authorization server with the proxy's client.
func newAS(t *testing.T, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	as := introspecttest.NewServer(append([]introspecttest.Option{introspecttest.WithClient(clientID, clientSecret)}, opts...)...)
	t.Cleanup(as.Close)
	return as
}

// reverseArgs are the flags of a reverse proxy to up against as.
func reverseArgs(as *introspecttest.Server, up *upstream, extra ...string) []string {
	return append([]string{"-upstream", up.URL, "-endpoint", as.IntrospectionURL(), "-client-id", clientID, "-realm", "api"}, extra...)
}

// forwardArgs are the flags of a forward-auth proxy against as.
func forwardArgs(as *introspecttest.Server, extra ...string) []string {
	return append([]string{"-forward-auth", "-endpoint", as.IntrospectionURL(), "-client-id", clientID, "-realm", "api"}, extra...)
}

// answer is a response, read.
type answer struct {
	status    int
	header    http.Header
	body      string
	challenge string // the WWW-Authenticate values, joined
}

// do sends a request to url with the Authorization value auth (none when
// empty) and the headers given as name, value pairs.
func do(t *testing.T, method, url, auth string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body),
		challenge: strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")}
}

func bearer(tok string) string { return "Bearer " + tok }

// waitFor polls cond every 20 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
