package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
	"github.com/introspect-go/introspect/introspecttest"
)

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

// requestToken asks the token endpoint at base for a client_credentials
// token of clientID through hc, with the extra headers, and returns the
// status and the answer.
func (o *op) requestToken(t *testing.T, hc *http.Client, base, clientID string, header http.Header) (int, tokenResponse, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
	req, err := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(appSecret))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tr tokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &tr); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, tr, string(b)
}

// issueDPoP obtains a token bound to key (RFC 9449 §5): the token request
// carries a proof of key for the token endpoint, which it returns too.
func (o *op) issueDPoP(t *testing.T, key *introspecttest.DPoPKey) (token, proof string) {
	t.Helper()
	proof = key.Proof(http.MethodPost, o.issuer+"/token", "")
	status, tr, body := o.requestToken(t, http.DefaultClient, o.issuer, appID, http.Header{"Dpop": {proof}})
	if status != http.StatusOK || tr.AccessToken == "" || tr.TokenType != "DPoP" {
		t.Fatalf("DPoP token request: status %d: %s", status, body)
	}
	return tr.AccessToken, proof
}

// mtlsClient is a client of the provider's TLS listener that presents cert,
// or no certificate when cert is nil.
func (o *op) mtlsClient(t *testing.T, cert *tls.Certificate) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: o.mtlsRoots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// issueMTLS obtains a token bound to cert (RFC 8705 §3): the token request
// is made over TLS with cert as the client certificate.
func (o *op) issueMTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	status, tr, body := o.requestToken(t, o.mtlsClient(t, &cert), o.mtlsURL, mtlsAppID, nil)
	if status != http.StatusOK || tr.AccessToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("mTLS token request: status %d: %s", status, body)
	}
	return tr.AccessToken
}

// middleware is a middleware that asks the provider, as client rs-basic.
func (o *op) middleware(t *testing.T, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	mw, err := introspect.New(append([]introspect.Option{
		introspect.WithIssuer(o.issuer),
		introspect.WithClientCredentials("rs-basic", reservedSecret),
		introspect.WithTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("introspect.New: %v", err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

// api serves mw in front of a handler that answers the token's client_id.
func api(t *testing.T, mw *introspect.Middleware) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		_, _ = io.WriteString(w, ti.ClientID)
	})))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status    int
	body      string
	challenge string
}

// call sends method to u through hc with the Authorization value auth and
// the other headers.
func call(t *testing.T, hc *http.Client, method, u, auth string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", auth)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return answer{resp.StatusCode, string(b), strings.Join(resp.Header.Values("WWW-Authenticate"), "\n")}
}

func newDPoPKey(t *testing.T) *introspecttest.DPoPKey {
	t.Helper()
	k, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDPoPBoundToken: a token the provider binds to a DPoP key passes the
// middleware with a proof of that key for the request, and fails every way
// the proof can be wrong.
func TestDPoPBoundToken(t *testing.T) {
	o := provider(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	tok, tokenProof := o.issueDPoP(t, key)

	// The provider bound the token to the key's RFC 7638 thumbprint, as the
	// library computes it.
	ti, err := o.client(t, introspect.WithClientCredentials("rs-basic", reservedSecret)).Introspect(context.Background(), tok)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	if ti.Confirmation == nil || ti.Confirmation.JKT != key.JKT() || ti.TokenType != "DPoP" {
		t.Fatalf("answer cnf %+v, token_type %q; want jkt %s and DPoP", ti.Confirmation, ti.TokenType, key.JKT())
	}

	srv := api(t, o.middleware(t))
	u := srv.URL + "/api/orders"
	dpop := func(proofs ...string) http.Header { return http.Header{"Dpop": proofs} }
	if got := call(t, http.DefaultClient, http.MethodGet, u, "DPoP "+tok, dpop(key.Proof(http.MethodGet, u, tok))); got.status != http.StatusOK || got.body != appID {
		t.Fatalf("a correct proof: %+v, want 200 %s", got, appID)
	}
	replayed := key.Proof(http.MethodPost, u, tok)
	if got := call(t, http.DefaultClient, http.MethodPost, u, "DPoP "+tok, dpop(replayed)); got.status != http.StatusOK {
		t.Fatalf("a correct proof for a POST: %+v, want 200", got)
	}
	now := time.Now()
	tests := []struct {
		name   string
		method string
		auth   string
		header http.Header
		code   string // the error of the DPoP challenge
	}{
		{"proof from another key", http.MethodGet, "DPoP " + tok, dpop(other.Proof(http.MethodGet, u, tok)), "invalid_token"},
		{"replayed proof", http.MethodPost, "DPoP " + tok, dpop(replayed), "invalid_dpop_proof"},
		{"wrong htu", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodGet, srv.URL+"/api/other", tok)), "invalid_dpop_proof"},
		{"htu of another origin", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodGet, "https://api.example.com/api/orders", tok)), "invalid_dpop_proof"},
		{"wrong htm", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodPost, u, tok)), "invalid_dpop_proof"},
		{"stale iat", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodGet, u, tok, introspecttest.WithProofIssuedAt(now.Add(-10*time.Minute)))), "invalid_dpop_proof"},
		{"iat in the future", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodGet, u, tok, introspecttest.WithProofIssuedAt(now.Add(10*time.Minute)))), "invalid_dpop_proof"},
		{"missing ath", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodGet, u, tok, introspecttest.WithProofClaim("ath", nil))), "invalid_dpop_proof"},
		{"ath of another token", http.MethodGet, "DPoP " + tok, dpop(key.Proof(http.MethodGet, u, "another-token")), "invalid_dpop_proof"},
		{"the proof of the token request", http.MethodGet, "DPoP " + tok, dpop(tokenProof), "invalid_dpop_proof"},
		{"no proof", http.MethodGet, "DPoP " + tok, nil, "invalid_dpop_proof"},
		{"token sent as Bearer", http.MethodGet, "Bearer " + tok, dpop(key.Proof(http.MethodGet, u, tok)), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, http.DefaultClient, tc.method, u, tc.auth, tc.header)
			if got.status != http.StatusUnauthorized {
				t.Fatalf("%+v, want 401", got)
			}
			want := `error="invalid_token"`
			if tc.code != "" {
				want = `DPoP error="` + tc.code + `"`
			}
			if !strings.Contains(got.challenge, want) {
				t.Errorf("challenges %q, want %s", got.challenge, want)
			}
		})
	}
}

