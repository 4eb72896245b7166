package introspect_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// certHeaderName is the header the test proxies write.
const certHeaderName = "X-Client-Cert"

// boundCert is a client certificate and its RFC 8705 thumbprint.
type boundCert struct {
	tls   tls.Certificate
	der   []byte
	thumb string
}

// newBoundCert returns a fresh self-signed client certificate; pad adds an
// extension of that many bytes, to make a large certificate.
func newBoundCert(t testing.TB, cn string, pad int) boundCert {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if pad > 0 {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: bytes.Repeat([]byte{0x05, 0x00}, pad/2)}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	sum := sha256.Sum256(der)
	return boundCert{tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, der: der,
		thumb: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// The encodings proxies give a DER certificate.

// percentEncode escapes every byte but the unreserved characters, as nginx
// does for $ssl_client_escaped_cert and Envoy for Cert=.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func pemOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func encEscapedPEM(der []byte) string { return percentEncode(pemOf(der)) }

// encQueryPEM is the PEM encoded for a query string (space as '+').
func encQueryPEM(der []byte) string { return url.QueryEscape(pemOf(der)) }

func encHashHex(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// encXFCC is the element Envoy writes with SANITIZE_SET and the cert,
// subject and uri details.
func encXFCC(der []byte) string {
	return `By=spiffe://example.org/proxy;Hash=` + encHashHex(der) + `;Cert="` + encEscapedPEM(der) +
		`";Subject="CN=client\,one\;\"quoted\",O=Example";URI=spiffe://example.org/client`
}

func encXFCCHash(der []byte) string { return "Hash=" + encHashHex(der) }

func encXFCCCert(der []byte) string { return `Cert="` + encEscapedPEM(der) + `"` }

func encBase64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

func encBase64URL(der []byte) string { return base64.RawURLEncoding.EncodeToString(der) }

// encTraefikEscaped is the form of Traefik versions that query-escaped the
// PEM body.
func encTraefikEscaped(der []byte) string { return url.QueryEscape(encBase64(der)) }

// certProxy is a TLS-terminating reverse proxy in front of target that asks
// for a client certificate, removes any header certHeaderName the client
// sent and sets it from the client certificate with encode.
func certProxy(t *testing.T, target string, encode func(der []byte) string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Del(certHeaderName)
			if pr.In.TLS != nil && len(pr.In.TLS.PeerCertificates) > 0 {
				pr.Out.Header.Set(certHeaderName, encode(pr.In.TLS.PeerCertificates[0].Raw))
			}
		},
		Transport: tr,
	}
	return selfSignedTLS(t, rp)
}

// tlsClient returns a client of srv presenting cert, or none when cert is
// nil.
func tlsClient(t *testing.T, srv *httptest.Server, cert *boundCert) *http.Client {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert.tls}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// plainClient returns a client without TLS settings of its own.
func plainClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// callCert sends tok to url with the given values of certHeaderName and
// returns the status.
func callCert(t *testing.T, c *http.Client, url, tok string, values ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	for _, v := range values {
		req.Header.Add(certHeaderName, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// certTokens issues a token bound to each certificate, and one unbound.
func certTokens(as *introspecttest.Server, certs ...boundCert) (bound []string, unbound string) {
	for _, c := range certs {
		bound = append(bound, as.Issue(introspecttest.Claims{Subject: "mtls",
			Confirmation: map[string]string{"x5t#S256": c.thumb}}))
	}
	return bound, as.Issue(introspecttest.Claims{Subject: "plain"})
}

// A certificate-bound token passes through a TLS-terminating proxy that puts
// the client certificate in a header, in each format, with the certificate
// it is bound to, and only with it: another certificate or none is refused
// (401), while an unbound token needs none.
func TestClientCertificateHeaderThroughProxy(t *testing.T) {
	as := newAS(t)
	alice, mallory := newBoundCert(t, "alice", 0), newBoundCert(t, "mallory", 0)
	bound, unbound := certTokens(as, alice)
	tests := []struct {
		name   string
		format introspect.CertHeaderFormat
		encode func([]byte) string
	}{
		{"nginx escaped PEM", introspect.CertHeaderEscapedPEM, encEscapedPEM},
		{"query-escaped PEM", introspect.CertHeaderEscapedPEM, encQueryPEM},
		{"Envoy XFCC", introspect.CertHeaderXFCC, encXFCC},
		{"XFCC Hash only", introspect.CertHeaderXFCC, encXFCCHash},
		{"XFCC Cert only", introspect.CertHeaderXFCC, encXFCCCert},
		{"base64 DER", introspect.CertHeaderBase64DER, encBase64},
		{"base64url DER", introspect.CertHeaderBase64DER, encBase64URL},
		{"percent-encoded base64 DER", introspect.CertHeaderBase64DER, encTraefikEscaped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw := newMW(t, as, introspect.WithClientCertificateHeader(certHeaderName, tt.format, "127.0.0.0/8"))
			api := httptest.NewServer(mw.Handler(okHandler))
			t.Cleanup(api.Close)
			proxy := certProxy(t, api.URL, tt.encode)
			asAlice, asMallory, noCert := tlsClient(t, proxy, &alice), tlsClient(t, proxy, &mallory), tlsClient(t, proxy, nil)

			assert.Equal(t, http.StatusOK, callCert(t, asAlice, proxy.URL, bound[0]), "the certificate the token is bound to")
			assert.Equal(t, http.StatusUnauthorized, callCert(t, asMallory, proxy.URL, bound[0]), "another certificate")
			assert.Equal(t, http.StatusUnauthorized, callCert(t, noCert, proxy.URL, bound[0]), "no certificate")
			assert.Equal(t, http.StatusOK, callCert(t, noCert, proxy.URL, unbound), "an unbound token needs none")
		})
	}
}

// The header counts only from a trusted proxy: from any other address it is
// ignored, and the request's own TLS certificate, if any, counts instead.
// From a trusted proxy the header alone counts: without it there is no
// certificate, even over a TLS connection that presents one.
func TestClientCertificateHeaderTrustedPeers(t *testing.T) {
	as := newAS(t)
	alice, mallory := newBoundCert(t, "alice", 0), newBoundCert(t, "mallory", 0)
	bound, _ := certTokens(as, alice)
	opt := func(proxies ...string) introspect.Option {
		return introspect.WithClientCertificateHeader(certHeaderName, introspect.CertHeaderBase64DER, proxies...)
	}
	// Requests come from 127.0.0.1; 192.0.2.0/24 is a documentation range.
	elsewhere := newMW(t, as, opt("192.0.2.0/24", "2001:db8::/32"))
	local := newMW(t, as, opt("192.0.2.0/24", "127.0.0.1"))

	t.Run("through a proxy outside the trusted prefixes", func(t *testing.T) {
		api := httptest.NewServer(elsewhere.Handler(okHandler))
		t.Cleanup(api.Close)
		proxy := certProxy(t, api.URL, encBase64)
		assert.Equal(t, http.StatusUnauthorized, callCert(t, tlsClient(t, proxy, &alice), proxy.URL, bound[0]))
	})

	plainElsewhere := httptest.NewServer(elsewhere.Handler(okHandler))
	t.Cleanup(plainElsewhere.Close)
	plainLocal := httptest.NewServer(local.Handler(okHandler))
	t.Cleanup(plainLocal.Close)
	tlsElsewhere := selfSignedTLS(t, elsewhere.Handler(okHandler))
	tlsLocal := selfSignedTLS(t, local.Handler(okHandler))
	direct := plainClient(t)
	tests := []struct {
		name   string
		client *http.Client
		url    string
		header []string
		want   int
	}{
		{"direct, untrusted: the header is ignored", direct, plainElsewhere.URL, []string{encBase64(alice.der)}, http.StatusUnauthorized},
		{"direct, trusted: the header is read", direct, plainLocal.URL, []string{encBase64(alice.der)}, http.StatusOK},
		{"untrusted: the connection's certificate counts, not the header",
			tlsClient(t, tlsElsewhere, &alice), tlsElsewhere.URL, []string{encBase64(mallory.der)}, http.StatusOK},
		{"untrusted: the header cannot replace the connection's certificate",
			tlsClient(t, tlsElsewhere, &mallory), tlsElsewhere.URL, []string{encBase64(alice.der)}, http.StatusUnauthorized},
		{"trusted without the header: no fall back to the connection's certificate",
			tlsClient(t, tlsLocal, &alice), tlsLocal.URL, nil, http.StatusUnauthorized},
		{"trusted: the header counts, not the connection's certificate",
			tlsClient(t, tlsLocal, &alice), tlsLocal.URL, []string{encBase64(mallory.der)}, http.StatusUnauthorized},
		{"trusted: the header over a TLS connection",
			tlsClient(t, tlsLocal, &mallory), tlsLocal.URL, []string{encBase64(alice.der)}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, callCert(t, tt.client, tt.url, bound[0], tt.header...))
		})
	}
}

// Whether a peer address is trusted: IPv4-mapped IPv6 addresses match their
// IPv4 prefix; an address without a port, with an IPv6 zone, or that does
// not parse is not trusted.
func TestClientCertificateHeaderPeerAddress(t *testing.T) {
	as := newAS(t)
	alice := newBoundCert(t, "alice", 0)
	bound, _ := certTokens(as, alice)
	mw := newMW(t, as, introspect.WithClientCertificateHeader(certHeaderName, introspect.CertHeaderBase64DER,
		"10.0.0.0/8", "fe80::/10", "2001:db8::1"))
	tests := []struct {
		remote string
		want   bool
	}{
		{"10.1.2.3:4567", true},
		{"[::ffff:10.1.2.3]:4567", true},
		{"[2001:db8::1]:443", true},
		{"[2001:db8::2]:443", false},
		{"11.0.0.1:4567", false},
		{"10.1.2.3", false},
		{"[fe80::1%eth0]:4567", false},
		{"", false},
		{"@", false},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			r := bearer(bound[0])
			r.RemoteAddr = tt.remote
			r.Header.Set(certHeaderName, encBase64(alice.der))
			_, err := mw.Authenticate(r)
			if tt.want {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, introspect.ErrTokenBinding)
			}
		})
	}
}

