package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// testCert is a self-signed certificate with its key, and its PEM files.
type testCert struct {
	tls      tls.Certificate
	der      []byte
	certFile string
	keyFile  string
}

// newCert makes a self-signed certificate for 127.0.0.1, usable by a
// server and a client.
func newCert(t *testing.T, name string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	c := testCert{der: der, certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key")}
	require.NoError(t, os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	c.tls, err = tls.LoadX509KeyPair(c.certFile, c.keyFile)
	require.NoError(t, err)
	return c
}

// thumbprint is the RFC 8705 x5t#S256 of the certificate.
func (c testCert) thumbprint() string {
	sum := sha256.Sum256(c.der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestTLSClientCertificate serves https and asks clients for a
// certificate: a certificate-bound token passes only over a connection
// with its certificate, which the upstream receives in
// -upstream-client-cert-header; a client's own value of that header never
// reaches it.
func TestTLSClientCertificate(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	server, client, other := newCert(t, "proxy"), newCert(t, "client"), newCert(t, "other")
	p := startProxy(t, reverseArgs(as, up, "-tls-cert", server.certFile, "-tls-key", server.keyFile,
		"-tls-client-auth", "request", "-upstream-client-cert-header", "X-Client-Cert"))
	bound := as.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"x5t#S256": client.thumbprint()}})
	plain := as.Issue(introspecttest.Claims{Subject: "bob"})
	roots := x509.NewCertPool()
	roots.AddCert(server.tls.Leaf)
	for _, tc := range []struct {
		name     string
		cert     *tls.Certificate
		token    string
		forged   string
		want     int
		wantCert string
	}{
		{"bound token, its certificate", &client.tls, bound, "", 200, base64.StdEncoding.EncodeToString(client.der)},
		{"bound token, no certificate", nil, bound, "", 401, ""},
		{"bound token, another certificate", &other.tls, bound, "", 401, ""},
		{"plain token, forged header", nil, plain, "forged", 200, ""},
		// Nobody verified it, and the token is not bound to it: anyone can
		// make a certificate with any name in it.
		{"plain token, a certificate of its own", &other.tls, plain, "", 200, ""},
		{"plain token, a certificate of its own, forged header", &other.tls, plain, "forged", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots}
			if tc.cert != nil {
				cfg.Certificates = []tls.Certificate{*tc.cert}
			}
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			req, err := http.NewRequest(http.MethodGet, p.url+"/x", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", bearer(tc.token))
			if tc.forged != "" {
				req.Header.Set("X-Client-Cert", tc.forged)
			}
			resp, err := hc.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
			if tc.want == http.StatusOK {
				assert.Equal(t, tc.wantCert, up.last(t).Header.Get("X-Client-Cert"))
			}
		})
	}
}

// With -tls-client-auth verify-if-given, a certificate that -tls-client-ca
// verified reaches the upstream whatever the token; under request, only
// the certificate a token is bound to does (TestTLSClientCertificate).
func TestTLSVerifiedClientCertificate(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	server, client := newCert(t, "proxy"), newCert(t, "client")
	p := startProxy(t, reverseArgs(as, up, "-tls-cert", server.certFile, "-tls-key", server.keyFile,
		"-tls-client-auth", "verify-if-given", "-tls-client-ca", client.certFile, "-upstream-client-cert-header", "X-Client-Cert"))
	roots := x509.NewCertPool()
	roots.AddCert(server.tls.Leaf)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{client.tls}}}}
	req, err := http.NewRequest(http.MethodGet, p.url+"/x", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", bearer(as.Issue(introspecttest.Claims{Subject: "bob"})))
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, base64.StdEncoding.EncodeToString(client.der), up.last(t).Header.Get("X-Client-Cert"))
}

