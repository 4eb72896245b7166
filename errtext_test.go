package introspect_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// peerMarker is text the other side chooses: an authorization server, a
// network peer or a discovery document. It must never reach an error, a log
// line or a hook.
const peerMarker = "pEErTeXt7"

// errTextToken is the token the tests present.
const errTextToken = "errtext-token-0123456789"

// goNetTexts are fragments of the error texts of net, net/http and
// crypto/tls, which repeat what the peer sent (a status line, a header, a
// certificate's names) and so must not be passed on.
var goNetTexts = []string{
	"dial tcp", "read tcp", "write tcp", "lookup ", "x509:", "tls:", "EOF",
	"malformed HTTP status", "malformed HTTP response", "malformed HTTP version",
	"malformed MIME", "net/http:", "http2:", "http: ", "Content-Length",
	"transfer encoding", "chunk length", "connection reset by peer", "%!",
}

// errRecorder collects what a middleware reports about its failures: the
// log lines (slog text handler), and the errors given to the hooks.
type errRecorder struct {
	mu       sync.Mutex
	logs     bytes.Buffer
	done     []error
	rejected []error
	stale    []error
}

func (r *errRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.Write(p)
}

func (r *errRecorder) options() []introspect.Option {
	return []introspect.Option{
		introspect.WithLogger(slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		introspect.WithHooks(&introspect.Hooks{
			IntrospectDone: func(_ context.Context, info introspect.IntrospectDoneInfo) {
				if info.Err != nil {
					r.mu.Lock()
					r.done = append(r.done, info.Err)
					r.mu.Unlock()
				}
			},
			Rejected: func(_ context.Context, _ int, err error) {
				r.mu.Lock()
				r.rejected = append(r.rejected, err)
				r.mu.Unlock()
			},
			StaleServed: func(_ context.Context, err error) {
				r.mu.Lock()
				r.stale = append(r.stale, err)
				r.mu.Unlock()
			},
		}),
	}
}

// check asserts that every error and log line the recorder holds names the
// failure in the package's words (each of words), repeats nothing the peer
// chose, and that every error matches each of is.
func (r *errRecorder) check(t *testing.T, words []string, is []error) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.done, "IntrospectDone saw no error")
	logs := r.logs.String()
	var warn []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=WARN") {
			warn = append(warn, line)
		}
	}
	require.NotEmpty(t, warn, "no WARN line")
	texts := []string{logs}
	for _, err := range append(append(append([]error{}, r.done...), r.rejected...), r.stale...) {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		assert.True(t, strings.HasPrefix(err.Error(), "introspect: "), "error %q", err)
		for _, want := range is {
			assert.ErrorIs(t, err, want)
		}
		assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
		for _, w := range words {
			assert.Contains(t, err.Error(), w, "the error names the class")
		}
	}
	for _, line := range warn {
		for _, w := range words {
			assert.Contains(t, line, w, "the WARN line names the class")
		}
	}
	for _, text := range texts {
		for _, bad := range append([]string{peerMarker, errTextToken}, goNetTexts...) {
			assert.NotContains(t, text, bad, "peer or network text reached an error, a log line or a hook")
		}
	}
}