// "unix" trusts the peers of a unix-socket listener, and only them: over a
// unix socket the header is read when "unix" is trusted and ignored when
// only addresses are, even from a peer that bound its end to the path
// "127.0.0.1:1" (its RemoteAddr); over TCP, "unix" trusts nobody. A
// request handed to the middleware with a non-address RemoteAddr but no
// unix listener in its context is not trusted either.
func TestClientCertificateHeaderUnixSocket(t *testing.T) {
	as := newAS(t)
	alice := newBoundCert(t, "alice", 0)
	bound, _ := certTokens(as, alice)
	opt := func(proxies ...string) introspect.Option {
		return introspect.WithClientCertificateHeader(certHeaderName, introspect.CertHeaderBase64DER, proxies...)
	}
	// The client's end of a connection is bound to a relative path that
	// reads as an address of the trusted prefixes.
	t.Chdir(t.TempDir())
	// serveUnix serves mw on a unix socket and returns a client that dials
	// it from an end bound to the path bind ("" for none).
	serveUnix := func(mw *introspect.Middleware, bind string) *http.Client {
		path := filepath.Join(t.TempDir(), "api.sock")
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		srv := &http.Server{Handler: mw.Handler(okHandler), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := &net.Dialer{}
			if bind != "" {
				_ = os.Remove(bind) // the file of the previous connection's end
				d.LocalAddr = &net.UnixAddr{Name: bind, Net: "unix"}
			}
			return d.DialContext(ctx, "unix", path)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	trustsUnix := newMW(t, as, opt("unix", "192.0.2.0/24"))
	addressesOnly := newMW(t, as, opt("127.0.0.0/8", "::1"))

	t.Run("unix trusted: the header is read", func(t *testing.T) {
		c := serveUnix(trustsUnix, "")
		assert.Equal(t, http.StatusOK, callCert(t, c, "http://api/", bound[0], encBase64(alice.der)))
		assert.Equal(t, http.StatusUnauthorized, callCert(t, c, "http://api/", bound[0]))
	})
	t.Run("only addresses trusted: the header over a unix socket is ignored", func(t *testing.T) {
		for _, bind := range []string{"", "127.0.0.1:1"} {
			c := serveUnix(addressesOnly, bind)
			assert.Equal(t, http.StatusUnauthorized, callCert(t, c, "http://api/", bound[0], encBase64(alice.der)), "bound to %q", bind)
		}
	})
	t.Run("unix trusted, over TCP: the header is ignored", func(t *testing.T) {
		api := httptest.NewServer(newMW(t, as, opt("unix")).Handler(okHandler))
		t.Cleanup(api.Close)
		assert.Equal(t, http.StatusUnauthorized, callCert(t, plainClient(t), api.URL, bound[0], encBase64(alice.der)))
	})
	t.Run("unix trusted, no listener in the context", func(t *testing.T) {
		for _, remote := range []string{"@", "", "/run/api.sock"} {
			r := bearer(bound[0])
			r.RemoteAddr = remote
			r.Header.Set(certHeaderName, encBase64(alice.der))
			_, err := trustsUnix.Authenticate(r)
			assert.ErrorIs(t, err, introspect.ErrTokenBinding, remote)
		}
	})
}

// Sent straight from a trusted address, a header given twice, a list, a
// value over 16 KiB, a malformed value, something that is not a
// certificate, or an XFCC value of several elements or whose Hash and Cert
// disagree gives no certificate: the bound token is refused (401). The
// header's value is never logged.
func TestClientCertificateHeaderMalformed(t *testing.T) {
	as := newAS(t)
	const marker = "pEErTeXt7"
	alice, mallory := newBoundCert(t, "alice", 0), newBoundCert(t, "mallory", 0)
	// In base64, the huge certificate is over the limit, the large one
	// under it.
	huge, large := newBoundCert(t, "huge", 12_400), newBoundCert(t, "large", 10_800)
	require.Greater(t, len(encBase64(huge.der)), 16<<10)
	require.Less(t, len(encBase64(large.der)), 16<<10)
	bound, _ := certTokens(as, alice, huge, large)
	// Tokens bound to the thumbprints of DER that is not a certificate: only
	// the check that it is one refuses them.
	junk := []byte(marker)
	truncated := alice.der[:len(alice.der)-1]
	trailing := append(append([]byte(nil), alice.der...), 0)
	bindTo := func(der []byte) string {
		sum := sha256.Sum256(der)
		return as.Issue(introspecttest.Claims{Subject: "mtls",
			Confirmation: map[string]string{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}})
	}
	tA, tHuge, tLarge, tJunk, tTrunc, tTrail := bound[0], bound[1], bound[2], bindTo(junk), bindTo(truncated), bindTo(trailing)
	// A token bound to the base64url of a hash one byte short.
	aHash := encHashHex(alice.der)
	short, err := hex.DecodeString(aHash[:62])
	require.NoError(t, err)
	tShort := as.Issue(introspecttest.Claims{Subject: "mtls",
		Confirmation: map[string]string{"x5t#S256": base64.RawURLEncoding.EncodeToString(short)}})

	logger, logs := debugLogger()
	mux := http.NewServeMux()
	for path, f := range map[string]introspect.CertHeaderFormat{
		"/pem": introspect.CertHeaderEscapedPEM, "/xfcc": introspect.CertHeaderXFCC, "/b64": introspect.CertHeaderBase64DER,
	} {
		mw := newMW(t, as, introspect.WithLogger(logger), introspect.WithClientCertificateHeader(certHeaderName, f, "127.0.0.1/32"))
		mux.Handle(path, mw.Handler(okHandler))
	}
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	direct := plainClient(t)

	aPEM, mPEM := pemOf(alice.der), pemOf(mallory.der)
	mHash := encHashHex(mallory.der)
	aCert, mCert := encXFCCCert(alice.der), encXFCCCert(mallory.der)
	tests := []struct {
		name   string
		path   string
		values []string
		tok    string
		want   int
	}{
		// Controls: each format sent straight from the trusted address.
		{"PEM", "/pem", []string{encEscapedPEM(alice.der)}, tA, 200},
		{"XFCC", "/xfcc", []string{encXFCC(alice.der)}, tA, 200},
		{"XFCC upper-case hex", "/xfcc", []string{"Hash=" + strings.ToUpper(aHash)}, tA, 200},
		{"XFCC Hash and Cert agree", "/xfcc", []string{"Hash=" + aHash + ";" + aCert}, tA, 200},
		{"XFCC quoted Hash", "/xfcc", []string{`Hash="` + aHash + `"`}, tA, 200},
		{"base64", "/b64", []string{encBase64(alice.der)}, tA, 200},
		{"base64 under 16 KiB", "/b64", []string{encBase64(large.der)}, tLarge, 200},

		{"PEM twice", "/pem", []string{encEscapedPEM(alice.der), encEscapedPEM(alice.der)}, tA, 401},
		{"XFCC twice", "/xfcc", []string{encXFCCHash(alice.der), encXFCCHash(alice.der)}, tA, 401},
		{"base64 twice", "/b64", []string{encBase64(alice.der), encBase64(alice.der)}, tA, 401},
		{"base64 list", "/b64", []string{encBase64(alice.der) + "," + encBase64(alice.der)}, tA, 401},
		{"PEM list", "/pem", []string{encEscapedPEM(alice.der) + "," + encEscapedPEM(alice.der)}, tA, 401},
		{"base64 over 16 KiB", "/b64", []string{encBase64(huge.der)}, tHuge, 401},
		{"PEM over 16 KiB", "/pem", []string{encEscapedPEM(huge.der)}, tHuge, 401},
		{"XFCC over 16 KiB", "/xfcc", []string{encXFCC(huge.der)}, tHuge, 401},

		{"PEM garbage", "/pem", []string{marker}, tA, 401},
		{"PEM bad escape", "/pem", []string{encEscapedPEM(alice.der) + "%zz"}, tA, 401},
		{"PEM text before", "/pem", []string{percentEncode(marker + "\n" + aPEM)}, tA, 401},
		{"PEM text after", "/pem", []string{percentEncode(aPEM + marker)}, tA, 401},
		{"PEM two certificates", "/pem", []string{percentEncode(aPEM + mPEM)}, tA, 401},
		{"PEM not a certificate", "/pem", []string{percentEncode(strings.ReplaceAll(aPEM, "CERTIFICATE", "PUBLIC KEY"))}, tA, 401},
		{"PEM truncated", "/pem", []string{percentEncode(aPEM[:len(aPEM)/2])}, tA, 401},
		{"base64 garbage", "/b64", []string{marker + "!"}, tA, 401},
		{"base64 not a certificate", "/b64", []string{encBase64(junk)}, tJunk, 401},
		{"base64 truncated certificate", "/b64", []string{encBase64(truncated)}, tTrunc, 401},
		{"base64 trailing data", "/b64", []string{encBase64(trailing)}, tTrail, 401},
		{"base64 PEM", "/b64", []string{encEscapedPEM(alice.der)}, tA, 401},

		{"XFCC Hash and Cert disagree", "/xfcc", []string{"Hash=" + aHash + ";" + mCert}, tA, 401},
		{"XFCC Cert and Hash disagree", "/xfcc", []string{"Hash=" + mHash + ";" + aCert}, tA, 401},
		{"XFCC client element first", "/xfcc", []string{"Hash=" + aHash + ",Hash=" + mHash}, tA, 401},
		{"XFCC client element last", "/xfcc", []string{"Hash=" + mHash + ",Hash=" + aHash}, tA, 401},
		{"XFCC element formed by a URI", "/xfcc", []string{"Hash=" + mHash + ";URI=x:y,Hash=" + aHash}, tA, 401},
		{"XFCC Hash twice", "/xfcc", []string{"Hash=" + aHash + ";Hash=" + aHash}, tA, 401},
		{"XFCC Hash twice, other case", "/xfcc", []string{"Hash=" + mHash + ";URI=x:y;hash=" + aHash}, tA, 401},
		{"XFCC Cert twice", "/xfcc", []string{aCert + ";" + aCert}, tA, 401},
		{"XFCC short Hash", "/xfcc", []string{"Hash=" + aHash[:62]}, tShort, 401},
		{"XFCC Hash not hex", "/xfcc", []string{"Hash=" + marker + aHash[9:]}, tA, 401},
		{"XFCC neither Hash nor Cert", "/xfcc", []string{"By=spiffe://x;Subject=\"CN=" + marker + "\""}, tA, 401},
		{"XFCC unterminated quote", "/xfcc", []string{"Hash=" + aHash + `;Subject="CN=` + marker}, tA, 401},
		{"XFCC text after a quote", "/xfcc", []string{`Subject="CN=a"` + marker + ";Hash=" + aHash}, tA, 401},
		{"XFCC quote inside a value", "/xfcc", []string{`URI=a"b";Hash=` + aHash}, tA, 401},
		{"XFCC trailing semicolon", "/xfcc", []string{"Hash=" + aHash + ";"}, tA, 401},
		{"XFCC no key", "/xfcc", []string{"=" + marker + ";Hash=" + aHash}, tA, 401},
		{"XFCC Cert not a certificate", "/xfcc", []string{encXFCCCert(junk)}, tJunk, 401},
		{"PEM not a certificate, right type", "/pem", []string{encEscapedPEM(junk)}, tJunk, 401},
		{"PEM trailing data", "/pem", []string{encEscapedPEM(trailing)}, tTrail, 401},
		{"XFCC empty Cert", "/xfcc", []string{"Hash=" + aHash + `;Cert=""`}, tA, 401},
		{"empty", "/b64", []string{""}, tA, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, callCert(t, direct, api.URL+tt.path, tt.tok, tt.values...))
		})
	}
	require.Contains(t, logs.String(), "token binding", "the refusals are logged")
	assert.NotContains(t, logs.String(), marker, "a header's value reached the log")
}

