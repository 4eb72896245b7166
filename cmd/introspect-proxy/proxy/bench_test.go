package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/introspect-go/introspect/introspecttest"
)

// BenchmarkCachedRequest measures a request with a cached token through
// the proxy, next to a bare httputil.ReverseProxy in front of the same
// backend (the load test's httputil-rp: the connection pool of the proxy,
// nothing else):
//
//   - server/...: a client on loopback, keep-alive, through a real
//     http.Server, as the load test sends them (no Accept-Encoding, like
//     wrk); what the proxy adds over bare-rp is its whole cost;
//   - handler/...: the handler alone (ServeHTTP), without the client and
//     the inbound connection; the reverse proxies still call the backend.
//
// The proxies run as the load test runs them (access log off, operations
// endpoints off); +log with the access log on, written as JSON to
// /dev/null (a write per request, as to a stderr that is a file or a
// pipe); +rules with scope rules and identity claims the token lacks.
// cpu-ns/op is the CPU time of the whole test process per request. Run it
// with:
//
//	go test -run '^$' -bench BenchmarkCachedRequest -benchmem ./proxy
func BenchmarkCachedRequest(b *testing.B) {
	as := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	b.Cleanup(as.Close)
	tok := as.Issue(introspecttest.Claims{Subject: "bench", ClientID: "app", Username: "bench@example.com", Scope: "read write"})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
	b.Cleanup(backend.Close)
	up, _ := url.Parse(backend.URL)

	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = devNull.Close() })

	common := []string{"-endpoint", as.IntrospectionURL(), "-client-id", clientID, "-ops-listen", "off", "-log-level", "warn"}
	newProxy := func(b *testing.B, log io.Writer, args ...string) http.Handler {
		b.Helper()
		return newHandler(b, append(append([]string(nil), common...), args...), log)
	}
	handlers := []struct {
		name string
		h    func(b *testing.B) http.Handler
	}{
		{"bare-rp", func(*testing.B) http.Handler { return bareReverseProxy(up) }},
		{"reverse", func(b *testing.B) http.Handler {
			return newProxy(b, io.Discard, "-upstream", backend.URL, "-access-log=false")
		}},
		{"reverse+log", func(b *testing.B) http.Handler {
			return newProxy(b, devNull, "-upstream", backend.URL, "-log-level", "info")
		}},
		{"forward-auth", func(b *testing.B) http.Handler {
			return newProxy(b, io.Discard, "-forward-auth", "-access-log=false")
		}},
		{"forward-auth+log", func(b *testing.B) http.Handler {
			return newProxy(b, devNull, "-forward-auth", "-log-level", "info")
		}},
		{"forward-auth+rules", func(b *testing.B) http.Handler {
			return newProxy(b, io.Discard, "-forward-auth", "-access-log=false", "-identity-claims", "tenant,email",
				"-require-scope", "/api=read", "-require-scope", "POST /api=write", "-require-scope", "/admin=admin")
		}},
	}

	for _, hc := range handlers {
		b.Run("server/"+hc.name, func(b *testing.B) {
			h := hc.h(b)
			base := serveBench(b, h)
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
			b.Cleanup(client.CloseIdleConnections)
			get := func() {
				req, _ := http.NewRequest(http.MethodGet, base+"/api", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			get() // the token is introspected, then cached
			runParallel(b, get)
		})
	}
	for _, hc := range handlers {
		b.Run("handler/"+hc.name, func(b *testing.B) {
			h := hc.h(b)
			// The request as the server would read it; each iteration
			// serves a copy with its own header, as the handlers may
			// change it.
			tmpl := httptest.NewRequest(http.MethodGet, "http://api.example/api", nil)
			tmpl.RemoteAddr = "127.0.0.1:40000"
			tmpl.Header.Set("Authorization", "Bearer "+tok)
			serve := func() {
				r := *tmpl
				r.Header = tmpl.Header.Clone()
				w := &benchWriter{h: make(http.Header, 8)}
				h.ServeHTTP(w, &r)
				if w.status != http.StatusOK && w.status != 0 {
					b.Fatalf("status %d", w.status)
				}
			}
			serve()
			runParallel(b, serve)
		})
	}
}

// runParallel runs op in parallel b.N times, reporting the allocations and,
// where the system says, the CPU time of the process per op (cpu-ns/op:
// user and system, every goroutine, the client's and the backend's
// included), which is the figure a loaded machine shares out.
func runParallel(b *testing.B, op func()) {
	b.ReportAllocs()
	before, ok := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op()
		}
	})
	b.StopTimer()
	if after, _ := processCPU(); ok {
		b.ReportMetric(float64((after-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// bareReverseProxy is the load test's httputil-rp (bench/cmd/server): a
// bare httputil.ReverseProxy with 256 idle connections to the upstream.
func bareReverseProxy(u *url.URL) http.Handler {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: t,
	}
}

// serveBench serves h on a loopback port, as the load test's servers do,
// until the benchmark ends, and returns its base URL.
func serveBench(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// benchWriter is a ResponseWriter that keeps the status and drops the
// body.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
