package main

// Floors: what one HTTP hop costs with net/http's server and transport, and
// what it costs when the same messages are framed by net/http's own parser
// and writer (http.ReadRequest, http.ReadResponse, Request.Write,
// Header.Write) in a plain loop on each connection, without the server's
// per-request goroutine and background read and without the transport's
// read and write goroutines. They answer one question for the load test:
// how much of a proxy's cost is the hop itself. serveRaw goes lower still:
// it parses nothing and answers every request with one canned 200.
//
// The loop servers and the round tripper here are measurement floors, not
// servers: no limits on header size, no timeouts, no request bodies, no
// 1xx answers, no upgrades, no retries on a closed connection, no
// graceful shutdown. Nothing outside this load test may use them.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
)

// authHandler is the trivial forward-auth handler of the floors: 200 with
// an identity header for a request carrying an Authorization header, 401
// otherwise.
var authHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Auth-Subject", "bench")
	w.WriteHeader(http.StatusOK)
})

// pooledReverseProxy is a bare httputil.ReverseProxy to u as
// introspect-proxy configures its own: a copy-buffer pool and 256 idle
// connections (or the round tripper rt when not nil).
func pooledReverseProxy(u *url.URL, rt http.RoundTripper) http.Handler {
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		t.DisableCompression = true
		rt = t
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport:  rt,
		BufferPool: &bufferPool{},
	}
}

// bufferPool lends httputil.ReverseProxy its 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// loopTransport is the floor's round tripper: HTTP/1.1 to one plain-http
// upstream over a pool of kept-alive connections, each request written and
// its answer read by the goroutine that asks. A connection goes back to
// the pool when its answer's body has been read to the end, and is closed
// on any error or when the body is closed before its end.
type loopTransport struct {
	addr string
	mu   sync.Mutex
	idle []*upstreamConn
}

type upstreamConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (t *loopTransport) get() (*upstreamConn, error) {
	t.mu.Lock()
	if n := len(t.idle); n > 0 {
		uc := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return uc, nil
	}
	t.mu.Unlock()
	c, err := net.Dial("tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return &upstreamConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

func (t *loopTransport) put(uc *upstreamConn) {
	t.mu.Lock()
	t.idle = append(t.idle, uc)
	t.mu.Unlock()
}

// RoundTrip implements http.RoundTripper for requests without a body.
func (t *loopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		return nil, errors.New("floor transport: request bodies are not supported")
	}
	uc, err := t.get()
	if err != nil {
		return nil, err
	}
	err = req.Write(uc.bw)
	if err == nil {
		err = uc.bw.Flush()
	}
	if err != nil {
		_ = uc.c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(uc.br, req)
	if err != nil {
		_ = uc.c.Close()
		return nil, err
	}
	if resp.Close {
		resp.Body = &upstreamBody{ReadCloser: resp.Body, uc: uc}
		return resp, nil
	}
	resp.Body = &upstreamBody{ReadCloser: resp.Body, uc: uc, t: t}
	return resp, nil
}

// upstreamBody returns its connection to the pool (t not nil) at the end of
// the body, and closes it otherwise.
type upstreamBody struct {
	io.ReadCloser
	uc   *upstreamConn
	t    *loopTransport
	done bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		if b.t != nil {
			b.t.put(b.uc)
		} else {
			_ = b.uc.c.Close()
		}
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if !b.done {
		b.done = true
		_ = b.uc.c.Close()
	}
	return nil
}

// serveLoop serves h on ln with one goroutine per connection reading its
// requests one after the other (http.ReadRequest) and writing each answer
// with a Content-Length. A request with a body ends the connection.
func serveLoop(ln net.Listener, h http.Handler) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveLoopConn(c, h)
	}
}

func serveLoopConn(c net.Conn, h http.Handler) {
	defer func() { _ = c.Close() }()
	remote := c.RemoteAddr().String()
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.ContentLength != 0 {
			return
		}
		req.RemoteAddr = remote
		w := &loopWriter{h: make(http.Header)}
		h.ServeHTTP(w, req)
		if w.status == 0 {
			w.status = http.StatusOK
		}
		_, _ = bw.WriteString("HTTP/1.1 " + strconv.Itoa(w.status) + " " + http.StatusText(w.status) + "\r\n")
		w.h.Del("Content-Length")
		_ = w.h.Write(bw)
		_, _ = bw.WriteString("Content-Length: " + strconv.Itoa(len(w.body)) + "\r\n\r\n")
		_, _ = bw.Write(w.body)
		if err := bw.Flush(); err != nil || req.Close {
			return
		}
	}
}

// loopWriter is the response of serveLoopConn, its body buffered.
type loopWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *loopWriter) Header() http.Header { return w.h }

func (w *loopWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *loopWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// serveRaw is the floor below every forward-auth endpoint: on each
// connection it reads up to the end of each request's header block
// without parsing it (a request with a body would desynchronise it, and
// nginx's auth_request sends none) and writes one canned 200 with an
// identity header. No HTTP server could do less per request.
func serveRaw(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveRawConn(c)
	}
}

var rawAnswer = []byte("HTTP/1.1 200 OK\r\nX-Auth-Subject: bench\r\nContent-Length: 0\r\n\r\n")

func serveRawConn(c net.Conn) {
	defer func() { _ = c.Close() }()
	buf := make([]byte, 16<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			if _, err := c.Write(rawAnswer); err != nil {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
		if n == len(buf) {
			return
		}
	}
}

// floorHandler returns the handler of a floor mode and whether it runs on
// the loop server rather than net/http's.
func floorHandler(mode string, upstream *url.URL) (h http.Handler, loop bool) {
	switch mode {
	case "floor-reverse":
		return pooledReverseProxy(upstream, nil), false
	case "floor-reverse-rt":
		return pooledReverseProxy(upstream, &loopTransport{addr: upstream.Host}), false
	case "floor-reverse-loop":
		return pooledReverseProxy(upstream, &loopTransport{addr: upstream.Host}), true
	case "floor-auth":
		return authHandler, false
	case "floor-auth-loop", "floor-auth-raw":
		return authHandler, true
	}
	log.Fatalf("unknown mode %q", mode)
	return nil, false
}