// New refuses a header that would be believed from everyone or cannot be
// read: no trusted proxy, a bad or catch-all prefix, a bad header name, an
// unknown format. NewClient refuses the option, which is the middleware's.
func TestClientCertificateHeaderOptions(t *testing.T) {
	as := newAS(t)
	base := []introspect.Option{introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials(rsClientID, rsSecret)}
	const name = "introspect: WithClientCertificateHeader: "
	b64 := introspect.CertHeaderBase64DER
	tests := []struct {
		name    string
		header  string
		format  introspect.CertHeaderFormat
		proxies []string
		want    string // "" when New accepts
	}{
		{"prefix", certHeaderName, b64, []string{"10.0.0.0/8"}, ""},
		{"addresses and prefixes", "x-forwarded-client-cert", introspect.CertHeaderXFCC, []string{"10.1.2.3", "fd00::/8", "::1"}, ""},
		{"escaped PEM", "X-SSL-Client-Cert", introspect.CertHeaderEscapedPEM, []string{"192.168.0.0/16"}, ""},
		{"no trusted proxy", certHeaderName, b64, nil, name + "no trusted proxies: the header would be believed from every client"},
		{"empty trusted proxy", certHeaderName, b64, []string{""}, name + `trusted proxy "" is not an IP prefix (CIDR), an IP address or unix`},
		{"not an address", certHeaderName, b64, []string{"proxy.internal"}, name + `trusted proxy "proxy.internal" is not an IP prefix (CIDR), an IP address or unix`},
		{"bad length", certHeaderName, b64, []string{"10.0.0.0/33"}, name + `trusted proxy "10.0.0.0/33" is not an IP prefix (CIDR), an IP address or unix`},
		{"zone", certHeaderName, b64, []string{"fe80::1%eth0"}, name + `trusted proxy "fe80::1%eth0" is not an IP prefix (CIDR), an IP address or unix`},
		{"host bits", certHeaderName, b64, []string{"10.1.2.3/8"}, name + `trusted proxy "10.1.2.3/8" has host bits set (the network is 10.0.0.0/8)`},
		{"every IPv4 address", certHeaderName, b64, []string{"10.0.0.0/8", "0.0.0.0/0"}, name + `trusted proxy "0.0.0.0/0" holds every address`},
		{"every IPv6 address", certHeaderName, b64, []string{"::/0"}, name + `trusted proxy "::/0" holds every address`},
		{"IPv4-mapped", certHeaderName, b64, []string{"::ffff:10.0.0.0/104"}, name + `trusted proxy "::ffff:10.0.0.0/104" is IPv4-mapped IPv6: write it in IPv4`},
		{"empty header name", "", b64, []string{"10.0.0.0/8"}, name + "empty header name"},
		{"bad header name", "X Client Cert", b64, []string{"10.0.0.0/8"}, name + `"X Client Cert" is not a valid header name`},
		{"header name with a colon", "X-Client-Cert:", b64, []string{"10.0.0.0/8"}, name + `"X-Client-Cert:" is not a valid header name`},
		{"zero format", certHeaderName, 0, []string{"10.0.0.0/8"}, name + "unknown format 0"},
		{"unknown format", certHeaderName, 99, []string{"10.0.0.0/8"}, name + "unknown format 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := introspect.WithClientCertificateHeader(tt.header, tt.format, tt.proxies...)
			mw, err := introspect.New(append(base, opt)...)
			if tt.want == "" {
				require.NoError(t, err)
				require.NoError(t, mw.Close())
			} else {
				assert.EqualError(t, err, tt.want)
			}
			_, err = introspect.NewClient(append(base, opt)...)
			assert.ErrorContains(t, err, "WithClientCertificateHeader applies to the middleware, not to a Client")
		})
	}
}

// The format names print.
func TestCertHeaderFormatString(t *testing.T) {
	for f, want := range map[introspect.CertHeaderFormat]string{
		introspect.CertHeaderEscapedPEM: "escaped-pem", introspect.CertHeaderXFCC: "xfcc",
		introspect.CertHeaderBase64DER: "base64-der", 0: "unknown", 42: "unknown",
	} {
		t.Run(want, func(t *testing.T) { assert.Equal(t, want, f.String()) })
	}
}