// TestDPoPReplayAcrossReplicas: two replicas of an API behind one URL share
// a replay cache in Redis; a proof of a token from the provider accepted by
// one is refused by the other.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	o := provider(t)
	rdb := startRedis(t)
	key := newDPoPKey(t)
	tok, _ := o.issueDPoP(t, key)
	const external = "https://api.example.com"
	replica := func() *httptest.Server {
		replay, err := introspectredis.NewReplayCache(rdb, []byte(strings.Repeat("s", introspectredis.MinSecretSize)))
		if err != nil {
			t.Fatal(err)
		}
		return api(t, o.middleware(t, introspect.WithDPoP(introspect.DPoPAllowed,
			introspect.WithDPoPReplayCache(replay), introspect.WithDPoPExternalURL(external))))
	}
	a, b := replica(), replica()
	proof := key.Proof(http.MethodGet, external+"/api/orders", tok)
	header := http.Header{"Dpop": {proof}}
	if got := call(t, http.DefaultClient, http.MethodGet, a.URL+"/api/orders", "DPoP "+tok, header); got.status != http.StatusOK {
		t.Fatalf("replica A: %+v, want 200", got)
	}
	got := call(t, http.DefaultClient, http.MethodGet, b.URL+"/api/orders", "DPoP "+tok, header)
	if got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, `DPoP error="invalid_dpop_proof"`) {
		t.Fatalf("replica B, the same proof: %+v, want 401 invalid_dpop_proof", got)
	}
	fresh := http.Header{"Dpop": {key.Proof(http.MethodGet, external+"/api/orders", tok)}}
	if got := call(t, http.DefaultClient, http.MethodGet, b.URL+"/api/orders", "DPoP "+tok, fresh); got.status != http.StatusOK {
		t.Fatalf("replica B, a new proof: %+v, want 200", got)
	}
}