// TestClientCertHeader takes the certificate of a certificate-bound token
// from the header of a TLS-terminating proxy: believed from
// -trusted-proxies only, and in reverse-proxy mode removed before the
// upstream when anyone else sends it; its other spellings ('_' for '-'),
// and those of the forwarding headers, never reach the upstream, and the
// headers that say who the client is pass from a trusted proxy only.
func TestClientCertHeader(t *testing.T) {
	as := newAS(t)
	client := newCert(t, "client")
	bound := as.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"x5t#S256": client.thumbprint()}})
	plain := as.Issue(introspecttest.Claims{Subject: "bob"})
	escaped := url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.der})))
	certArgs := []string{"-client-cert-header", "X-SSL-Client-Cert", "-client-cert-header-format", "escaped-pem"}
	for _, tc := range []struct {
		name    string
		forward bool
		trusted bool
		token   string
		want    int
	}{
		{"reverse, trusted proxy", false, true, bound, 200},
		{"reverse, untrusted source", false, false, bound, 401},
		{"reverse, untrusted source, plain token", false, false, plain, 200},
		{"forward-auth, trusted proxy", true, true, bound, 200},
		{"forward-auth, untrusted source", true, false, bound, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := certArgs
			if !tc.trusted {
				args = append(args, "-trusted-proxies", "192.0.2.0/24")
			}
			up := newUpstream(t, nil)
			var p *running
			if tc.forward {
				p = startProxy(t, forwardArgs(as, args...))
			} else {
				p = startProxy(t, reverseArgs(as, up, args...))
			}
			// The header, and under other spellings that services read
			// as the same ('_' for '-'), with forwarding headers spelt so.
			got := do(t, http.MethodGet, p.url+"/x", bearer(tc.token), "X-SSL-Client-Cert", escaped,
				"X-Ssl-Client_Cert", "forged", "x_ssl_client_cert", "forged",
				"X-Forwarded_For", "203.0.113.9", "X-Forwarded_Host", "evil.example", "X_Forwarded_Proto", "https",
				"X-Real-IP", "203.0.113.9", "True-Client-IP", "203.0.113.9", "X-Forwarded-Prefix", "/evil", "X_Real_IP", "203.0.113.9",
				"Client-IP", "203.0.113.9", "CF-Connecting-IP", "203.0.113.9", "X-Forwarded-Scheme", "https")
			assert.Equal(t, tc.want, got.status, got.body)
			if !tc.forward && tc.want == http.StatusOK {
				want := escaped
				if !tc.trusted {
					want = ""
				}
				last := up.last(t)
				assert.Equal(t, want, last.Header.Get("X-SSL-Client-Cert"))
				// Who the client is: from a trusted proxy only.
				for _, h := range []string{"X-Real-Ip", "True-Client-Ip", "X-Forwarded-Prefix", "Client-Ip", "Cf-Connecting-Ip", "X-Forwarded-Scheme"} {
					assert.Equal(t, tc.trusted, last.Header.Get(h) != "", h)
				}
				for k := range last.Header {
					assert.NotContains(t, k, "_", "a header spelt with '_' reached the upstream: %s", k)
				}
			}
		})
	}
}

// Over HTTP/2 a refusal of a request with a body keeps the connection: only
// HTTP/1 connections are ended (TestRefusalDoesNotWaitForBody), since
// HTTP/2 answers without reading the body, and a Connection: close would
// end every stream of the connection.
func TestRefusalKeepsHTTP2Connection(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	server := newCert(t, "proxy")
	p := startProxy(t, reverseArgs(as, up, "-tls-cert", server.certFile, "-tls-key", server.keyFile))
	roots := x509.NewCertPool()
	roots.AddCert(server.tls.Leaf)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	t.Cleanup(hc.CloseIdleConnections)
	var reused []bool
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, p.url+"/api", strings.NewReader("a body"))
		require.NoError(t, err)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}))
		resp, err := hc.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, 2, resp.ProtoMajor)
	}
	assert.Equal(t, []bool{false, true}, reused, "the second request on the first connection")
}

