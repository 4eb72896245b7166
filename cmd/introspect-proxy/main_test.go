package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// childArgsEnv, in a child process of the test binary, holds the
// arguments (JSON) with which the child runs main.
const childArgsEnv = "PROXY_MAIN_TEST_ARGS"

// TestMainChild is main in a child process started by the tests below; it
// does nothing in the test process itself.
func TestMainChild(t *testing.T) {
	raw := os.Getenv(childArgsEnv)
	if raw == "" {
		t.Skip("runs as a child of the other tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	os.Args = append([]string{"introspect-proxy"}, args...)
	main() // exits 1 on an error
}

// proxyChild starts the proxy's main in a child process with args and the
// extra environment env.
func proxyChild(t *testing.T, args []string, env ...string) (*exec.Cmd, *bytes.Buffer, io.ReadCloser) {
	t.Helper()
	raw, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainChild$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(raw))
	cmd.Env = append(cmd.Env, env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	return cmd, &stdout, stderr
}

// TestCheckConfigExitStatus runs -check-config: exit status 0 and a line
// on stdout for a valid configuration, 1 and the problems naming their
// settings on stderr for an invalid one.
func TestCheckConfigExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantStatus int
		wantOut    string
		wantErr    []string
	}{
		{"valid", []string{"-check-config", "-upstream", "http://127.0.0.1:3000", "-endpoint", "https://as.example.com/introspect", "-client-id", "api"},
			0, "the configuration is valid: reverse-proxy mode", nil},
		{"invalid", []string{"-check-config", "-forward-auth", "-endpoint", "http://as.example.com/introspect", "-max-ttl", "soon"},
			1, "", []string{"invalid configuration", "-endpoint: is not https", `-max-ttl: "soon" is not a duration`, "-client-id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, stdout, stderrPipe := proxyChild(t, tc.args, "INTROSPECT_CLIENT_SECRET=s3cret")
			stderr, _ := io.ReadAll(stderrPipe)
			err := cmd.Wait()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			}
			assert.Equal(t, tc.wantStatus, status, "stderr:\n%s", stderr)
			assert.Contains(t, stdout.String(), tc.wantOut)
			for _, w := range tc.wantErr {
				assert.Contains(t, string(stderr), w)
			}
			assert.NotContains(t, stdout.String()+string(stderr), "s3cret")
		})
	}
}

// TestRunCheckConfig runs -check-config in process: it builds the
// middleware without listening, and returns the library's errors too.
func TestRunCheckConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-check-config", "-forward-auth", "-issuer", "https://as.example.com", "-client-id", "api",
		"-require-scope", "/a=b", "-listen", "127.0.0.1:1"}, []string{"INTROSPECT_CLIENT_SECRET=s"}, &stdout, &stderr)
	require.NoError(t, err)
	assert.Equal(t, "introspect-proxy: the configuration is valid: forward-auth mode, introspect validation, scope rules: 1\n", stdout.String())

	// Its warnings too.
	stdout.Reset()
	err = run(context.Background(), []string{"-check-config", "-forward-auth", "-issuer", "https://as.example.com", "-client-id", "api",
		"-listen", "127.0.0.1:1", "-insecure-skip-token-binding"}, []string{"INTROSPECT_CLIENT_SECRET=s"}, &stdout, &stderr)
	require.NoError(t, err)
	assert.Equal(t, "introspect-proxy: the configuration is valid: forward-auth mode, introspect validation, scope rules: 0\n"+
		"introspect-proxy: warning: -insecure-skip-token-binding: certificate- and DPoP-bound tokens are not checked against the client: only where a proxy in front checks them\n",
		stdout.String())
}

