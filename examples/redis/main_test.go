package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect/internal/exampledemo"

	"github.com/redis/go-redis/v9"
)

// startRedis starts a redis-server of the test's own on a free loopback port,
// without persistence, and stops it when the test ends. Without the binary
// the test fails under CI=true and is skipped elsewhere.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not installed (Debian: apt-get install redis-server); the Redis example cannot be tested"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var out exampledemo.Buffer
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no", "--loglevel", "warning")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { _ = cmd.Process.Kill(); <-exited }
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		up := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if rdb.Ping(context.Background()).Err() == nil {
				up = true
				break
			}
			select {
			case <-exited:
			default:
				continue
			}
			break
		}
		rdb.Close()
		if up {
			t.Cleanup(stop)
			return addr
		}
		stop()
		t.Logf("redis-server on port %d did not start: %s", port, out.String())
	}
	t.Fatal("could not start redis-server")
	return ""
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDemoPasses(t *testing.T) {
	addr := startRedis(t)
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"two-tier", nil, nil},
		{"redis only", []string{"-two-tier=false"}, nil},
		{"encrypted", nil, map[string]string{envEncryptionKey: key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, logs exampledemo.Buffer
			args := append([]string{"-demo", "-addr", "127.0.0.1:0", "-redis-addr", addr}, tc.args...)
			if err := run(ctx, args, env(tc.env), &out, &logs); err != nil {
				t.Fatalf("demo failed: %v\n%s\n%s", err, out.String(), logs.String())
			}
			if !strings.Contains(out.String(), "9 passed, 0 failed") {
				t.Fatalf("unexpected demo output:\n%s", out.String())
			}
			if strings.Contains(out.String()+logs.String(), "Bearer") {
				t.Errorf("the output mentions a bearer token:\n%s\n%s", out.String(), logs.String())
			}
		})
	}
}

func TestDemoNeedsRedis(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	var out, logs exampledemo.Buffer
	err = run(context.Background(), []string{"-demo", "-addr", "127.0.0.1:0", "-redis-addr", closed}, env(nil), &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "needs Redis") {
		t.Errorf("run = %v; want an error naming Redis", err)
	}
}

// TestTwoReplicas follows the README: a first replica with the embedded
// authorization server prints the command of a second one; the second,
// started with it, answers the first one's token from the shared cache.
func TestTwoReplicas(t *testing.T) {
	addr := startRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var outA, logsA exampledemo.Buffer
	doneA := make(chan error, 1)
	go func() {
		doneA <- run(ctx, []string{"-addr", "127.0.0.1:0", "-redis-addr", addr}, env(nil), &outA, &logsA)
	}()
	second := regexp.MustCompile(`(?m)^  (` + envClientSecret + `=\S+) (` + envCacheSecret + `=\S+) go run \. (.*)$`)
	curl := regexp.MustCompile(`curl -H 'Authorization: Bearer (\S+)' (\S+)/api/me`)
	waitFor(t, "the first replica's instructions", func() bool { return second.MatchString(outA.String()) && curl.MatchString(outA.String()) })
	m := second.FindStringSubmatch(outA.String())
	c := curl.FindStringSubmatch(outA.String())
	token, urlA := c[1], c[2]
	envB := map[string]string{}
	for _, kv := range m[1:3] {
		k, v, _ := strings.Cut(kv, "=")
		envB[k] = v
	}
	argsB := strings.Fields(m[3])
	for i, a := range argsB {
		if a == "127.0.0.1:8081" {
			argsB[i] = "127.0.0.1:0"
		}
	}

	var outB, logsB exampledemo.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica A:\n%s\n%s\nreplica B (%q):\n%s\n%s", outA.String(), logsA.String(), argsB, outB.String(), logsB.String())
		}
	})
	doneB := make(chan error, 1)
	go func() { doneB <- run(ctx, argsB, env(envB), &outB, &logsB) }()
	listening := regexp.MustCompile(`msg="protected API listening".* url=(\S+)`)
	waitFor(t, "the second replica", func() bool { return listening.MatchString(logsB.String()) })

	urlB := listening.FindStringSubmatch(logsB.String())[1]

	servedA := getMe(t, urlA, token)
	servedB := getMe(t, urlB, token)
	if servedA == servedB {
		t.Fatalf("both answers came from %s", servedA)
	}
	if !strings.Contains(logsA.String(), "verdict from the authorization server") {
		t.Errorf("replica A did not ask the authorization server:\n%s", logsA.String())
	}
	if strings.Contains(logsB.String(), "verdict from the authorization server") ||
		!strings.Contains(logsB.String(), "verdict from the cache") {
		t.Errorf("replica B did not answer from the shared cache:\n%s", logsB.String())
	}
	cancel()
	for _, done := range []chan error{doneA, doneB} {
		if err := <-done; err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	}
	if strings.Contains(logsA.String()+logsB.String()+outB.String(), token) {
		t.Error("a log line carries the token")
	}
}

func getMe(t *testing.T, url, token string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/api/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/api/me: status %d", url, resp.StatusCode)
	}
	var body struct {
		ServedBy string `json:"served_by"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.ServedBy
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"-endpoint", "http://127.0.0.1:1/introspect"}, nil},
		{[]string{"-endpoint", "http://127.0.0.1:1/introspect", "-client-id", "a"}, map[string]string{envCacheSecret: strings.Repeat("s", 32)}},
		{[]string{"-endpoint", "http://127.0.0.1:1/introspect", "-client-id", "a"}, map[string]string{envClientSecret: "x"}},
		{[]string{"-client-id", "a"}, nil},
		{[]string{"-demo", "-endpoint", "http://127.0.0.1:1/introspect", "-client-id", "a"}, map[string]string{envClientSecret: "x", envCacheSecret: strings.Repeat("s", 32)}},
		{[]string{"extra"}, nil},
		{[]string{"-no-such-flag"}, nil},
		{nil, map[string]string{envCacheSecret: "short"}},
		{nil, map[string]string{envEncryptionKey: "not base64!"}},
		{nil, map[string]string{envEncryptionKey: base64.StdEncoding.EncodeToString([]byte("20 bytes, not 32....."))}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, logs exampledemo.Buffer
			if err := run(ctx, append(tc.args, "-addr", "127.0.0.1:0", "-redis-addr", "127.0.0.1:1"), env(tc.env), &out, &logs); err == nil {
				t.Fatal("run accepted bad flags")
			}
			for _, v := range tc.env {
				if len(v) > 8 && strings.Contains(out.String()+logs.String(), v) {
					t.Error("the output shows a secret from the environment")
				}
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The second replica's command shows only this run's throwaway secrets: a
// cache secret or encryption key from the environment is named, never
// printed.
func TestReplicaEnvHidesSecrets(t *testing.T) {
	const real = "prod-cache-secret-never-printed-0123456789"
	o, err := parseFlags(nil, env(map[string]string{envCacheSecret: real, envEncryptionKey: "AAAAAAAAAAAAAAAAAAAAAA=="}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := replicaEnv(o)
	if strings.Contains(got, real) || strings.Contains(got, "AAAAAAAA") {
		t.Errorf("a secret of the environment is printed: %s", got)
	}
	for _, want := range []string{envCacheSecret + `="$` + envCacheSecret + `"`, envEncryptionKey + `="$` + envEncryptionKey + `"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s does not name %s", got, want)
		}
	}
	o, err = parseFlags(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := replicaEnv(o); !strings.Contains(got, envCacheSecret+"="+string(o.cacheSecret)) {
		t.Errorf("this run's throwaway cache secret is not given: %s", got)
	}
}