// TestTLSReload renews the certificate and the client CAs in place, as
// cert-manager does: a certificate whose key has not been written yet
// keeps the one in use (and says so in the log), the pair is served
// once both are there, and a new client CA file verifies its clients from
// then on and no longer those of the old one, sessions resumed from
// before included.
func TestTLSReload(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	old, renewed := newCert(t, "proxy-old"), newCert(t, "proxy-new")
	client, other := newCert(t, "client"), newCert(t, "other")
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		// Written aside and renamed, as a secret volume swaps its files.
		require.NoError(t, os.WriteFile(to+".tmp", b, 0o600))
		require.NoError(t, os.Rename(to+".tmp", to))
	}
	copyFile(old.certFile, certFile)
	copyFile(old.keyFile, keyFile)
	copyFile(client.certFile, caFile)
	p := startProxy(t, reverseArgs(as, up, "-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-ca", caFile,
		"-tls-reload-interval", "1s", "-upstream-client-cert-header", "X-Client-Cert"))
	roots := x509.NewCertPool()
	roots.AddCert(old.tls.Leaf)
	roots.AddCert(renewed.tls.Leaf)
	token := bearer(as.Issue(introspecttest.Claims{Subject: "bob"}))
	// get asks with the client certificate cert (nil: none) and returns the
	// serving certificate's name, the upstream's X-Client-Cert and whether
	// the session was resumed; err is the handshake's or the request's.
	get := func(cert *tls.Certificate, sessions tls.ClientSessionCache) (served, clientCert string, resumed bool, err error) {
		cfg := &tls.Config{RootCAs: roots, ClientSessionCache: sessions}
		if cert != nil {
			// Sent even when the server names other CAs.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		req, err := http.NewRequest(http.MethodGet, p.url+"/x", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", token)
		resp, err := hc.Do(req)
		if err != nil {
			return "", "", false, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", "", false, fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName, up.last(t).Header.Get("X-Client-Cert"), resp.TLS.DidResume, nil
	}
	sessions := tls.NewLRUClientSessionCache(4)
	_, clientCert, _, err := get(&client.tls, sessions)
	require.NoError(t, err)
	assert.Equal(t, base64.StdEncoding.EncodeToString(client.der), clientCert, "verified by the CA file")
	served, _, resumed, err := get(&client.tls, sessions)
	require.NoError(t, err)
	require.True(t, resumed, "a second connection resumes its session")
	require.Equal(t, "proxy-old", served)

	// The certificate alone: it does not match the key in use.
	copyFile(renewed.certFile, certFile)
	const notRead = "TLS certificate files not read again: the certificate in use stays"
	waitFor(t, 20*time.Second, "the failed read", func() bool { return len(p.logs.lines(t, notRead)) > 0 })
	served, _, _, err = get(nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "proxy-old", served, "a certificate without its key is not served")
	assert.Contains(t, p.logs.lines(t, notRead)[0]["error"], "-tls-cert, -tls-key: ")

	// Then its key.
	copyFile(renewed.keyFile, keyFile)
	waitFor(t, 20*time.Second, "the renewed certificate", func() bool {
		served, _, _, err := get(nil, nil)
		return err == nil && served == "proxy-new"
	})
	served, _, resumed, err = get(&client.tls, sessions)
	require.NoError(t, err)
	assert.Equal(t, "proxy-new", served, "a session from before the renewal")
	assert.False(t, resumed, "a session from before the renewal")
	read := p.logs.lines(t, "TLS certificate files read again: new handshakes use them")
	require.Len(t, read, 1)
	assert.Equal(t, renewed.tls.Leaf.NotAfter.UTC().Format(time.RFC3339), read[0]["not_after"])

	// Another client CA: its clients are verified, the old one's are not,
	// not even by resuming a session of the old configuration.
	copyFile(other.certFile, caFile)
	waitFor(t, 20*time.Second, "the new client CA", func() bool {
		_, clientCert, _, err := get(&other.tls, nil)
		return err == nil && clientCert == base64.StdEncoding.EncodeToString(other.der)
	})
	_, _, _, err = get(&client.tls, sessions)
	require.Error(t, err, "a client of the old CA, with a session from before")
	_, _, _, err = get(&client.tls, nil)
	require.Error(t, err, "a client of the old CA")
}

// Over HTTP/2 the bound of -max-header-bytes holds too, with its smaller
// slack: the proxy announces it in its SETTINGS (SETTINGS_MAX_HEADER_LIST_SIZE),
// and Go's client refuses to send a larger request.
func TestMaxHeaderBytesHTTP2(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	server := newCert(t, "proxy")
	p := startProxy(t, reverseArgs(as, up, "-tls-cert", server.certFile, "-tls-key", server.keyFile, "-max-header-bytes", "8192"))
	roots := x509.NewCertPool()
	roots.AddCert(server.tls.Leaf)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	t.Cleanup(hc.CloseIdleConnections)
	token := bearer(as.Issue(introspecttest.Claims{Subject: "alice"}))
	get := func(size int) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, p.url+"/x", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", token)
		req.Header.Set("X-Big", strings.Repeat("a", size))
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get(7000)
	require.NoError(t, err)
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "within the bound")
	_, err = get(9000)
	require.ErrorContains(t, err, "larger than peer's advertised limit", "beyond the bound and HTTP/2's slack")
}

// With local JWT validation the default header bound makes room for a
// token of -max-jwt-size and a DPoP-sized header next to it, over HTTP/2
// too, where net/http's slack is about 320 bytes.
func TestLargestJWTOverHTTP2(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	server := newCert(t, "proxy")
	const size = 65536
	p := startBare(t, []string{"-upstream", up.URL, "-validate", "jwt", "-issuer", as.Issuer, "-jwt-audience", audience,
		"-max-jwt-size", strconv.Itoa(size), "-tls-cert", server.certFile, "-tls-key", server.keyFile})
	// A JWT of size bytes, or 1 or 2 less (base64 grows by steps), padded
	// by a claim.
	issue := func(pad int) string {
		return as.IssueJWTFunc(introspecttest.Claims{Subject: "alice", Audience: []string{audience}},
			func(_, claims map[string]any) { claims["pad"] = strings.Repeat("a", pad) })
	}
	pad := size*3/4 - 300
	token := issue(pad)
	require.Less(t, len(token), size, "the first guess")
	for {
		next := issue(pad + 1)
		if len(next) > size {
			break
		}
		token, pad = next, pad+1
	}
	require.GreaterOrEqual(t, len(token), size-2, "the token's size")
	roots := x509.NewCertPool()
	roots.AddCert(server.tls.Leaf)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	t.Cleanup(hc.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodGet, p.url+"/x", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", bearer(token))
	req.Header.Set("X-Proof", strings.Repeat("p", 1000))
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
