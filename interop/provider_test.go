package interop

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Clients registered at the provider.
const (
	appID     = "app" // obtains tokens with client_credentials
	appSecret = "app-secret-0123456789abcdef0123456789"
	mtlsAppID = "app-mtls"  // its tokens are bound to its TLS client certificate
	shortID   = "short-app" // its tokens live 2 s
	// reservedSecret has every character RFC 6749 §2.3.1's form-encoding
	// changes.
	reservedSecret = "rs:/?#[]@!$&'()*+,;=% \"secret\"-0123456789abcdef"
	jwtSecret      = "client-secret-jwt-0123456789abcdef0123456789abcdef0123456789abcdef"
	// userAppID obtains tokens of a user (openid profile) with userGrant;
	// signedUserAppID too, and its userinfo answers are signed (RS256).
	userAppID       = "user-app"
	signedUserAppID = "user-app-signed"
	userGrant       = "urn:introspect:interop:user"
)

// op is the running provider, shared by the tests of the package.
type op struct {
	issuer string
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey
	// mtlsURL is the origin of the provider's TLS listener, which asks
	// clients for a certificate; mtlsRoots trusts its certificate.
	mtlsURL   string
	mtlsRoots *x509.CertPool
}

var (
	theOP    *op
	opErr    error
	stopOP   func()
	nodeLogs strings.Builder
)

func TestMain(m *testing.M) {
	theOP, stopOP, opErr = startOP()
	code := m.Run()
	if stopOP != nil {
		stopOP()
	}
	os.Exit(code)
}

// provider returns the running provider. When it could not be started the
// test fails under CI=true and is skipped loudly elsewhere.
func provider(t *testing.T) *op {
	t.Helper()
	if opErr != nil {
		msg := fmt.Sprintf("INTEROP NOT RUN: node oidc-provider did not start: %v\n"+
			"Install Node.js 20.19 or later and run `npm ci` in interop/.\nnode output:\n%s", opErr, logs())
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return theOP
}

// startOP generates the keys of the resource servers and of the provider's
// TLS listener, and starts the provider with every client registered.
func startOP() (*op, func(), error) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tlsKey, tlsCert, err := serverCertificate()
	if err != nil {
		return nil, nil, err
	}
	o := &op{rsaKey: rsaKey, ecKey: ecKey}
	cfg := o.config(0, nil)
	cfg["mtls"] = map[string]string{"key": tlsKey, "cert": tlsCert}
	issuer, mtlsURL, stop, err := launch(cfg, &nodeLogs)
	if err != nil {
		return nil, nil, err
	}
	if mtlsURL == "" {
		stop()
		return nil, nil, errors.New("node announced no TLS listener")
	}
	o.issuer, o.mtlsURL = issuer, mtlsURL
	o.mtlsRoots = x509.NewCertPool()
	o.mtlsRoots.AppendCertsFromPEM([]byte(tlsCert))
	return o, stop, nil
}

