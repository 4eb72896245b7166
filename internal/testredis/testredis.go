// Package testredis starts a redis-server of a test's own: on a free
// loopback port, without persistence, killed when the test ends. Without the
// binary on PATH the test fails under CI=true and is skipped elsewhere
// ([Start]); [CheckMissing] checks that rule in a child test process.
//
// The package is for tests only: it imports testing, and no non-test code of
// the library may import it.
package testredis

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Missing is what a test reports when redis-server is not on PATH.
type Missing struct {
	Reason string // the test fails with it under CI=true
	Skip   string // the test is skipped elsewhere with Skip+Reason
}

// Server is a running redis-server.
type Server struct {
	Addr string // host:port on 127.0.0.1

	cmd  *exec.Cmd
	out  *bytes.Buffer // read only once the process has ended
	once sync.Once
	done chan struct{}
}

// Start starts a redis-server for tb, and waits until it answers PING. The
// server is killed when the test ends. Without the binary the test fails
// with missing.Reason under CI=true and is skipped elsewhere.
func Start(tb testing.TB, missing Missing) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(missing.Reason)
		}
		tb.Skip(missing.Skip + missing.Reason)
	}
	var lastErr error
	for range 5 { // the free port may be taken between Close and redis-server's bind
		s, err := tryStart(tb, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	tb.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func tryStart(tb testing.TB, bin string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), out: new(bytes.Buffer), done: make(chan struct{})}
	s.cmd = exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", tb.TempDir(),
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.Addr)
		if err == nil {
			break
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server exited: %s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, fmt.Errorf("redis-server did not answer: %v: %s", err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Cleanup(s.Kill)
	return s, nil
}

// ping sends PING to addr and expects +PONG within a second.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	b := make([]byte, 5)
	n, err := io.ReadFull(c, b)
	if string(b[:n]) != "+PONG" {
		return fmt.Errorf("PING answered %q: %v", b[:n], err)
	}
	return nil
}

// Kill ends the server at once (SIGKILL) and waits for it. It may be called
// more than once.
func (s *Server) Kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// Stop freezes the server (SIGSTOP): connections stay open, nothing
// answers. It is resumed when the test ends.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.cmd.Process.Signal(syscall.SIGCONT) })
}

// Cont resumes a server frozen by Stop.
func (s *Server) Cont(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		tb.Fatal(err)
	}
}

// CheckMissing checks a test's start of redis-server without the binary:
// it runs the test t again in a child process with an empty PATH, once
// under CI=true, where the child must fail, and once without, where it must
// be skipped, each saying that redis-server is not installed. In the child,
// where the environment variable child is "1", it calls start, which must
// not return. t must be a top-level test.
func CheckMissing(t *testing.T, child string, start func(t *testing.T)) {
	t.Helper()
	if os.Getenv(child) == "1" {
		start(t)
		t.Fatal("start returned without redis-server")
	}
	name := t.Name()
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "--- FAIL"},
		{"", false, "--- SKIP"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "CI=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "PATH="+t.TempDir(), "CI="+tc.ci, child+"=1")
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
