package main_test

// The end-to-end tests run the proxy binary as it is deployed: alone as a
// reverse proxy, and in forward-auth mode behind nginx (auth_request) and
// Caddy (forward_auth), each a real server on free loopback ports, rendered
// from testdata/nginx.conf.tmpl and testdata/Caddyfile.tmpl. An introspecttest
// authorization server answers the proxy, and a test service records what
// reaches it. Without nginx or caddy (scripts/deps.sh installs them) their
// tests fail under CI=true and are skipped elsewhere.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/introspect-go/introspect/introspecttest"
)

const (
	e2eClientID     = "introspect-proxy"
	e2eClientSecret = "e2e-secret"

	// startTimeout bounds the wait for a server to listen.
	startTimeout = 15 * time.Second
	// stopTimeout bounds the wait for a server to exit after SIGTERM.
	stopTimeout = 10 * time.Second

	hSubject  = "X-Auth-Subject"
	hClientID = "X-Auth-Client-Id"
	hScope    = "X-Auth-Scope"
	hUsername = "X-Auth-Username"
)

// scopeRules are the -require-scope rules of every proxy of the tests.
var scopeRules = []string{"/admin=admin", "POST /orders=orders:write"}

// sbinDirs are searched after PATH: Debian installs nginx in /usr/sbin,
// outside the PATH of most users.
var sbinDirs = []string{"/usr/sbin", "/usr/local/sbin"}

// e2eEnv is what every ingress of the tests shares.
type e2eEnv struct {
	proxy string // the proxy binary
	as    *introspecttest.Server
	svc   *service
}

// ingress is a way of putting the proxy in front of the service.
type ingress struct {
	name string
	// bin is the server the ingress runs besides the proxy ("" for none).
	bin string
	// start runs the ingress with its proxy, and returns the base URL of the
	// protected service and the ingress's server (the proxy's for
	// reverse-proxy).
	start func(t *testing.T, env *e2eEnv, bin string) (string, *server)
	// outage is the status a client gets while the authorization server fails.
	outage int
	// outageLog, when set, must be in the ingress's log after an outage.
	outageLog string
}

var ingresses = []ingress{
	{name: "reverse-proxy", start: startReverseProxy, outage: http.StatusServiceUnavailable},
	// auth_request accepts 2xx, 401 and 403 only: the proxy's 503 becomes 500.
	{name: "nginx", bin: "nginx", start: startNginx, outage: http.StatusInternalServerError,
		outageLog: "auth request unexpected status: 503"},
	// The same over a unix socket: its peer is a trusted proxy by default.
	{name: "nginx-unix-socket", bin: "nginx", start: startNginxUnix, outage: http.StatusInternalServerError,
		outageLog: "auth request unexpected status: 503"},
	// forward_auth passes any answer but a 2xx to the client as it is.
	{name: "caddy", bin: "caddy", start: startCaddy, outage: http.StatusServiceUnavailable},
}

// e2eCase is a request of a client and what must come of it.
type e2eCase struct {
	name   string
	method string // default GET
	path   string
	// token returns the token the client sends; nil sends no Authorization.
	token func(*introspecttest.Server) string
	// header is sent by the client besides Authorization.
	header http.Header
	// outage makes the authorization server answer 503 to the proxy; the
	// ingress says what the client gets.
	outage bool

	status int
	// challenge lists what the Bearer challenge of WWW-Authenticate must contain.
	challenge []string
	// noErrorCode: the challenge carries no error code (RFC 6750 §3.1).
	noErrorCode bool
	// identity is what the service must receive under each identity header
	// ("" for none); nil when the request must not reach the service.
	identity map[string]string
}

var (
	alice = introspecttest.Claims{Subject: "alice", ClientID: "web-app", Username: "alice@example.com",
		Scope: "read orders:write"}
	aliceIdentity = map[string]string{hSubject: "alice", hClientID: "web-app", hScope: "read orders:write",
		hUsername: "alice@example.com"}
	// bob has no username: its header must stay empty whatever the client sends.
	bob         = introspecttest.Claims{Subject: "bob", ClientID: "batch-job", Scope: "read"}
	bobIdentity = map[string]string{hSubject: "bob", hClientID: "batch-job", hScope: "read", hUsername: ""}

	// forged is what a client sends to pass for someone else.
	forged = http.Header{
		hSubject:  {"admin"},
		hClientID: {"admin-console"},
		hScope:    {"admin"},
		hUsername: {"root"},
		// a second header of the same name, and names that CGI, WSGI, Rack
		// and PHP services read as X-Auth-Subject
		"x-auth-subject": {"root"},
		"X-Auth_Subject": {"root"},
		"X_AUTH_SUBJECT": {"root"},
	}
	// forgedOrigin names another method and URI than the request's, under
	// every name the proxy reads in forward-auth mode.
	forgedOrigin = http.Header{
		"X-Original-Uri":     {"/public"},
		"X-Original-Method":  {"GET"},
		"X-Forwarded-Uri":    {"/public"},
		"X-Forwarded-Method": {"GET"},
	}
)

