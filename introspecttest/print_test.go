package introspecttest_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/internal/printcheck"
	"github.com/introspect-go/introspect/introspecttest"
)

// Values the printing test plants in the server; no printed form may
// contain them.
const (
	printSecret     = "s3cr3t-Qz7WkPn4Xc"
	printHMACSecret = "s3cr3t-hmac-Lp5Nw"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if a client secret, a private
// key or an issued token shows, or if printing panics. A new exported type
// fails the test until it has an entry.
func TestPrintExportedTypes(t *testing.T) {
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	answerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs-cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, clientKey.Public(), clientKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	registered := introspecttest.Client{ID: "rs-all", Secret: printSecret, Methods: []string{"client_secret_post", "private_key_jwt"},
		PublicKey: clientKey.Public(), Certificate: cert}
	srv := introspecttest.NewServer(introspecttest.WithClient("rs", printSecret), introspecttest.WithRegisteredClient(registered))
	t.Cleanup(srv.Close)
	tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "read", Confirmation: map[string]string{"jkt": "abc"}})
	resp, err := http.PostForm(srv.IntrospectionURL(), url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {printSecret}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	last := srv.LastRequest()
	signer, _ := srv.SigningKey()
	serverKey, ok := signer.(*ecdsa.PrivateKey)
	require.True(t, ok, "the server signs with an EC key")

	claims := introspecttest.Claims{Subject: "alice", Scope: "read", Extra: map[string]any{"tenant": "t1"}}
	withKey := &introspecttest.SignedAnswer{Header: map[string]any{"typ": "token-introspection+jwt"},
		Claims: map[string]any{"iss": srv.Issuer, "token_introspection": map[string]any{"active": true}}, Alg: "ES256", Key: answerKey}
	withHMAC := introspecttest.SignedAnswer{Alg: "HS256", Key: []byte(printHMACSecret), Body: "x.y.z"}
	fault := introspecttest.Latency(time.Millisecond)
	dpopEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	dpopKey, err := introspecttest.NewDPoPKeyFrom(dpopEC, "")
	require.NoError(t, err)
	_, dpopEd, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	dpopEdKey, err := introspecttest.NewDPoPKeyFrom(dpopEd, "")
	require.NoError(t, err)
	dpopRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	dpopRSAKey, err := introspecttest.NewDPoPKeyFrom(dpopRSA, "RS256")
	require.NoError(t, err)

	entries := map[string]printcheck.Entry{
		"AssertionInfo": {Samples: []any{last.Assertion, introspecttest.AssertionInfo{Alg: "ES256", KeyID: "k", JWTID: "j"}},
			Reason: "what an assertion said, without its signature"},
		"Claims":       {Samples: []any{claims, &claims}, Reason: "the claims of a token to issue, not the token"},
		"Client":       {Samples: []any{registered, &registered, introspecttest.Client{ID: "rs", Secret: printSecret}}},
		"Fault":        {Samples: []any{fault, &fault}, Reason: "a name and functions"},
		"Option":       {Reason: "a function type"},
		"Request":      {Samples: []any{last, &last}, Reason: "the last request, without the token or the secret"},
		"Server":       {Samples: []any{srv, (*introspecttest.Server)(nil)}},
		"SignedAnswer": {Samples: []any{withKey, *withKey, withHMAC, &withHMAC}},
		"DPoPKey": {Samples: []any{dpopKey, *dpopKey, dpopEdKey, dpopRSAKey, *dpopRSAKey, (*introspecttest.DPoPKey)(nil),
			&introspecttest.DPoPKey{}}},
		"DPoPProofOption": {Reason: "a function type"},
	}
	bad := printcheck.StringForms("client secret", printSecret)
	bad = append(bad, printcheck.StringForms("HMAC key", printHMACSecret)...)
	bad = append(bad, printcheck.StringForms("token", tok)...)
	bad = append(bad, printcheck.KeyForms(t, "client key", clientKey)...)
	bad = append(bad, printcheck.KeyForms(t, "signed answer key", answerKey)...)
	bad = append(bad, printcheck.KeyForms(t, "server signing key", serverKey)...)
	bad = append(bad, printcheck.KeyForms(t, "DPoP key", dpopEC)...)
	bad = append(bad, printcheck.BytesForms("DPoP Ed25519 seed", dpopEd.Seed())...)
	bad = append(bad, printcheck.BytesForms("DPoP RSA private exponent", dpopRSA.D.Bytes())...)
	bad = append(bad, printcheck.BytesForms("DPoP RSA prime", dpopRSA.Primes[0].Bytes())...)
	bad = append(bad, printcheck.StringForms("DPoP RSA prime in decimal", dpopRSA.Primes[0].String())...)
	printcheck.Check(t, ".", entries, bad)
}
