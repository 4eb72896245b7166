package interop

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis starts a redis-server of the test's own on a free loopback
// port, without persistence, killed when the test ends, and returns a client
// to it. Without the binary the test fails under CI=true and is skipped
// loudly elsewhere, as without node.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "INTEROP NOT RUN: redis-server is not installed (Debian: apt-get install redis-server; `make deps` does it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var lastErr error
	for range 5 { // the free port may be taken between Close and redis-server's bind
		rdb, err := tryStartRedis(t, bin)
		if err == nil {
			return rdb
		}
		lastErr = err
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func tryStartRedis(t *testing.T, bin string) (*redis.Client, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var out lockedBuffer
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", t.TempDir(),
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	kill := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		select {
		case <-done:
			_ = rdb.Close()
			return nil, fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = rdb.Close()
			kill()
			return nil, fmt.Errorf("redis-server did not answer: %v: %s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = rdb.Close()
		kill()
	})
	return rdb, nil
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

// TestHarnessWithoutRedisServer runs startRedis in a child test process with
// no redis-server on PATH: under CI=true it must fail, elsewhere skip.
func TestHarnessWithoutRedisServer(t *testing.T) {
	if os.Getenv("INTEROP_HARNESS_CHILD") == "1" {
		startRedis(t)
		t.Fatal("startRedis returned without redis-server")
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
			cmd := exec.Command(os.Args[0], "-test.run=^TestHarnessWithoutRedisServer$", "-test.v")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "CI=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "PATH="+t.TempDir(), "CI="+tc.ci, "INTEROP_HARNESS_CHILD=1")
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v, want %v:\n%s", failed, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "redis-server is not installed") {
				t.Errorf("child output lacks %q and the reason:\n%s", tc.want, out)
			}
		})
	}
}