// serveOnce sends one request with errTextToken through a middleware built
// with opts plus the recorder's, and returns the recorder and the status.
func serveOnce(t *testing.T, opts []introspect.Option) (*errRecorder, int) {
	t.Helper()
	rec := &errRecorder{}
	mw, err := introspect.New(append(opts, rec.options()...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return rec, serve(mw.Handler(okHandler), bearer(errTextToken)).status
}

// rawServer is a TCP server on 127.0.0.1 that reads each HTTP request and
// hands the connection to answer, which writes whatever bytes it likes. It
// returns the address.
func rawServer(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	return startRaw(t, true, answer)
}

// rawGreeter is rawServer without reading the request: answer runs as soon
// as a connection is accepted.
func rawGreeter(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	return startRaw(t, false, answer)
}

func startRaw(t *testing.T, read bool, answer func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if read {
					req, err := http.ReadRequest(bufio.NewReader(c))
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
				}
				answer(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// rawAnswer answers every request with the bytes of s and closes.
func rawAnswer(s string) func(net.Conn) {
	return func(c net.Conn) { _, _ = io.WriteString(c, s) }
}

// rawReset writes s, then resets the connection (TCP RST).
func rawReset(s string) func(net.Conn) {
	return func(c net.Conn) {
		_, _ = io.WriteString(c, s)
		time.Sleep(20 * time.Millisecond) // let the client read s first
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
}

// rawHang never answers: it waits until the connection is closed.
func rawHang(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// endpointOpts are the options of a middleware asking addr over scheme.
func endpointOpts(scheme, addr string) []introspect.Option {
	return []introspect.Option{
		introspect.WithEndpoint(scheme + "://" + addr + "/introspect"),
		introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithTimeout(2 * time.Second),
	}
}

// peerCert is a self-signed server certificate whose names are the peer's
// text: its subject and DNS name carry peerMarker. It is valid for
// 127.0.0.1 only when withIP is set.
func peerCert(t *testing.T, withIP bool) tls.Certificate {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: peerMarker + " CA", Organization: []string{peerMarker}},
		DNSNames:     []string{peerMarker + ".example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if withIP {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsWithCert starts a TLS server presenting cert.
func tlsWithCert(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// dnsNXDomain is a DNS server on 127.0.0.1 (UDP) that answers every query
// "no such name". It returns an HTTP client whose resolver asks only it.
func dnsNXDomain(t *testing.T) *http.Client {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			// Header and question only: QR, RD copied, RA, RCODE 3.
			i := 12
			for i < n && buf[i] != 0 {
				i += int(buf[i]) + 1
			}
			end := i + 5
			if n < 12 || end > n {
				continue
			}
			resp := append([]byte(nil), buf[:end]...)
			resp[2] = 0x80 | buf[2]&0x79
			resp[3] = 0x83
			copy(resp[6:12], []byte{0, 0, 0, 0, 0, 0})
			_, _ = pc.WriteTo(resp, addr)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	server := pc.LocalAddr().String()
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}}
	tr := &http.Transport{DialContext: (&net.Dialer{Resolver: resolver}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Failures of the HTTP exchange reach errors, logs and hooks in the
// package's words only: never the status line, a header, a certificate's
// names or the text of net/http, which repeats them.
func TestErrTextTransport(t *testing.T) {
	okJSON := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	tests := []struct {
		name  string
		opts  func(t *testing.T) []introspect.Option
		words []string
		is    []error
	}{
		{name: "status line with the peer's text", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer("HTTP/1.1 2"+peerMarker+"\r\n\r\n")))
		}, words: []string{"malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "status line without a code", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer(peerMarker+"\r\n\r\n")))
		}, words: []string{"malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "bad HTTP version", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer("HTTP/9."+peerMarker+" 200 OK\r\n\r\n")))
		}, words: []string{"malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "header line without a colon", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer("HTTP/1.1 200 OK\r\n"+peerMarker+"\r\n\r\n")))
		}, words: []string{"malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "bad Content-Length", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer("HTTP/1.1 200 OK\r\nContent-Length: "+peerMarker+"\r\n\r\n")))
		}, words: []string{"malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "unknown transfer encoding", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer("HTTP/1.1 200 OK\r\nTransfer-Encoding: "+peerMarker+"\r\n\r\n")))
		}, words: []string{"malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "headers too large", opts: func(t *testing.T) []introspect.Option {
			hc := &http.Client{Transport: &http.Transport{MaxResponseHeaderBytes: 512}}
			addr := rawServer(t, rawAnswer(okJSON+"X-Big: "+strings.Repeat(peerMarker, 100)+"\r\n\r\n"))
			return append(endpointOpts("http", addr), introspect.WithHTTPClient(hc))
		}, words: []string{"headers too large"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "bad chunk in the body", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer(okJSON+"Transfer-Encoding: chunked\r\n\r\n"+peerMarker+"\r\n")))
		}, words: []string{"reading the answer", "malformed HTTP answer"}, is: []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
		{name: "closed mid-body", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer(okJSON+"Content-Length: 200\r\n\r\n{\"active\":true,\"sub\":\""+peerMarker)))
		}, words: []string{"reading the answer", "closed before the answer was complete"}, is: []error{introspect.ErrUnavailable, introspect.ErrConnectionLost}},
		{name: "closed before answering", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawAnswer("")))
		}, words: []string{"closed before the answer was complete"}, is: []error{introspect.ErrUnavailable, introspect.ErrConnectionLost}},
		{name: "reset before answering", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawReset("")))
		}, words: []string{"connection lost"}, is: []error{introspect.ErrUnavailable, introspect.ErrConnectionLost}},
		{name: "reset mid-body", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", rawServer(t, rawReset(okJSON+"Content-Length: 200\r\n\r\n{\"active\":true,\"sub\":\""+peerMarker)))
		}, words: []string{"connection lost"}, is: []error{introspect.ErrUnavailable, introspect.ErrConnectionLost}},
		{name: "HTTP answer to an https client", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("https", rawGreeter(t, rawAnswer("HTTP/1.1 400 "+peerMarker+"\r\n\r\n")))
		}, words: []string{"TLS handshake failed"}, is: []error{introspect.ErrUnavailable, introspect.ErrTLS}},
		{name: "untrusted certificate", opts: func(t *testing.T) []introspect.Option {
			srv := tlsWithCert(t, peerCert(t, true))
			return endpointOpts("https", srv.Listener.Addr().String())
		}, words: []string{"TLS handshake failed", "certificate"}, is: []error{introspect.ErrUnavailable, introspect.ErrTLS}},
		{name: "certificate for another host", opts: func(t *testing.T) []introspect.Option {
			// Trusted, but named for another host, which x509 repeats.
			cert := peerCert(t, false)
			srv := tlsWithCert(t, cert)
			roots := x509.NewCertPool()
			roots.AddCert(cert.Leaf)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			return append(endpointOpts("https", "localhost:"+port), introspect.WithHTTPClient(hc))
		}, words: []string{"TLS handshake failed", "certificate"}, is: []error{introspect.ErrUnavailable, introspect.ErrTLS}},
		{name: "server requires a client certificate", opts: func(t *testing.T) []introspect.Option {
			cert := peerCert(t, true)
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			roots := x509.NewCertPool()
			roots.AddCert(cert.Leaf)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
			return append(endpointOpts("https", srv.Listener.Addr().String()), introspect.WithHTTPClient(hc))
		}, words: []string{"TLS handshake failed"}, is: []error{introspect.ErrUnavailable, introspect.ErrTLS}},
		{name: "TLS handshake never ends", opts: func(t *testing.T) []introspect.Option {
			hc := &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: 200 * time.Millisecond}}
			return append(endpointOpts("https", rawGreeter(t, rawHang)), introspect.WithHTTPClient(hc))
		}, words: []string{"timed out in the TLS handshake"}, is: []error{introspect.ErrUnavailable, context.DeadlineExceeded}},
		{name: "refused", opts: func(t *testing.T) []introspect.Option {
			return endpointOpts("http", closedPort(t))
		}, words: []string{"connection refused"}, is: []error{introspect.ErrUnavailable, introspect.ErrConnect}},
		{name: "host name not found", opts: func(t *testing.T) []introspect.Option {
			return []introspect.Option{
				introspect.WithEndpoint("https://as.errtext.example/introspect"),
				introspect.WithClientCredentials(rsClientID, rsSecret),
				introspect.WithHTTPClient(dnsNXDomain(t)),
			}
		}, words: []string{"host name not resolved"}, is: []error{introspect.ErrUnavailable, introspect.ErrConnect}},
		{name: "timeout", opts: func(t *testing.T) []introspect.Option {
			return append(endpointOpts("http", rawServer(t, rawHang)), introspect.WithTimeout(300*time.Millisecond))
		}, words: []string{"timed out"}, is: []error{introspect.ErrUnavailable, context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, status := serveOnce(t, tt.opts(t))
			assert.Equal(t, http.StatusServiceUnavailable, status)
			rec.check(t, tt.words, tt.is)
		})
	}
}

