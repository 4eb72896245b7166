package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/introspect-go/introspect"
)

// Connection pool to the upstream.
const (
	upstreamMaxIdleConns = 256
	upstreamKeepAlive    = 30 * time.Second
	upstreamTLSHandshake = 10 * time.Second
)

// requirePath refuses, with 400 and before the token is looked at, a
// request whose target is not a path: an opaque target ("GET
// http:http://other/admin"), which has no path for the rules and would
// reach the upstream as the client wrote it, the authority of CONNECT, or
// "*". The origin form and the absolute form with a path pass.
func (s *Server) requirePath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emptyPathIsRoot(r.URL)
		if r.Method == http.MethodConnect || !pathTarget(r.URL) {
			s.mw.WriteError(w, r, nil, invalid("the request target is not a path"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// emptyPathIsRoot gives an absolute-form target without a path
// ("http://api.example") the path "/", which it means (RFC 9112 §3.2.2).
func emptyPathIsRoot(u *url.URL) {
	if u.Opaque == "" && u.Path == "" && u.Host != "" {
		u.Path, u.RawPath = "/", ""
	}
}

// pathTarget reports whether u, a parsed request target, is a path: it has
// no opaque part and its path starts with a slash.
func pathTarget(u *url.URL) bool {
	return u.Opaque == "" && strings.HasPrefix(u.Path, "/")
}

// authorizeAndProxy is the handler behind the middleware in reverse-proxy
// mode: the scope rules, then the upstream.
func (s *Server) authorizeAndProxy(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		if !s.authorize(w, r, ti) {
			return
		}
		onlyWebsocketUpgrades(r.Header)
		if rec := recordOf(r.Context()); rec != nil && r.Body != nil && r.ContentLength != 0 {
			bw := &bodyWatch{ReadCloser: r.Body}
			r.Body, rec.upBody = bw, bw // r is the middleware's copy, not the server's
		}
		next.ServeHTTP(w, r)
	}
}

// onlyWebsocketUpgrades removes a request's Upgrade header unless it asks
// for websocket alone: the request then goes on as plain HTTP/1.1, as to a
// server that does not speak what it asks for. A tunnel of another
// protocol (h2c above all) would carry requests that the proxy never sees,
// past its rules and its identity headers.
func onlyWebsocketUpgrades(h http.Header) {
	if v := h.Values("Upgrade"); len(v) > 0 && (len(v) > 1 || !strings.EqualFold(strings.TrimSpace(v[0]), "websocket")) {
		h.Del("Upgrade")
	}
}

// newReverseProxy returns the reverse proxy to -upstream. It streams
// (responses of unknown length and event streams are flushed as they
// come), passes protocol upgrades (websockets) through, and answers 502
// when the upstream cannot be reached or fails before its response
// headers.
func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	cfg := s.cfg
	var tlsConfig *tls.Config
	if cfg.UpstreamCAs != nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.UpstreamCAs}
	}
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.UpstreamDialTimeout, KeepAlive: upstreamKeepAlive}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          upstreamMaxIdleConns,
		MaxIdleConnsPerHost:   upstreamMaxIdleConns,
		IdleConnTimeout:       cfg.UpstreamIdleConnTimeout,
		TLSHandshakeTimeout:   upstreamTLSHandshake,
		ResponseHeaderTimeout: cfg.UpstreamResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tlsConfig,
		// The client's Accept-Encoding goes to the upstream as it is: without
		// this, a request without one would ask the upstream for gzip, and
		// the proxy would spend its CPU decompressing the answer.
		DisableCompression: true,
	}
	target := cfg.Upstream
	return &httputil.ReverseProxy{
		Rewrite:      s.rewrite(target),
		Transport:    transport,
		BufferPool:   newBufferPool(),
		ErrorHandler: s.upstreamError,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// rewrite prepares the request to the upstream: its URL, Host and
// X-Forwarded headers; the client's identity headers removed and the
// token's written; Authorization and the client certificate as
// configured.
func (s *Server) rewrite(target *url.URL) func(*httputil.ProxyRequest) {
	cfg := s.cfg
	return func(pr *httputil.ProxyRequest) {
		in, out := pr.In, pr.Out
		trusted := s.trusted(in)
		pr.SetURL(target)
		out.URL.Opaque = "" // requirePath let none through; the path is what goes
		if cfg.PassHostHeader {
			out.Host = in.Host
		}
		// The proxy removed the X-Forwarded headers and Forwarded before
		// this: a trusted proxy's are kept and extended, anyone else's
		// dropped.
		if trusted {
			for _, h := range []string{"X-Forwarded-For", "Forwarded"} {
				if v := in.Header.Values(h); len(v) > 0 {
					out.Header[h] = v
				}
			}
		}
		pr.SetXForwarded()
		// The proxy's own forwarding headers are the only spelling of them
		// that goes: "X-Forwarded_For" would be X-Forwarded-For to a CGI.
		for _, h := range spoofable {
			dropSpellings(out.Header, h, false)
		}
		for _, h := range clientAddressHeaders {
			dropSpellings(out.Header, h, !trusted)
		}
		if trusted {
			for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := in.Header.Get(h); v != "" {
					out.Header.Set(h, v)
				}
			}
		}
		s.identity.strip(out.Header)
		if !cfg.ForwardAuthorization {
			out.Header.Del("Authorization")
			out.Header.Del("Dpop")
		}
		if h := cfg.ClientCertHeader; h != "" {
			dropSpellings(out.Header, h, !trusted)
		}
		if h := cfg.UpstreamClientCertHeader; h != "" {
			dropSpellings(out.Header, h, true)
			if cert := clientCertificate(in); cert != nil {
				out.Header.Set(h, base64.StdEncoding.EncodeToString(cert.Raw))
			}
		}
		if ti, ok := introspect.FromContext(in.Context()); ok {
			s.identity.set(out.Header, ti, false)
		}
	}
}