func issue(c introspecttest.Claims) func(*introspecttest.Server) string {
	return func(as *introspecttest.Server) string { return as.Issue(c) }
}

// revoked revokes the token before its first use: the proxy caches an
// active verdict for up to -max-ttl.
func revoked(c introspecttest.Claims) func(*introspecttest.Server) string {
	return func(as *introspecttest.Server) string {
		tok := as.Issue(c)
		as.Revoke(tok)
		return tok
	}
}

func unknown(*introspecttest.Server) string { return "a-token-the-server-never-issued" }

// e2eCases run in order against every ingress; the outage comes last.
var e2eCases = []e2eCase{
	{name: "valid token", path: "/things?page=2", token: issue(alice),
		status: http.StatusOK, identity: aliceIdentity},
	{name: "valid token without username", path: "/things", token: issue(bob),
		status: http.StatusOK, identity: bobIdentity},
	{name: "method a scope rule leaves alone", path: "/orders/7", token: issue(bob),
		status: http.StatusOK, identity: bobIdentity},
	{name: "scope of a method rule", method: http.MethodPost, path: "/orders", token: issue(alice),
		status: http.StatusOK, identity: aliceIdentity},
	{name: "missing token", path: "/things",
		status: http.StatusUnauthorized, challenge: []string{"Bearer"}, noErrorCode: true},
	{name: "unknown token", path: "/things", token: unknown,
		status: http.StatusUnauthorized, challenge: []string{"Bearer", `error="invalid_token"`}},
	{name: "revoked token", path: "/things", token: revoked(alice),
		status: http.StatusUnauthorized, challenge: []string{"Bearer", `error="invalid_token"`}},
	{name: "insufficient scope for a path", path: "/admin/users", token: issue(bob),
		status:    http.StatusForbidden,
		challenge: []string{"Bearer", `error="insufficient_scope"`, `scope="admin"`}},
	{name: "insufficient scope for a method", method: http.MethodPost, path: "/orders", token: issue(bob),
		status:    http.StatusForbidden,
		challenge: []string{"Bearer", `error="insufficient_scope"`, `scope="orders:write"`}},
	{name: "forged identity without a token", path: "/things", header: forged,
		status: http.StatusUnauthorized, challenge: []string{"Bearer"}},
	{name: "forged identity with another token", path: "/things", token: issue(bob), header: forged,
		status: http.StatusOK, identity: bobIdentity},
	{name: "forged identity for a scope rule", path: "/admin/users", token: issue(bob), header: forged,
		status:    http.StatusForbidden,
		challenge: []string{"Bearer", `error="insufficient_scope"`, `scope="admin"`}},
	{name: "forged original request", method: http.MethodPost, path: "/admin/users", token: issue(bob),
		header: forgedOrigin,
		status: http.StatusForbidden, challenge: []string{`error="insufficient_scope"`, `scope="admin"`}},
	{name: "authorization server down", path: "/things", token: issue(alice), outage: true},
}