// A stale verdict served because the server failed (a 503 whose body is the
// peer's text) is reported to StaleServed and the log in the package's
// words; a garbage status line is no outage, so no stale verdict covers it,
// and its text goes nowhere either.
func TestErrTextStaleServed(t *testing.T) {
	clk := newClock()
	var mode atomic.Int32 // 0 answers, 1 fails with 503, 2 sends garbage
	addr := rawServer(t, func(c net.Conn) {
		switch mode.Load() {
		case 1:
			body := `{"error":"` + peerMarker + `","error_description":"` + peerMarker + `"}`
			_, _ = fmt.Fprintf(c, "HTTP/1.1 503 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", peerMarker, len(body), body)
			return
		case 2:
			_, _ = io.WriteString(c, "HTTP/1.1 2"+peerMarker+"\r\n\r\n")
			return
		}
		body := `{"active":true,"sub":"alice","exp":` + strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10) + `}`
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	})
	for _, tt := range []struct {
		name  string
		mode  int32
		want  int
		stale bool
		words []string
		is    []error
	}{
		{"outage", 1, http.StatusOK, true, []string{"answered 503"}, []error{introspect.ErrUnavailable}},
		{"garbage", 2, http.StatusServiceUnavailable, false, []string{"malformed HTTP answer"}, []error{introspect.ErrUnavailable, introspect.ErrMalformedHTTP}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mode.Store(0)
			rec := &errRecorder{}
			mw, err := introspect.New(append(endpointOpts("http", addr),
				append(rec.options(),
					introspect.WithCache(newLRU(t, 10, introspect.WithLRUClock(clk.Now))), introspect.WithClock(clk.Now),
					introspect.WithMaxTTL(time.Minute), introspect.WithStaleIfError(time.Hour))...)...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = mw.Close() })
			h := mw.Handler(okHandler)
			require.Equal(t, http.StatusOK, serve(h, bearer(errTextToken)).status)

			mode.Store(tt.mode)
			clk.Advance(2 * time.Minute)
			require.Equal(t, tt.want, serve(h, bearer(errTextToken)).status)
			rec.mu.Lock()
			assert.Equal(t, tt.stale, len(rec.stale) > 0, "StaleServed called")
			rec.mu.Unlock()
			rec.check(t, tt.words, tt.is)
		})
	}
}

