// Package exampledemo runs the -demo mode of the examples under examples/: a
// list of requests against a running API, each outcome printed on a line
// without its token, then a "N passed, N failed" line. It is not part of the
// library's API.
package exampledemo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Step is one demo request.
type Step struct {
	Name   string
	Method string // default GET
	Path   string
	// Auth is the Authorization header value, if any; [Bearer] makes one.
	Auth string
	Want int // expected status
	// Before, if set, runs first (say, to revoke a token).
	Before func() error
	// Proof, if set, makes the DPoP header for the request's method and
	// URL (RFC 9449).
	Proof func(method, url string) string
}

// Bearer is the Authorization value for token.
func Bearer(token string) string { return "Bearer " + token }

// Run sends each step to base and prints its outcome to out. It returns an
// error if any answer was not the expected one.
func Run(ctx context.Context, base string, steps []Step, out io.Writer) error {
	failed := 0
	for _, s := range steps {
		if s.Before != nil {
			if err := s.Before(); err != nil {
				return err
			}
		}
		method := s.Method
		if method == "" {
			method = http.MethodGet
		}
		var header http.Header
		if s.Proof != nil {
			header = http.Header{"Dpop": {s.Proof(method, base+s.Path)}}
		}
		got, challenge, err := DoWith(ctx, method, base+s.Path, s.Auth, header)
		verdict := "ok  "
		if err != nil || got != s.Want {
			verdict = "FAIL"
			failed++
		}
		line := fmt.Sprintf("%s %-28s %-6s %-19s -> %d", verdict, s.Name, method, s.Path, got)
		if challenge != "" {
			line += "  WWW-Authenticate: " + challenge
		}
		if err != nil {
			line += "  error: " + err.Error()
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(steps)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d demo requests were not answered as expected", failed, len(steps))
	}
	return nil
}

// Do sends one request with the Authorization value auth (none if empty) and
// returns the status and the WWW-Authenticate header.
func Do(ctx context.Context, method, url, auth string) (int, string, error) {
	return DoWith(ctx, method, url, auth, nil)
}

// DoWith is Do with more request headers. The challenges of all
// WWW-Authenticate headers are returned joined by ", ".
func DoWith(ctx context.Context, method, url, auth string, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, "", err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), nil
}

// Secret returns a random client secret for an embedded test server.
func Secret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers, for
// tests that watch a running example's output.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Serve serves h on addr until ctx ends, then shuts down gracefully. Once it
// listens it calls ready with the base URL ("http://host:port"); when ready
// reports done, Serve stops at once and returns ready's error (the -demo
// mode).
func Serve(ctx context.Context, addr string, h http.Handler, ready func(base string) (done bool, err error)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Every read and write bounded: a handler that refuses a request before
	// reading its body (as the middleware does) would otherwise wait for
	// that body, with no deadline, before the answer goes out.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()
	if done, err := ready("http://" + ln.Addr().String()); done || err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-served:
		return err
	}
}
