package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/internal/exampledemo/demotest"
	"github.com/introspect-go/introspect/introspecttest"
)

func TestDemoPasses(t *testing.T) {
	for _, args := range [][]string{
		{"-demo", "-addr", "127.0.0.1:0"},
		{"-demo", "-addr", "127.0.0.1:0", "-cache=false"},
		{"-demo", "-addr", "127.0.0.1:0", "-max-ttl", "1m", "-negative-ttl", "0"},
		{"-demo", "-addr", "127.0.0.1:0", "-jwt-response"},
		{"-demo", "-addr", "127.0.0.1:0", "-auth-method", "client_secret_jwt"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			demotest.Demo(t, run, args, "11 passed, 0 failed")
		})
	}
}

// -validate: JWT access tokens validated locally, alone, next to opaque
// tokens, or with introspection; the demo's JWT steps pass and, in jwt mode,
// the embedded server is never asked.
func TestDemoValidationModes(t *testing.T) {
	for _, tt := range []struct{ args, want string }{
		{"-validate introspect", "11 passed, 0 failed"},
		{"-validate jwt", "15 passed, 0 failed\nThe API validated every token locally: the embedded server was asked 0 times."},
		{"-validate hybrid", "15 passed, 0 failed\nThe embedded server authenticated the API by client_secret_basic."},
		{"-validate jwt+introspect", "15 passed, 0 failed\nThe embedded server authenticated the API by client_secret_basic."},
		{"-validate jwt -jwt-audience urn:example:api", "15 passed, 0 failed"},
		{"-validate jwt+introspect -cache=false", "15 passed, 0 failed"},
		{"-validate jwt -dpop required", "4 passed, 0 failed"},
	} {
		t.Run(tt.args, func(t *testing.T) {
			demotest.Demo(t, run, append([]string{"-demo", "-addr", "127.0.0.1:0"}, strings.Fields(tt.args)...), tt.want)
		})
	}
}

// -userinfo: the handler of /api/me gets the userinfo claims of the
// embedded server in every mode; with local JWT validation alone, the
// userinfo endpoint refuses a revoked token.
func TestDemoUserinfo(t *testing.T) {
	const claims = "/api/me carried the userinfo claims email, name, sub."
	for _, tt := range []struct{ args, want string }{
		{"", "11 passed, 0 failed\n" + claims + "\nThe embedded server authenticated the API by client_secret_basic."},
		{"-cache=false", "11 passed, 0 failed\n" + claims},
		{"-jwt-response", "11 passed, 0 failed\n" + claims},
		{"-validate jwt", "15 passed, 0 failed\n" + claims},
		{"-validate hybrid", "15 passed, 0 failed\n" + claims},
		{"-validate jwt+introspect", "15 passed, 0 failed\n" + claims},
		{"-dpop off", "11 passed, 0 failed\n" + claims},
		{"-dpop required", "4 passed, 0 failed"},
	} {
		t.Run(strings.TrimSpace("-userinfo "+tt.args), func(t *testing.T) {
			args := append([]string{"-demo", "-addr", "127.0.0.1:0", "-userinfo"}, strings.Fields(tt.args)...)
			demotest.Demo(t, run, args, tt.want)
		})
	}
}

// -dpop: DPoP-bound tokens pass with their proof unless DPoP is off; with
// DPoP required, Bearer tokens are refused.
func TestDemoDPoPModes(t *testing.T) {
	for _, tt := range []struct{ mode, want string }{
		{"allowed", "11 passed, 0 failed"},
		{"off", "11 passed, 0 failed"},
		{"required", "4 passed, 0 failed"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			demotest.Demo(t, run, []string{"-demo", "-addr", "127.0.0.1:0", "-dpop", tt.mode}, tt.want)
		})
	}
}

