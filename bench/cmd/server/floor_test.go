package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveFloor serves the floor mode in front of upstream (nil for the auth
// floors) on a loopback listener and returns its address.
func serveFloor(t *testing.T, mode string, upstream *url.URL) string {
	t.Helper()
	h, loop := floorHandler(mode, upstream)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mode == "floor-auth-raw" {
		go func() { _ = serveRaw(ln) }()
		t.Cleanup(func() { _ = ln.Close() })
	} else if loop {
		go func() { _ = serveLoop(ln, h) }()
		t.Cleanup(func() { _ = ln.Close() })
	} else {
		srv := &http.Server{Handler: h}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return ln.Addr().String()
}

// exchange sends the raw requests on one connection and reads as many
// answers from it.
func exchange(t *testing.T, addr string, reqs ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, raw := range reqs {
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", len(out)+1, err)
		}
		body := new(strings.Builder)
		if _, err := bufio.NewReader(resp.Body).WriteTo(body); err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		resp.Header.Set("X-Test-Body", body.String())
		out = append(out, resp)
	}
	return out
}

// The reverse floors pass the backend's answer through, several requests
// over one kept-alive connection, the backend's connections reused.
func TestFloorReverse(t *testing.T) {
	var conns, requests atomic.Int64
	backend := httptest.NewUnstartedServer(hello)
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("X-Forwarded-For") == "" {
			t.Error("no X-Forwarded-For at the backend")
		}
		hello(w, r)
	})
	backend.Start()
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	for _, mode := range []string{"floor-reverse", "floor-reverse-rt", "floor-reverse-loop"} {
		t.Run(mode, func(t *testing.T) {
			backend.CloseClientConnections()
			conns.Store(0)
			requests.Store(0)
			addr := serveFloor(t, mode, u)
			get := "GET /api HTTP/1.1\r\nHost: floor.test\r\nAuthorization: Bearer x\r\n\r\n"
			for i, resp := range exchange(t, addr, get, get, get) {
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Test-Body") != "ok\n" {
					t.Errorf("answer %d: %d %q", i+1, resp.StatusCode, resp.Header.Get("X-Test-Body"))
				}
			}
			if n, c := requests.Load(), conns.Load(); n != 3 || c != 1 {
				t.Errorf("backend saw %d requests on %d connections, want 3 on 1", n, c)
			}
		})
	}
}

// The auth floors answer 200 with the identity header to a request with
// an Authorization header and 401 to one without, on one connection.
func TestFloorAuth(t *testing.T) {
	for _, mode := range []string{"floor-auth", "floor-auth-loop"} {
		t.Run(mode, func(t *testing.T) {
			addr := serveFloor(t, mode, nil)
			with := "GET /auth HTTP/1.1\r\nHost: floor.test\r\nAuthorization: Bearer x\r\n\r\n"
			without := "GET /auth HTTP/1.1\r\nHost: floor.test\r\n\r\n"
			got := exchange(t, addr, with, without, with)
			for i, want := range []int{http.StatusOK, http.StatusUnauthorized, http.StatusOK} {
				if got[i].StatusCode != want {
					t.Errorf("answer %d: status %d, want %d", i+1, got[i].StatusCode, want)
				}
				if sub := got[i].Header.Get("X-Auth-Subject"); (want == http.StatusOK) != (sub == "bench") {
					t.Errorf("answer %d: X-Auth-Subject %q", i+1, sub)
				}
			}
		})
	}
}

// The raw floor answers each request on a connection with its canned 200,
// requests sent in one write included, and reads a request that arrives
// in pieces to its end before answering it.
func TestFloorAuthRaw(t *testing.T) {
	addr := serveFloor(t, "floor-auth-raw", nil)
	get := "GET /auth HTTP/1.1\r\nHost: floor.test\r\nAuthorization: Bearer x\r\n\r\n"
	got := exchange(t, addr, get, get+get, "GET /auth HTTP/1.1\r\nHost: fl")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	br := bufio.NewReader(c)
	for i, part := range []string{"GET /auth HTTP/1.1\r\nHost: fl", "oor.test\r\n\r", "\n" + get} {
		if _, err := c.Write([]byte(part)); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
	}
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d to the pieces: %v", i+1, err)
		}
		got = append(got, resp)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := br.Read(make([]byte, 1)); n != 0 {
		t.Error("an answer more than the requests sent")
	}
	if len(got) != 5 {
		t.Fatalf("%d answers", len(got))
	}
	for i, resp := range got {
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-Subject") != "bench" {
			t.Errorf("answer %d: %d, X-Auth-Subject %q", i+1, resp.StatusCode, resp.Header.Get("X-Auth-Subject"))
		}
	}
}
