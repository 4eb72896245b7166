// Package benchutil holds what the benchmark commands share: loopback
// addresses, waiting for a server to answer, stopping the processes they
// start, reading JSON figures, the machine's load average, and the figures
// the bench server reports on its admin address.
package benchutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ServerStats is what GET /stats on the admin address of the bench server
// (bench/cmd/server) answers.
type ServerStats struct {
	HeapAlloc    uint64 `json:"heap_alloc"`
	HeapInuse    uint64 `json:"heap_inuse"`
	Sys          uint64 `json:"sys"`
	NumGC        uint32 `json:"num_gc"`
	Goroutines   int    `json:"goroutines"`
	PeakHeap     uint64 `json:"peak_heap_alloc"` // highest HeapAlloc seen by the sampler
	PeakRoutines int64  `json:"peak_goroutines"`
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
// It exits through log.Fatal if no port can be had.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ListenLoopback listens on addr, which must be a loopback address.
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, errors.New("refusing to listen on a non-loopback address " + addr)
	}
	return net.Listen("tcp", addr)
}

// WaitUnix waits until something accepts connections on the unix socket
// at path, for at most 15 s.
func WaitUnix(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing accepts connections on %s: %w", path, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitHTTP polls url with GET requests carrying hdr until it answers 2xx
// (any status when anyStatus), for at most 15 s.
func WaitHTTP(ctx context.Context, url string, hdr http.Header, anyStatus bool) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 || anyStatus {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 2xx: %w", url, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// GetJSON decodes the body of a GET of url into v.
func GetJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Stop stops cmd, started in its own process group (Setpgid): SIGTERM to
// the group, SIGKILL to it if cmd has not exited 5 s later. It returns once
// cmd has been waited for.
func Stop(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// LoadAvg returns the 1, 5 and 15 minute load averages of the machine, as
// /proc/loadavg gives them, or "?" where it cannot be read.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