// TestRunCheckConfigJWT runs -check-config for local JWT validation: no
// endpoint, no client credential, the validation mode in the line; and a
// client secret left in the environment is refused, as the library would.
func TestRunCheckConfigJWT(t *testing.T) {
	as := introspecttest.NewServer()
	t.Cleanup(as.Close)
	args := []string{"-check-config", "-upstream", "http://127.0.0.1:3000", "-validate", "jwt", "-issuer", as.Issuer,
		"-jwt-audience", "api", "-userinfo", "-identity-claims", "userinfo.email", "-listen", "127.0.0.1:1"}
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), args, nil, &stdout, &stderr))
	assert.Equal(t, "introspect-proxy: the configuration is valid: reverse-proxy mode, jwt validation, scope rules: 0\n", stdout.String())

	stdout.Reset()
	err := run(context.Background(), args, []string{"INTROSPECT_CLIENT_SECRET=s3cret"}, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "INTROSPECT_CLIENT_SECRET: -validate jwt never introspects")
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Empty(t, stdout.String())
}

// TestRunVersionAndHelp checks -version and -help.
func TestRunVersionAndHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-version"}, nil, &stdout, &stderr))
	assert.True(t, strings.HasPrefix(stdout.String(), "introspect-proxy "))
	err := run(context.Background(), []string{"-help"}, nil, &stdout, &stderr)
	assert.True(t, errors.Is(err, flag.ErrHelp))
	assert.Contains(t, stderr.String(), "-upstream URL")
}

// TestSIGTERMDrains runs the proxy as a process: it serves, and on SIGTERM
// finishes the request in flight, then exits 0.
func TestSIGTERMDrains(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("proxy", "proxy-secret"))
	defer as.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done "+r.Header.Get("X-Auth-Subject"))
	})}
	upURL := serveOnLoopback(t, &up)
	cmd, _, stderr := proxyChild(t, []string{"-upstream", upURL, "-endpoint", as.IntrospectionURL(), "-client-id", "proxy",
		"-listen", "127.0.0.1:0", "-ops-listen", "127.0.0.1:0", "-shutdown-timeout", "20s"}, "INTROSPECT_CLIENT_SECRET=proxy-secret")
	defer func() { _ = cmd.Process.Kill() }()

	// The "listening" line of the JSON log names the addresses.
	lines := bufio.NewScanner(stderr)
	var addr, opsAddr string
	var before strings.Builder
	for addr == "" && lines.Scan() {
		before.WriteString(lines.Text() + "\n")
		var m map[string]any
		if json.Unmarshal(lines.Bytes(), &m) == nil && m["msg"] == "listening" {
			addr, opsAddr = m["addr"].(string), m["ops_addr"].(string)
		}
	}
	require.NotEmpty(t, addr, "no listening line in:\n%s", before.String())
	rest := make(chan string, 1)
	go func() {
		var b strings.Builder
		for lines.Scan() {
			b.WriteString(lines.Text() + "\n")
		}
		rest <- b.String()
	}()

	resp, err := http.Get("http://" + opsAddr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	result := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/slow", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- resp.Status + " " + string(b)
	}()
	<-entered
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(200 * time.Millisecond) // the shutdown begins while the request waits
	close(release)
	assert.Equal(t, "200 OK done alice", <-result)
	require.NoError(t, cmd.Wait(), "the exit status after SIGTERM")
	log := <-rest
	assert.Contains(t, log, `"msg":"shutting down"`)
	assert.Contains(t, log, `"msg":"stopped"`)
	assert.NotContains(t, log, tok)
}