func TestE2E(t *testing.T) {
	env := &e2eEnv{proxy: buildProxy(t)}
	env.as = introspecttest.NewServer(introspecttest.WithClient(e2eClientID, e2eClientSecret))
	t.Cleanup(env.as.Close)
	env.svc = newService(t)
	for _, ing := range ingresses {
		t.Run(ing.name, func(t *testing.T) {
			var bin string
			if ing.bin != "" {
				bin = lookIngress(t, ing.bin)
			}
			base, log := ing.start(t, env, bin)
			client := &http.Client{
				Timeout:       15 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			t.Cleanup(client.CloseIdleConnections)
			for _, tc := range e2eCases {
				t.Run(tc.name, func(t *testing.T) {
					if tc.outage {
						env.as.SetFault(introspecttest.Respond(http.StatusServiceUnavailable, "text/plain", "down"))
						t.Cleanup(env.as.ClearFault)
						tc.status = ing.outage
					}
					checkCase(t, env, client, base, tc)
					if tc.outage && ing.outageLog != "" && !strings.Contains(log.log(), ing.outageLog) {
						t.Errorf("the %s log lacks %q", ing.name, ing.outageLog)
					}
				})
			}
		})
	}
}

// checkCase sends the request of tc through the ingress at base and checks
// the answer and what reached the service.
func checkCase(t *testing.T, env *e2eEnv, client *http.Client, base string, tc e2eCase) {
	t.Helper()
	method := tc.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	const sent = `{"item":7}`
	if method == http.MethodPost {
		body = strings.NewReader(sent)
	}
	req, err := http.NewRequest(method, base+tc.path, body)
	if err != nil {
		t.Fatal(err)
	}
	var tok string
	if tc.token != nil {
		tok = tc.token(env.as)
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, vs := range tc.header {
		req.Header[k] = append(req.Header[k], vs...) // as written, not canonicalised
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	env.svc.take()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := env.svc.take()

	if resp.StatusCode != tc.status {
		t.Errorf("status %d, want %d; body %q", resp.StatusCode, tc.status, answer)
	}
	if len(tc.challenge) > 0 {
		checkChallenge(t, resp.Header.Values("WWW-Authenticate"), tc.challenge, tc.noErrorCode)
	}

	if tc.identity == nil {
		if len(got) > 0 {
			t.Errorf("the request reached the service: %s %s %v", got[0].method, got[0].uri, got[0].header)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("the service got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != method || r.uri != tc.path {
		t.Errorf("the service got %s %s, want %s %s", r.method, r.uri, method, tc.path)
	}
	if body != nil && r.body != sent {
		t.Errorf("the service got the body %q, want %q", r.body, sent)
	}
	if a := r.header.Get("Authorization"); a != "Bearer "+tok {
		t.Errorf("the service got Authorization %q, want the client's", a)
	}
	for h, want := range tc.identity {
		vs := r.header.Values(h)
		switch {
		case want == "" && (len(vs) == 0 || len(vs) == 1 && vs[0] == ""):
		case want != "" && len(vs) == 1 && vs[0] == want:
		default:
			t.Errorf("the service got %s %q, want %q", h, vs, want)
		}
	}
	for h, vs := range r.header {
		name := strings.ReplaceAll(h, "_", "-")
		if !strings.HasPrefix(strings.ToLower(name), "x-auth-") {
			continue
		}
		if _, ok := tc.identity[h]; !ok || name != h {
			t.Errorf("the service got %s %q, which the proxy does not send", h, vs)
		}
	}
	var echo map[string]string
	if err := json.Unmarshal(answer, &echo); err != nil {
		t.Fatalf("the service's answer %q: %v", answer, err)
	}
	if echo[hSubject] != tc.identity[hSubject] {
		t.Errorf("the service answered subject %q, want %q", echo[hSubject], tc.identity[hSubject])
	}
}

// checkChallenge checks that the challenges of a refusal hold one Bearer
// challenge (a DPoP one may come with it, RFC 9449 §7.1) with every string
// of want, and no error code when noErrorCode.
func checkChallenge(t *testing.T, challenges, want []string, noErrorCode bool) {
	t.Helper()
	var bearer []string
	for _, c := range challenges {
		if scheme, _, _ := strings.Cut(c, " "); strings.EqualFold(scheme, "Bearer") {
			bearer = append(bearer, c)
		}
	}
	if len(bearer) != 1 {
		t.Errorf("WWW-Authenticate %q, want one Bearer challenge", challenges)
		return
	}
	for _, w := range want {
		if !strings.Contains(bearer[0], w) {
			t.Errorf("WWW-Authenticate %q lacks %s", bearer[0], w)
		}
	}
	if noErrorCode && strings.Contains(bearer[0], "error=") {
		t.Errorf("WWW-Authenticate %q has an error code for a request without a token", bearer[0])
	}
}

// service is the protected service: it records every request and answers
// the identity headers it got, as JSON.
type service struct {
	*httptest.Server
	addr string // host:port

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, uri, body string
	header            http.Header
}

func newService(t *testing.T) *service {
	t.Helper()
	s := &service{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, seenRequest{method: r.Method, uri: r.URL.RequestURI(), body: string(b), header: r.Header.Clone()})
		s.mu.Unlock()
		echo := map[string]string{}
		for _, h := range []string{hSubject, hClientID, hScope, hUsername} {
			echo[h] = r.Header.Get(h)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo)
	}))
	t.Cleanup(s.Close)
	s.addr = s.Listener.Addr().String()
	return s
}

// take returns the requests recorded since the last call and forgets them.
func (s *service) take() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen
	s.seen = nil
	return seen
}

// buildProxy builds the proxy binary of this directory into a temporary
// directory, with the race detector when the tests have it.
func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "introspect-proxy")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// lookIngress finds the binary name on PATH or in sbinDirs. Without it the
// test fails under CI=true and is skipped elsewhere.
func lookIngress(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (scripts/deps.sh installs it; Debian: apt-get install %s); the %s end-to-end tests cannot run", name, name, name)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
	return ""
}