// The client-authentication flags against the embedded server, which
// registers the key or certificate given and names the method it saw.
func TestDemoClientAuthentication(t *testing.T) {
	t.Setenv(secretEnv, "ignored-with-the-embedded-server")
	dir := t.TempDir()
	certFile, keyFile, bothFile := writeClientCert(t, dir)
	rsaKey := writeRSAKey(t, dir)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "client_secret_basic"},
		{[]string{"-auth-method", "client_secret_post"}, "client_secret_post"},
		{[]string{"-raw-basic-auth"}, "client_secret_basic"},
		{[]string{"-client-cert", certFile, "-client-key", keyFile}, "tls_client_auth"},
		{[]string{"-client-cert", bothFile}, "tls_client_auth"},
		{[]string{"-private-key", rsaKey, "-assertion-alg", "PS256"}, "private_key_jwt"},
		{[]string{"-auth-method", "client_secret_jwt", "-assertion-alg", "HS512"}, "client_secret_jwt"},
		{[]string{"-jwt-response", "-jwt-response-algs", "PS256, ES256"}, "client_secret_basic"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"-demo", "-addr", "127.0.0.1:0"}, tt.args...)
			demotest.Demo(t, run, args, "11 passed, 0 failed\nThe embedded server authenticated the API by "+tt.want+".")
		})
	}
}

// Signed answers in an algorithm left out of -jwt-response-algs are refused:
// every request that reaches the server gets a 503, and the demo fails.
func TestDemoJWTResponseAlgorithmRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, logs bytes.Buffer
	err := run(ctx, []string{"-demo", "-addr", "127.0.0.1:0", "-jwt-response", "-jwt-response-algs", "PS256"}, &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "not answered as expected") {
		t.Fatalf("demo err = %v, want a failed demo\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "-> 503") {
		t.Errorf("no 503 in the demo:\n%s", out.String())
	}
}

func TestFlagErrors(t *testing.T) {
	t.Setenv(secretEnv, "")
	dir := t.TempDir()
	certFile, keyFile, _ := writeClientCert(t, dir)
	secretFile := writeFile(t, dir, "secret", "s3cret\n")
	emptyFile := writeFile(t, dir, "empty", "\n")
	const ep = "https://as.example.com/introspect"
	for _, args := range [][]string{
		{"-endpoint", ep},
		{"-client-id", "x"},
		{"-demo", "-endpoint", ep, "-client-id", "a", "-client-secret", "b"},
		{"extra"},
		{"-no-such-flag"},
		{"-endpoint", "http://as.example.com/introspect", "-client-id", "a", "-client-secret", "b"},
		{"-issuer", "http://as.example.com", "-client-id", "a", "-client-secret", "b"},
		{"-issuer", "https://as.example.com"},
		{"-endpoint", ep, "-client-id", "a", "-client-secret", "b", "-jwt-response"},
		{"-auth-method", "magic"},
		{"-private-key", "/nonexistent/key.pem"},
		// Where the secret comes from.
		{"-endpoint", ep, "-client-id", "a"},
		{"-endpoint", ep, "-client-id", "a", "-client-secret", "b", "-client-secret-file", secretFile},
		{"-endpoint", ep, "-client-id", "a", "-client-secret-file", "/nonexistent/secret"},
		{"-endpoint", ep, "-client-id", "a", "-client-secret-file", emptyFile},
		{"-client-secret-file", secretFile},
		// The other credentials.
		{"-bearer-token-file", secretFile},
		{"-endpoint", ep, "-client-id", "a", "-bearer-token-file", emptyFile},
		{"-endpoint", ep, "-client-id", "a", "-bearer-token-file", "/nonexistent/token"},
		{"-client-key", keyFile},
		{"-client-cert", "/nonexistent/cert.pem"},
		{"-client-cert", certFile},
		{"-endpoint", ep, "-client-id", "a", "-client-secret", "b", "-auth-method", "tls_client_auth"},
		{"-endpoint", ep, "-client-id", "a:b", "-client-secret", "b", "-raw-basic-auth"},
		{"-endpoint", ep, "-client-id", "a", "-client-secret", "b", "-auth-method", "client_secret_jwt", "-assertion-alg", "RS256"},
		// Algorithms of signed answers.
		{"-jwt-response-algs", "ES256"},
		{"-jwt-response", "-jwt-response-algs", "HS256"},
		{"-jwt-response", "-jwt-response-algs", "none"},
		{"-jwt-response", "-jwt-response-algs", "ES256,"},
		{"-dpop", "on"},
		// Local validation of JWT access tokens.
		{"-validate", "local"},
		{"-jwt-audience", "https://api.example"},
		{"-validate", "hybrid", "-endpoint", ep, "-client-id", "a", "-client-secret", "b", "-jwt-audience", "https://api.example"},
		{"-validate", "hybrid", "-issuer", "https://as.example.com", "-client-id", "a", "-client-secret", "b"},
		{"-validate", "jwt", "-issuer", "https://as.example.com", "-client-id", "a", "-jwt-audience", "https://api.example"},
		{"-validate", "jwt", "-jwt-response"},
		{"-validate", "jwt", "-jwt-audience", "has space\x01"},
		// Userinfo.
		{"-userinfo", "-endpoint", ep, "-client-id", "a", "-client-secret", "b"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, logs bytes.Buffer
			err := run(ctx, append(args, "-addr", "127.0.0.1:0"), &out, &logs)
			if err == nil {
				t.Fatal("run accepted bad flags")
			}
			t.Log(err)
		})
	}
}