// clientCertificate returns the client's TLS certificate when the upstream
// may take it for the client's: one verified against -tls-client-ca, or the
// one the request's token is bound to (its x5t#S256). Under
// -tls-client-auth request a certificate is neither by itself: anyone can
// make one, with any name in it.
func clientCertificate(in *http.Request) *x509.Certificate {
	if in.TLS == nil || len(in.TLS.PeerCertificates) == 0 {
		return nil
	}
	cert := in.TLS.PeerCertificates[0]
	if len(in.TLS.VerifiedChains) > 0 {
		return cert
	}
	ti, ok := introspect.FromContext(in.Context())
	if !ok || ti.Confirmation == nil || ti.Confirmation.X5TS256 == "" {
		return nil
	}
	sum := sha256.Sum256(cert.Raw)
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ti.Confirmation.X5TS256)) != 1 {
		return nil
	}
	return cert
}

// spoofable are the forwarding headers the proxy writes or passes from a
// trusted proxy only.
var spoofable = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// clientAddressHeaders are the other headers in which proxies tell a
// service who the client is or how it came: services that trust them take
// them from a trusted proxy only, so they pass from one, and from anyone
// else are removed, in every spelling.
var clientAddressHeaders = []string{
	"X-Real-Ip", "X-Client-Ip", "Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"X-Forwarded-By", "X-Original-Forwarded-For",
}

// upstreamError answers a request the upstream did not answer: 502, with
// a fixed body. The error is logged without the request's query.
func (s *Server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	rec := recordOf(r.Context())
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text holds the URL, query included
	}
	if r.Context().Err() != nil {
		rec.setOutcome(outcomeCanceled)
		s.log.Debug("the client went away before the upstream answered", "method", r.Method, "path", r.URL.Path)
	} else {
		rec.setOutcome(outcomeUpstreamError)
		s.log.Warn("the upstream did not answer", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte(`{"error":"bad_gateway","error_description":"the upstream service did not answer"}` + "\n"))
}

// copyBufferSize is the size of the buffers response bodies are copied
// through, httputil.ReverseProxy's own.
const copyBufferSize = 32 << 10

// bufferPool recycles the reverse proxy's copy buffers: without one,
// httputil.ReverseProxy allocates 32 KiB for every response, which made
// most of the proxy's garbage. A buffer only ever holds bytes of one
// response at a time, and the proxy writes only what it read into it. The
// pool holds array pointers, which a slice converts back to without
// allocating.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

// Get returns a buffer of copyBufferSize bytes.
func (p *bufferPool) Get() []byte { return p.pool.Get().(*[copyBufferSize]byte)[:] }

// Put returns a buffer that Get gave.
func (p *bufferPool) Put(b []byte) {
	if cap(b) == copyBufferSize {
		p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}