// startProxy runs the proxy with the common flags and args on a free
// loopback port, and returns its listen address once it serves.
func startProxy(t *testing.T, env *e2eEnv, args ...string) (string, *server) {
	t.Helper()
	var addr string
	s := startRetrying(t, "introspect-proxy", func() (*server, error) {
		addr = freeAddr(t)
		return runProxy(t, env, addr, func() error { return tcpReady(addr) }, args...)
	})
	return addr, s
}

// startProxyUnix runs the proxy with the common flags and args on a unix
// socket, and returns the socket's path once it serves.
func startProxyUnix(t *testing.T, env *e2eEnv, args ...string) (string, *server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.sock")
	s := startRetrying(t, "introspect-proxy", func() (*server, error) {
		return runProxy(t, env, "unix:"+path, func() error {
			c, err := net.Dial("unix", path)
			if err == nil {
				c.Close()
			}
			return err
		}, args...)
	})
	return path, s
}

// runProxy starts the proxy on listen and waits for its /healthz and for
// ready.
func runProxy(t *testing.T, env *e2eEnv, listen string, ready func() error, args ...string) (*server, error) {
	t.Helper()
	ops := freeAddr(t)
	full := []string{"-listen", listen, "-ops-listen", ops, "-endpoint", env.as.IntrospectionURL(),
		"-client-id", e2eClientID}
	for _, r := range scopeRules {
		full = append(full, "-require-scope", r)
	}
	cmd := exec.Command(env.proxy, append(full, args...)...)
	// The proxy reads every setting from INTROSPECT_* too: none of the caller's.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INTROSPECT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "INTROSPECT_CLIENT_SECRET="+e2eClientSecret)
	return startServer(t, "introspect-proxy", cmd, func() error {
		if err := httpReady("http://" + ops + "/healthz"); err != nil {
			return err
		}
		return ready()
	})
}

func startReverseProxy(t *testing.T, env *e2eEnv, _ string) (string, *server) {
	t.Helper()
	addr, p := startProxy(t, env, "-upstream", env.svc.URL)
	return "http://" + addr, p
}

// nginxConf fills testdata/nginx.conf.tmpl.
type nginxConf struct {
	Dir      string // prefix, pid, logs and temporary files
	Listen   string // host:port of the site
	Auth     string // host:port of the proxy in forward-auth mode, or unix:PATH: for its socket
	Upstream string // host:port of the service
	Root     bool   // nginx runs as root
}

func startNginx(t *testing.T, env *e2eEnv, bin string) (string, *server) {
	t.Helper()
	auth, _ := startProxy(t, env, "-forward-auth")
	return runNginx(t, env, bin, auth)
}

// startNginxUnix is startNginx with the proxy on a unix socket.
func startNginxUnix(t *testing.T, env *e2eEnv, bin string) (string, *server) {
	t.Helper()
	path, _ := startProxyUnix(t, env, "-forward-auth")
	return runNginx(t, env, bin, "unix:"+path+":")
}

// runNginx runs nginx in front of the service, asking the proxy at auth.
func runNginx(t *testing.T, env *e2eEnv, bin, auth string) (string, *server) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	errorLog := filepath.Join(dir, "error.log")
	var listen string
	s := startRetrying(t, "nginx", func() (*server, error) {
		listen = freeAddr(t)
		render(t, "nginx.conf.tmpl", conf, nginxConf{Dir: dir, Listen: listen, Auth: auth, Upstream: env.svc.addr,
			Root: os.Geteuid() == 0})
		// -e (nginx 1.19.5 and later) keeps nginx off the error log of the system.
		cmd := exec.Command(bin, "-p", dir+string(filepath.Separator), "-c", conf, "-e", errorLog)
		return startServer(t, "nginx", cmd, func() error { return tcpReady(listen) },
			errorLog, filepath.Join(dir, "access.log"))
	})
	return "http://" + listen, s
}