func TestServesSampleCurlAndStops(t *testing.T) {
	demotest.Serves(t, run, []string{"-addr", "127.0.0.1:0"}, "curl -H 'Authorization: Bearer ")
}

// The flags against an authorization server of the test's own, as they are
// used against a real one.
func TestAgainstAnAuthorizationServer(t *testing.T) {
	const id = "rs-quickstart"
	const secret = "a+b/c=d:e%f&g h-0123456789"
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "secret", secret+"\r\n")

	t.Run("secret from a file", func(t *testing.T) {
		t.Setenv(secretEnv, "wrong: the file wins")
		as := newAS(t, introspecttest.WithClient(id, secret))
		base := serve(t, "-endpoint", as.IntrospectionURL(), "-client-id", id, "-client-secret-file", secretFile)
		wantStatus(t, as, base, http.StatusOK)
		if m := as.LastRequest().AuthMethod; m != "client_secret_basic" {
			t.Errorf("method %q", m)
		}
	})
	t.Run("secret from the environment", func(t *testing.T) {
		t.Setenv(secretEnv, secret)
		as := newAS(t, introspecttest.WithClient(id, secret))
		base := serve(t, "-endpoint", as.IntrospectionURL(), "-client-id", id, "-auth-method", "client_secret_post")
		wantStatus(t, as, base, http.StatusOK)
		if m := as.LastRequest().AuthMethod; m != "client_secret_post" {
			t.Errorf("method %q", m)
		}
	})
	t.Run("raw Basic credentials", func(t *testing.T) {
		t.Setenv(secretEnv, secret)
		as := newAS(t, introspecttest.WithClient(id, secret), introspecttest.WithoutBasicFormDecoding())
		wantStatus(t, as, serve(t, "-endpoint", as.IntrospectionURL(), "-client-id", id, "-raw-basic-auth"), http.StatusOK)
		wantStatus(t, as, serve(t, "-endpoint", as.IntrospectionURL(), "-client-id", id), http.StatusServiceUnavailable)
	})
	t.Run("assertion audience", func(t *testing.T) {
		as := newAS(t, introspecttest.WithClient(id, secret))
		base := serve(t, "-issuer", as.Issuer, "-client-id", id, "-client-secret-file", secretFile,
			"-auth-method", "client_secret_jwt", "-assertion-alg", "HS384", "-assertion-audience", as.IntrospectionURL())
		wantStatus(t, as, base, http.StatusOK)
		a := as.LastRequest().Assertion
		if len(a.Audience) != 1 || a.Audience[0] != as.IntrospectionURL() || a.Alg != "HS384" {
			t.Errorf("assertion aud %q alg %q, want the endpoint URL and HS384", a.Audience, a.Alg)
		}
	})
	t.Run("private key", func(t *testing.T) {
		keyFile := writeRSAKey(t, dir)
		data, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		as := newAS(t, introspecttest.WithRegisteredClient(introspecttest.Client{ID: id, PublicKey: key.(*rsa.PrivateKey).Public()}))
		base := serve(t, "-endpoint", as.IntrospectionURL(), "-client-id", id, "-private-key", keyFile, "-assertion-alg", "PS256")
		wantStatus(t, as, base, http.StatusOK)
		if a := as.LastRequest().Assertion; a.Alg != "PS256" || len(a.Audience) != 1 || a.Audience[0] != as.IntrospectionURL() {
			t.Errorf("assertion alg %q aud %q", a.Alg, a.Audience)
		}
	})
	t.Run("bearer credential read on every call", func(t *testing.T) {
		as := newAS(t, introspecttest.WithRegisteredClient(introspecttest.Client{ID: id, Methods: []string{"bearer_token"}}))
		own := as.Issue(introspecttest.Claims{ClientID: id, Subject: id})
		tokenFile := writeFile(t, dir, "token", own+"\n")
		base := serve(t, "-endpoint", as.IntrospectionURL(), "-client-id", id, "-bearer-token-file", tokenFile)
		wantStatus(t, as, base, http.StatusOK)
		if m := as.LastRequest().AuthMethod; m != "bearer_token" {
			t.Errorf("method %q", m)
		}
		// A refreshed credential: the old one is revoked, the file replaced.
		as.Revoke(own)
		writeFile(t, dir, "token", as.Issue(introspecttest.Claims{ClientID: id, Subject: id}))
		wantStatus(t, as, base, http.StatusOK)
	})
	t.Run("signed answers in an unannounced algorithm", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		as := newAS(t, introspecttest.WithClient(id, secret), introspecttest.WithSigningKey(key, "PS384"),
			introspecttest.WithMetadata(func(m map[string]any) { delete(m, "introspection_signing_alg_values_supported") }))
		args := []string{"-issuer", as.Issuer, "-client-id", id, "-client-secret-file", secretFile, "-jwt-response"}
		wantStatus(t, as, serve(t, append(args, "-jwt-response-algs", "PS384")...), http.StatusOK)
		wantStatus(t, as, serve(t, args...), http.StatusServiceUnavailable)
	})
}