// clientCertificate returns a self-signed client certificate.
func clientCertificate(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// The address the proxy connects to the API from, the one the API trusts;
// clients connect from 127.0.0.1.
const proxyAddr = "127.0.0.2"

// certHeader is how a proxy writes a certificate in a header format.
var certHeader = map[introspect.CertHeaderFormat]func(c *x509.Certificate) string{
	// nginx's $ssl_client_escaped_cert.
	introspect.CertHeaderEscapedPEM: func(c *x509.Certificate) string {
		return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	},
	// Envoy's x-forwarded-client-cert with SANITIZE_SET and cert: true.
	introspect.CertHeaderXFCC: func(c *x509.Certificate) string {
		sum := sha256.Sum256(c.Raw)
		escaped := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
		return `Hash=` + hex.EncodeToString(sum[:]) + `;Cert="` + escaped + `";Subject="CN=` + c.Subject.CommonName + `"`
	},
	// HAProxy's ssl_c_der,base64.
	introspect.CertHeaderBase64DER: func(c *x509.Certificate) string { return base64.StdEncoding.EncodeToString(c.Raw) },
}

// tlsProxy is a reverse proxy in front of target that terminates TLS, asks
// clients for a certificate and forwards it in header, replacing any the
// client sent. It connects to target from proxyAddr.
func tlsProxy(t *testing.T, target, header string, format introspect.CertHeaderFormat) *httptest.Server {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxyAddr)},
		Timeout:   5 * time.Second,
	}).DialContext}
	t.Cleanup(transport.CloseIdleConnections)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Header.Del(header)
			if st := pr.In.TLS; st != nil && len(st.PeerCertificates) > 0 {
				pr.Out.Header.Set(header, certHeader[format](st.PeerCertificates[0]))
			}
		},
		Transport: transport,
	})
	proxy.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	return proxy
}

// proxyClient is a client of proxy that presents cert, or none when cert is
// nil.
func proxyClient(t *testing.T, proxy *httptest.Server, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := proxy.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestCertificateBoundToken: a token the provider binds to the client
// certificate of the token request passes a middleware behind a
// TLS-terminating reverse proxy that forwards the certificate in a header,
// in each of the formats, from that certificate only, and only when the
// header comes from the proxy.
func TestCertificateBoundToken(t *testing.T) {
	o := provider(t)
	cert, other := clientCertificate(t, "client"), clientCertificate(t, "other")
	tok := o.issueMTLS(t, cert)

	// The provider bound the token to the certificate's RFC 8705 thumbprint.
	ti, err := o.client(t, introspect.WithClientCredentials("rs-basic", reservedSecret)).Introspect(context.Background(), tok)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	sum := sha256.Sum256(cert.Leaf.Raw)
	if ti.Confirmation == nil || ti.Confirmation.X5TS256 != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("answer cnf %+v, want the certificate's thumbprint", ti.Confirmation)
	}
	// The provider reads the certificate of the TLS connection: without one
	// it issues no token to this client.
	if status, _, body := o.requestToken(t, o.mtlsClient(t, nil), o.mtlsURL, mtlsAppID, nil); status != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("token request without a certificate: status %d: %s; want 400 invalid_grant", status, body)
	}

	for _, tf := range []struct {
		header string
		format introspect.CertHeaderFormat
	}{
		{"X-SSL-Client-Cert", introspect.CertHeaderEscapedPEM},
		{"X-Forwarded-Client-Cert", introspect.CertHeaderXFCC},
		{"X-Client-Cert-DER", introspect.CertHeaderBase64DER},
	} {
		t.Run(tf.format.String(), func(t *testing.T) {
			srv := api(t, o.middleware(t, introspect.WithClientCertificateHeader(tf.header, tf.format, proxyAddr)))
			proxy := tlsProxy(t, srv.URL, tf.header, tf.format)
			forged := http.Header{tf.header: {certHeader[tf.format](cert.Leaf)}}
			tests := []struct {
				name   string
				client *http.Client
				url    string
				header http.Header
				status int
			}{
				{"the token's certificate, through the proxy", proxyClient(t, proxy, &cert), proxy.URL, nil, http.StatusOK},
				{"another certificate, through the proxy", proxyClient(t, proxy, &other), proxy.URL, nil, http.StatusUnauthorized},
				{"no certificate, through the proxy", proxyClient(t, proxy, nil), proxy.URL, nil, http.StatusUnauthorized},
				{"no certificate and the header of the token's, through the proxy", proxyClient(t, proxy, nil), proxy.URL, forged, http.StatusUnauthorized},
				{"another certificate and the header of the token's, through the proxy", proxyClient(t, proxy, &other), proxy.URL, forged, http.StatusUnauthorized},
				{"the header of the token's certificate, from an untrusted address", http.DefaultClient, srv.URL, forged, http.StatusUnauthorized},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					got := call(t, tc.client, http.MethodGet, tc.url+"/api/orders", "Bearer "+tok, tc.header)
					if got.status != tc.status {
						t.Fatalf("%+v, want %d", got, tc.status)
					}
					if tc.status == http.StatusOK && got.body != mtlsAppID {
						t.Errorf("body %q, want %s", got.body, mtlsAppID)
					}
					if tc.status == http.StatusUnauthorized && !strings.Contains(got.challenge, `error="invalid_token"`) {
						t.Errorf("challenges %q, want invalid_token", got.challenge)
					}
				})
			}
		})
	}
}