// caddyConf fills testdata/Caddyfile.tmpl.
type caddyConf struct {
	Port     int    // port of the site, on 127.0.0.1
	Auth     string // host:port of the proxy in forward-auth mode
	Upstream string // host:port of the service
}

func startCaddy(t *testing.T, env *e2eEnv, bin string) (string, *server) {
	t.Helper()
	auth, _ := startProxy(t, env, "-forward-auth")
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	var listen string
	s := startRetrying(t, "caddy", func() (*server, error) {
		listen = freeAddr(t)
		_, port, _ := net.SplitHostPort(listen)
		p, _ := strconv.Atoi(port)
		render(t, "Caddyfile.tmpl", file, caddyConf{Port: p, Auth: auth, Upstream: env.svc.addr})
		cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir,
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
		return startServer(t, "caddy", cmd, func() error { return tcpReady(listen) })
	})
	return "http://" + listen, s
}

// render executes the template testdata/name into the file dst.
func render(t *testing.T, name, dst string, data any) {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tcpReady(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func httpReady(url string) error {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// server is a server of the test run as a child process, stopped with
// SIGTERM when the test ends; its output and log files go to the test's log
// when the test failed.
type server struct {
	name     string
	cmd      *exec.Cmd
	out      *lockedBuffer
	logFiles []string
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	killed   bool
}

// startRetrying calls start up to three times, as a port found free may be
// taken before the server binds it.
func startRetrying(t *testing.T, name string, start func() (*server, error)) *server {
	t.Helper()
	var err error
	for range 3 {
		var s *server
		if s, err = start(); err == nil {
			return s
		}
	}
	t.Fatalf("starting %s: %v", name, err)
	return nil
}

// startServer starts cmd and polls ready until it answers nil, for at most
// startTimeout. A server that exits or does not get ready is an error, with
// its log.
func startServer(t *testing.T, name string, cmd *exec.Cmd, ready func() error, logFiles ...string) (*server, error) {
	t.Helper()
	s := &server{name: name, cmd: cmd, out: new(lockedBuffer), logFiles: logFiles, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.WaitDelay = stopTimeout // children holding the output pipe
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		err := ready()
		if err == nil {
			break
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited (%v):\n%s", name, s.waitErr, s.log())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not get ready in %v: %v\n%s", name, startTimeout, err, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		s.stop()
		if s.killed {
			t.Errorf("%s did not exit within %v of SIGTERM", name, stopTimeout)
		}
		if strings.Contains(s.out.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", name)
		}
		if t.Failed() {
			t.Logf("%s (%v):\n%s", name, s.waitErr, s.log())
		}
	})
	return s, nil
}

// stop sends SIGTERM and waits for the exit, killing the server after
// stopTimeout.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = s.cmd.Process.Kill()
		}
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			s.killed = true
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// log is the output of the server so far, then its log files.
func (s *server) log() string {
	var b strings.Builder
	b.WriteString(s.out.String())
	for _, f := range s.logFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "--- %s\n%s", f, data)
	}
	return b.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestE2EHarnessWithoutIngress runs lookIngress in a child test process with
// neither nginx nor caddy to be found: under CI=true it must fail, elsewhere
// skip, saying how to install them.
func TestE2EHarnessWithoutIngress(t *testing.T) {
	if os.Getenv("INTROSPECT_PROXY_HARNESS_CHILD") == "1" {
		sbinDirs = nil
		for _, name := range []string{"nginx", "caddy"} {
			t.Run(name, func(t *testing.T) {
				lookIngress(t, name)
				t.Fatal("lookIngress returned without " + name)
			})
		}
		return
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "--- FAIL"},
		{"", false, "--- SKIP"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestE2EHarnessWithoutIngress$", "-test.v")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "CI=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "PATH="+t.TempDir(), "CI="+tc.ci, "INTROSPECT_PROXY_HARNESS_CHILD=1")
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v, want %v:\n%s", failed, tc.wantFail, out)
			}
			for _, want := range []string{tc.want, "nginx is not installed", "caddy is not installed", "scripts/deps.sh"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
