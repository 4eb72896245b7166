// Command server serves one trivial handler on loopback, bare or behind the
// introspect middleware with an in-memory LRU cache, for load tests; in
// reverse mode it is a bare httputil.ReverseProxy in front of -upstream
// instead (the baseline of introspect-proxy's reverse-proxy mode). The
// floor-* modes measure one hop (floor.go). With -admin it also serves
// GET /stats: heap and goroutine figures, for soaks.
//
//	server -mode bare -addr 127.0.0.1:8081
//	server -mode introspect -addr 127.0.0.1:8082 -as https://127.0.0.1:9443/introspect -ca ca.pem
//	server -mode reverse -addr 127.0.0.1:8083 -upstream http://127.0.0.1:8081
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/bench/internal/benchutil"
)

// hello is the trivial handler every server in the load test runs.
var hello = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
})

func main() {
	mode := flag.String("mode", "bare", "bare, introspect, reverse, or a floor: floor-reverse, floor-reverse-rt, floor-reverse-loop, floor-auth, floor-auth-loop, floor-auth-raw")
	upstream := flag.String("upstream", "", "the service behind a reverse proxy (reverse mode), an http URL")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback)")
	adminAddr := flag.String("admin", "", "admin listen address (GET /stats), empty for none")
	asURL := flag.String("as", "", "introspection endpoint (introspect mode)")
	caFile := flag.String("ca", "", "PEM file of the certificate to trust for an https endpoint")
	clientID := flag.String("client-id", "rs", "client ID at the authorization server")
	secret := flag.String("client-secret", "rs-secret", "client secret at the authorization server")
	cacheSize := flag.Int("cache-size", 100_000, "LRU cache size (introspect mode)")
	timeout := flag.Duration("timeout", introspect.DefaultTimeout, "introspection call timeout")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	http1 := flag.Bool("http1", false, "talk HTTP/1.1 to an https endpoint (default: HTTP/2 when the server offers it)")
	flag.Parse()
	log.SetPrefix("server: ")
	log.SetFlags(0)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}

	var h http.Handler = hello
	var mw *introspect.Middleware
	loop := false
	switch *mode {
	case "bare":
	case "introspect":
		opts := []introspect.Option{
			introspect.WithEndpoint(*asURL),
			introspect.WithClientCredentials(*clientID, *secret),
			introspect.WithTimeout(*timeout),
		}
		if *caFile != "" {
			hc, err := trustingClient(*caFile, *http1)
			if err != nil {
				log.Fatal(err)
			}
			opts = append(opts, introspect.WithHTTPClient(hc))
		}
		cache, err := introspect.NewLRUCache(*cacheSize)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, introspect.WithCache(cache))
		mw, err = introspect.New(opts...)
		if err != nil {
			log.Fatal(err)
		}
		h = mw.Handler(hello)
	case "reverse":
		u, err := url.Parse(*upstream)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			log.Fatalf("reverse mode needs -upstream http://host:port, not %q", *upstream)
		}
		h = reverseProxy(u)
	case "floor-reverse", "floor-reverse-rt", "floor-reverse-loop":
		u, err := url.Parse(*upstream)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			log.Fatalf("%s mode needs -upstream http://host:port, not %q", *mode, *upstream)
		}
		h, loop = floorHandler(*mode, u)
	case "floor-auth", "floor-auth-loop", "floor-auth-raw":
		h, loop = floorHandler(*mode, nil)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}

	ln, err := benchutil.ListenLoopback(*addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	var admin *http.Server
	if *adminAddr != "" {
		aln, err := benchutil.ListenLoopback(*adminAddr)
		if err != nil {
			log.Fatal(err)
		}
		admin = &http.Server{Handler: statsHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = admin.Serve(aln) }()
	}
	log.Printf("%s listening on %s", *mode, ln.Addr())
	if *mode == "floor-auth-raw" {
		go func() { _ = serveRaw(ln) }() // ends when the process does
	} else if loop {
		go func() { _ = serveLoop(ln, h) }() // ends when the process does
	} else {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatal(err)
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if admin != nil {
		_ = admin.Shutdown(sctx)
	}
	if mw != nil {
		_ = mw.Close()
	}
}

// reverseProxy is a bare httputil.ReverseProxy to u, with the connection
// pool of introspect-proxy's (256 idle connections to the upstream) rather
// than the default transport's 2 per host, which would make the baseline
// open and close connections under 64 concurrent clients.
func reverseProxy(u *url.URL) http.Handler {
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

// trustingClient is an HTTP client that trusts the certificate in caFile,
// with the connection pool of the library's default transport (256 idle
// connections per host); with http1 it never negotiates HTTP/2.
func trustingClient(caFile string, http1 bool) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in " + caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 5 * time.Second
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if http1 {
		t.ForceAttemptHTTP2 = false
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: t}, nil
}

// statsHandler samples the heap every 100 ms (for the peak) and serves the
// figures.
func statsHandler() http.Handler {
	var peakHeap atomic.Uint64
	var peakG atomic.Int64
	sample := func() runtime.MemStats {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > peakHeap.Load() {
			peakHeap.Store(ms.HeapAlloc)
		}
		if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
			peakG.Store(g)
		}
		return ms
	}
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			sample()
		}
	}()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Has("gc") {
			runtime.GC()
		}
		ms := sample()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(benchutil.ServerStats{
			HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, Sys: ms.Sys, NumGC: ms.NumGC,
			Goroutines: runtime.NumGoroutine(), PeakHeap: peakHeap.Load(), PeakRoutines: peakG.Load(),
		})
	})
}