// Discovery and signed answers: the issuer, URLs and key IDs the server's
// documents hold never reach errors, logs or hooks; a refused endpoint of
// the metadata says why.
func TestErrTextDiscovery(t *testing.T) {
	discoOpts := func(as *introspecttest.Server, extra ...introspect.Option) []introspect.Option {
		return append([]introspect.Option{
			introspect.WithIssuer(as.Issuer),
			introspect.WithClientCredentials(discoClientID, discoSecret),
			introspect.WithTimeout(2 * time.Second),
		}, extra...)
	}
	tests := []struct {
		name  string
		opts  func(t *testing.T) []introspect.Option
		words []string
		is    []error
	}{
		{name: "issuer differs", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["issuer"] = "https://" + peerMarker + ".example/\r\nlevel=ERROR" }))
			return discoOpts(as)
		}, words: []string{"metadata issuer does not match"}, is: []error{introspect.ErrDiscovery}},
		{name: "http introspection endpoint off loopback", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["introspection_endpoint"] = "http://" + peerMarker + ".example/introspect" }))
			return discoOpts(as)
		}, words: []string{"introspection_endpoint", "not https"}, is: []error{introspect.ErrDiscovery}},
		{name: "introspection endpoint with user info", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) {
				m["introspection_endpoint"] = "https://user:" + peerMarker + "@as.example/introspect"
			}))
			return discoOpts(as)
		}, words: []string{"introspection_endpoint", "credentials"}, is: []error{introspect.ErrDiscovery}},
		{name: "relative introspection endpoint", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["introspection_endpoint"] = "/" + peerMarker }))
			return discoOpts(as)
		}, words: []string{"introspection_endpoint", "not an absolute URL"}, is: []error{introspect.ErrDiscovery}},
		{name: "jwks_uri refused", opts: func(t *testing.T) []introspect.Option {
			dead := closedPort(t)
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["jwks_uri"] = "http://" + dead + "/" + peerMarker }))
			return discoOpts(as, introspect.WithJWTResponse())
		}, words: []string{"jwks_uri", "connection refused"}, is: []error{introspect.ErrDiscovery, introspect.ErrConnect}},
		{name: "jwks_uri host not found", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["jwks_uri"] = "https://" + peerMarker + ".example/jwks" }))
			return discoOpts(as, introspect.WithJWTResponse(), introspect.WithHTTPClient(dnsNXDomain(t)))
		}, words: []string{"jwks_uri", "host name not resolved"}, is: []error{introspect.ErrDiscovery, introspect.ErrConnect}},
		{name: "jwks_uri answers 404", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["jwks_uri"] = m["jwks_uri"].(string) + "/" + peerMarker }))
			as.SetJWKSFault(introspecttest.Respond(http.StatusNotFound, "text/plain", peerMarker))
			return discoOpts(as, introspect.WithJWTResponse())
		}, words: []string{"jwks_uri", "404"}, is: []error{introspect.ErrDiscovery}},
		{name: "metadata with a garbage status line", opts: func(t *testing.T) []introspect.Option {
			addr := rawServer(t, rawAnswer("HTTP/1.1 2"+peerMarker+"\r\n\r\n"))
			return []introspect.Option{
				introspect.WithIssuer("http://" + addr),
				introspect.WithClientCredentials(discoClientID, discoSecret),
			}
		}, words: []string{"metadata", "malformed HTTP answer"}, is: []error{introspect.ErrDiscovery, introspect.ErrMalformedHTTP}},
		{name: "signed answer with an unknown kid", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t)
			as.SetSignedAnswerHook(func(a *introspecttest.SignedAnswer) { a.Header["kid"] = peerMarker })
			return discoOpts(as, introspect.WithJWTResponse())
		}, words: []string{"signed answer", "kid"}, is: []error{introspect.ErrMalformedResponse}},
		{name: "signed answer with an unknown alg", opts: func(t *testing.T) []introspect.Option {
			as := discoAS(t)
			as.SetSignedAnswerHook(func(a *introspecttest.SignedAnswer) { a.Header["alg"] = peerMarker })
			return discoOpts(as, introspect.WithJWTResponse())
		}, words: []string{"signed answer", "algorithm"}, is: []error{introspect.ErrMalformedResponse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, status := serveOnce(t, tt.opts(t))
			assert.Equal(t, http.StatusServiceUnavailable, status)
			rec.check(t, tt.words, append([]error{introspect.ErrUnavailable}, tt.is...))
		})
	}
}