// config is the provider's configuration with o's client registrations, on
// port (0: any), signing with jwks (private JWKs, the first of each
// algorithm signs; nil: keys the provider generates).
func (o *op) config(port int, jwks []map[string]any) map[string]any {
	rsaJWKS := map[string]any{"keys": []any{mustJWK(o.rsaKey, "rs-rsa")}}
	ecJWKS := map[string]any{"keys": []any{mustJWK(o.ecKey, "rs-ec")}}
	resourceServer := func(id, method string, extra map[string]any) map[string]any {
		c := map[string]any{
			"client_id": id, "token_endpoint_auth_method": method,
			"grant_types": []string{}, "response_types": []string{}, "redirect_uris": []string{},
		}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	cfg := map[string]any{
		"port":       port,
		"shortLived": []string{shortID},
		"resources":  map[string]string{resourceRS256: "RS256", resourceES256: "ES256"},
		"clients": []any{
			map[string]any{"client_id": appID, "client_secret": appSecret, "scope": "api",
				"grant_types": []string{"client_credentials"}, "response_types": []string{}, "redirect_uris": []string{}},
			map[string]any{"client_id": mtlsAppID, "client_secret": appSecret, "scope": "api",
				"tls_client_certificate_bound_access_tokens": true,
				"grant_types": []string{"client_credentials"}, "response_types": []string{}, "redirect_uris": []string{}},
			map[string]any{"client_id": shortID, "client_secret": appSecret, "scope": "api",
				"grant_types": []string{"client_credentials"}, "response_types": []string{}, "redirect_uris": []string{}},
			map[string]any{"client_id": userAppID, "client_secret": appSecret, "scope": "openid profile",
				"grant_types": []string{userGrant}, "response_types": []string{}, "redirect_uris": []string{}},
			map[string]any{"client_id": signedUserAppID, "client_secret": appSecret, "scope": "openid profile", "userinfo_signed_response_alg": "RS256",
				"grant_types": []string{userGrant}, "response_types": []string{}, "redirect_uris": []string{}},
			resourceServer("rs-basic", "client_secret_basic", map[string]any{"client_secret": reservedSecret}),
			resourceServer("rs-post", "client_secret_post", map[string]any{"client_secret": reservedSecret}),
			resourceServer("rs-jwt", "client_secret_jwt", map[string]any{"client_secret": jwtSecret}),
			resourceServer("rs-jwt-hs512", "client_secret_jwt", map[string]any{"client_secret": jwtSecret, "token_endpoint_auth_signing_alg": "HS512"}),
			resourceServer("rs-pk-rsa", "private_key_jwt", map[string]any{"jwks": rsaJWKS}),
			resourceServer("rs-pk-ps", "private_key_jwt", map[string]any{"jwks": rsaJWKS, "token_endpoint_auth_signing_alg": "PS256"}),
			resourceServer("rs-pk-ec", "private_key_jwt", map[string]any{"jwks": ecJWKS}),
			resourceServer("rs-signed-rs256", "client_secret_basic", map[string]any{"client_secret": reservedSecret, "introspection_signed_response_alg": "RS256"}),
			resourceServer("rs-signed-es256", "private_key_jwt", map[string]any{"jwks": ecJWKS, "introspection_signed_response_alg": "ES256"}),
		},
	}
	if jwks != nil {
		keys := make([]any, len(jwks))
		for i, k := range jwks {
			keys[i] = k
		}
		cfg["jwks"] = map[string]any{"keys": keys}
	}
	return cfg
}

// launch writes cfg, starts `node server.mjs` and waits for its READY line.
// It returns the issuer, the origin of the TLS listener ("" without one)
// and the function that stops the provider. The provider's stderr goes to
// logs.
func launch(cfg map[string]any, logs *strings.Builder) (issuer, mtlsURL string, stop func(), err error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", "", nil, errors.New("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "oidc-provider", "package.json")); err != nil {
		return "", "", nil, errors.New("oidc-provider is not installed (run npm ci)")
	}
	dir, err := os.MkdirTemp("", "introspect-interop-")
	if err != nil {
		return "", "", nil, err
	}
	cfgPath := filepath.Join(dir, "config.json")
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return "", "", nil, err
	}

	cmd := exec.Command(node, "server.mjs", cfgPath)
	stdin, err := cmd.StdinPipe() // the server exits when this closes
	if err != nil {
		return "", "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", "", nil, err
	}
	cmd.Stderr = &lockedWriter{w: logs}
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = stdin.Close()
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.RemoveAll(dir)
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var mtlsURL string
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "MTLS "); ok {
				mtlsURL = u
			}
			if iss, ok := strings.CutPrefix(line, "READY "); ok {
				ready <- [2]string{iss, mtlsURL}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case r := <-ready:
		return r[0], r[1], stop, nil
	case <-exited:
		stop()
		return "", "", nil, errors.New("node exited before it was ready")
	case <-time.After(90 * time.Second):
		// A bound for a server that never comes up, not a speed check: on
		// a loaded 2-core machine node's start (loading oidc-provider,
		// making RSA keys) once took more than 30 s.
		stop()
		return "", "", nil, errors.New("node was not ready within 90 s")
	}
}

// serverCertificate returns a key and a self-signed certificate for
// 127.0.0.1, in PEM, for the provider's TLS listener.
func serverCertificate() (keyPEM, certPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "interop provider"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

func mustJWK(k crypto.Signer, kid string) map[string]any {
	jk, err := jwk.Import(k.Public())
	if err != nil {
		panic(err)
	}
	_ = jk.Set(jwk.KeyIDKey, kid)
	b, err := json.Marshal(jk)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// issue obtains an access token with the client_credentials grant.
func (o *op) issue(t *testing.T, clientID string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	o.post(t, "/token", clientID, form, &body)
	if body.AccessToken == "" {
		t.Fatal("no access token")
	}
	return body.AccessToken
}

// revoke revokes token (RFC 7009).
func (o *op) revoke(t *testing.T, token string) {
	t.Helper()
	o.post(t, "/token/revocation", appID, url.Values{"token": {token}}, nil)
}

func (o *op) post(t *testing.T, path, clientID string, form url.Values, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, o.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(appSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// logMu guards nodeLogs.
var logMu sync.Mutex

func logs() string {
	logMu.Lock()
	defer logMu.Unlock()
	return nodeLogs.String()
}

type lockedWriter struct {
	w *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	if l.w.Len() > 64<<10 {
		return len(p), nil
	}
	return l.w.Write(p)
}