func newAS(t *testing.T, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	as := introspecttest.NewServer(opts...)
	t.Cleanup(as.Close)
	return as
}

var listening = regexp.MustCompile(`msg="protected API listening" url=(\S+)`)

// serve runs the quickstart with args until the test ends and returns the
// base URL of its API.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs exampledemo.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(args, "-addr", "127.0.0.1:0"), &out, &logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("stopped before listening: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantStatus asks the API about a fresh token of as.
func wantStatus(t *testing.T, as *introspecttest.Server, base string, want int) {
	t.Helper()
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	got, _, err := exampledemo.Do(context.Background(), http.MethodGet, base+"/api/me", exampledemo.Bearer(tok))
	if err != nil || got != want {
		t.Fatalf("GET /api/me: %d %v, want %d", got, err, want)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeClientCert writes a self-signed client certificate and its key, in
// two files and in one.
func writeClientCert(t *testing.T, dir string) (certFile, keyFile, bothFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "quickstart-api"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	return writeFile(t, dir, "cert.pem", certPEM), writeFile(t, dir, "key.pem", keyPEM), writeFile(t, dir, "both.pem", certPEM+keyPEM)
}

// writeRSAKey writes a fresh RSA key (PKCS #8 PEM).
func writeRSAKey(t *testing.T, dir string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "rsa.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
}