// The client's own errors say the same as the middleware's: a refused
// discovered endpoint keeps its reason (it used to print %!w(<nil>)).
func TestErrTextRejectedEndpoint(t *testing.T) {
	for _, tt := range []struct{ endpoint, reason string }{
		{"http://" + peerMarker + ".example/introspect", "not https"},
		{"https://" + peerMarker + ":x@as.example/introspect", "credentials"},
		{"https://as.example/introspect#" + peerMarker, "fragment"},
		{"ftp://" + peerMarker + ".example/introspect", "https"},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) { m["introspection_endpoint"] = tt.endpoint }))
			_, err := discoClient(t, as, introspect.WithEagerDiscovery())
			require.ErrorIs(t, err, introspect.ErrDiscovery)
			assert.Contains(t, err.Error(), "introspection_endpoint")
			assert.Contains(t, err.Error(), tt.reason)
			assert.NotContains(t, err.Error(), "%!")
			assert.NotContains(t, err.Error(), peerMarker)
		})
	}
}

// errors.Is keeps working through the library's wording.
func TestErrTextSentinels(t *testing.T) {
	t.Run("caller cancels", func(t *testing.T) {
		addr := rawServer(t, rawHang)
		c, err := introspect.NewClient(endpointOpts("http", addr)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err = c.Introspect(ctx, errTextToken)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, introspect.ErrUnavailable)
		assert.NotContains(t, err.Error(), "127.0.0.1")
	})
	t.Run("response error", func(t *testing.T) {
		addr := rawServer(t, rawAnswer("HTTP/1.1 503 "+peerMarker+"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"))
		c, err := introspect.NewClient(endpointOpts("http", addr)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = c.Introspect(context.Background(), errTextToken)
		var re *introspect.ResponseError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 503, re.StatusCode)
		assert.NotContains(t, err.Error(), peerMarker)
	})
	t.Run("too large", func(t *testing.T) {
		body := strings.Repeat(peerMarker, 100)
		addr := rawServer(t, rawAnswer("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body))
		c, err := introspect.NewClient(append(endpointOpts("http", addr), introspect.WithMaxResponseSize(64))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = c.Introspect(context.Background(), errTextToken)
		require.ErrorIs(t, err, introspect.ErrResponseTooLarge)
		assert.NotContains(t, err.Error(), peerMarker)
	})
	t.Run("classes", func(t *testing.T) {
		for _, class := range []error{introspect.ErrConnect, introspect.ErrTLS, introspect.ErrConnectionLost, introspect.ErrMalformedHTTP} {
			assert.ErrorIs(t, class, introspect.ErrUnavailable)
			assert.NotErrorIs(t, class, introspect.ErrMalformedResponse)
			assert.NotErrorIs(t, class, introspect.ErrResponseTooLarge)
			assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(class))
			assert.True(t, strings.HasPrefix(class.Error(), "introspect: authorization server unavailable: "), class.Error())
		}
	})
}

// peerError is an error whose text another server chose, as
// golang.org/x/oauth2's token source error holds its token endpoint's
// answer.
type peerError struct{}

func (peerError) Error() string {
	return "oauth2: cannot fetch token: 400 Bad Request\nResponse: {\"error\":\"" + peerMarker + "\"}\nlevel=ERROR msg=forged"
}

// A credentials callback's error is kept for errors.Is and errors.As, but
// its text, which another server may have chosen, reaches no error text,
// log line or hook.
func TestErrTextCredentialCallbacks(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
	t.Cleanup(as.Close)
	fail := func(context.Context) (string, error) { return "", fmt.Errorf("refreshing: %w", peerError{}) }
	for _, tc := range []struct {
		name  string
		creds introspect.Option
		words string
	}{
		{"secret function", introspect.WithClientCredentialsFunc(rsClientID, fail), "client secret unavailable"},
		{"access token function", introspect.WithBearerCredentials(rsClientID, fail), "access token unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, status := serveOnce(t, []introspect.Option{introspect.WithEndpoint(as.IntrospectionURL()), tc.creds})
			assert.Equal(t, http.StatusServiceUnavailable, status)
			rec.check(t, []string{tc.words}, []error{introspect.ErrClientConfig, peerError{}})
			rec.mu.Lock()
			defer rec.mu.Unlock()
			var pe peerError
			assert.ErrorAs(t, rec.done[0], &pe, "the callback's error is kept")
		})
	}
}