// serveOnLoopback serves srv on a free loopback port until the test ends
// and returns its URL.
func serveOnLoopback(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// unixClient is an HTTP client whose connections go to the unix socket at
// path, whatever the URL's host.
func unixClient(t *testing.T, path string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// -listen and -ops-listen unix:PATH: a socket file left by a proxy that did
// not shut down is replaced, the new one has -socket-mode, its peers are
// trusted proxies (their X-Original-URI picks the scope rule), and it is
// removed at shutdown. A second proxy on the path fails on its lock; a
// socket another program accepts connections on, or a file that is no
// socket, is never removed: listening there fails.
func TestUnixSocket(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("proxy", "proxy-secret"))
	defer as.Close()
	dir := t.TempDir()
	sock, ops := filepath.Join(dir, "auth.sock"), filepath.Join(dir, "ops.sock")

	// A stale socket: its listener closed without removing the file.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	stale.SetUnlinkOnClose(false)
	require.NoError(t, stale.Close())
	_, err = os.Stat(sock)
	require.NoError(t, err, "the stale socket file is there")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-forward-auth", "-endpoint", as.IntrospectionURL(), "-client-id", "proxy",
			"-listen", "unix:" + sock, "-ops-listen", "unix:" + ops, "-socket-mode", "0600",
			"-require-scope", "/admin=admin"}, []string{"INTROSPECT_CLIENT_SECRET=proxy-secret"}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	opsClient, client := unixClient(t, ops), unixClient(t, sock)
	require.Eventually(t, func() bool {
		resp, err := opsClient.Get("http://ops/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "the proxy never served /healthz on %s", ops)

	for _, p := range []string{sock, ops} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.NotZero(t, fi.Mode()&os.ModeSocket, p)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}

	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	auth := func(uri string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, "http://auth/auth", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Original-URI", uri)
		req.Header.Set("X-Original-Method", http.MethodGet)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := auth("/orders")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "alice", resp.Header.Get("X-Auth-Subject"))
	resp = auth("/admin/users")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the peer is trusted: its X-Original-URI picks the rule")
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`)

	// A second proxy on the path: refused by the lock, the socket kept.
	_, err = listen("unix:"+sock, 0o600)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "auth.sock.lock is held by another process")
	assert.Equal(t, http.StatusOK, auth("/orders").StatusCode, "the socket still serves")

	// Another program's socket in use: not removed.
	foreign := filepath.Join(dir, "foreign.sock")
	fln, err := net.Listen("unix", foreign)
	require.NoError(t, err)
	defer fln.Close()
	_, err = listen("unix:"+foreign, 0o600)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a socket in use: not removed")
	c, err := net.Dial("unix", foreign)
	require.NoError(t, err, "the foreign socket still accepts")
	c.Close()

	// Not a socket: left alone.
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("keep"), 0o600))
	_, err = listen("unix:"+plain, 0o600)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a socket: not removed")
	b, err := os.ReadFile(plain)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))

	cancel()
	require.NoError(t, <-done)
	done <- nil // for the cleanup
	for _, p := range []string{sock, ops} {
		_, err := os.Stat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s removed at shutdown", p)
	}
}

// With -trusted-proxies naming addresses only, a peer of the unix socket is
// not trusted, even one that bound its end to the path "127.0.0.1:1",
// which is its RemoteAddr: its X-Original-URI is not believed, and the
// request is refused (400; a trusted peer would get 403 for /admin).
func TestUnixSocketPeerNotAnAddress(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("proxy", "proxy-secret"))
	defer as.Close()
	sock := filepath.Join(t.TempDir(), "auth.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-forward-auth", "-endpoint", as.IntrospectionURL(), "-client-id", "proxy",
			"-listen", "unix:" + sock, "-ops-listen", "off", "-trusted-proxies", "127.0.0.1",
			"-require-scope", "/admin=admin"}, []string{"INTROSPECT_CLIENT_SECRET=proxy-secret"}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	t.Chdir(t.TempDir())
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	status := func(bind string) (int, error) {
		d := &net.Dialer{}
		if bind != "" {
			_ = os.Remove(bind)
			d.LocalAddr = &net.UnixAddr{Name: bind, Net: "unix"}
		}
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "http://auth/auth", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Original-URI", "/admin/users")
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	require.Eventually(t, func() bool { _, err := status(""); return err == nil }, 10*time.Second, 20*time.Millisecond)
	for _, bind := range []string{"", "127.0.0.1:1"} {
		got, err := status(bind)
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, got, "bound to %q: the forwarded URI must not be believed", bind)
	}
}
