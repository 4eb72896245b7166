package introspect_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

var rsaKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsaKeyOnce()
	require.NoError(t, err)
	return k
}

func newEdKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// clientCert makes a self-signed client certificate.
func clientCert(t testing.TB, cn string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

func TestClientAuthenticationMethods(t *testing.T) {
	const id = "rs-auth"
	const secret = "a:b/c+d%e&f=g h-0123456789abcdef0123456789abcdef0123456789"
	rsaKey, ecKey, edKey := newRSAKey(t), newECKey(t), newEdKey(t)
	tests := []struct {
		name      string
		client    introspecttest.Client
		opts      []introspect.Option
		want      string // method the server saw
		wantAlg   string // assertion alg, for the JWT methods
		wantKeyID string
	}{
		{name: "basic", client: introspecttest.Client{ID: id, Secret: secret, Methods: []string{"client_secret_basic"}},
			opts: []introspect.Option{introspect.WithClientCredentials(id, secret)}, want: "client_secret_basic"},
		{name: "post", client: introspecttest.Client{ID: id, Secret: secret, Methods: []string{"client_secret_post"}},
			opts: []introspect.Option{introspect.WithClientCredentials(id, secret), introspect.WithAuthMethod(introspect.ClientSecretPost)}, want: "client_secret_post"},
		{name: "client_secret_jwt HS256", client: introspecttest.Client{ID: id, Secret: secret, Methods: []string{"client_secret_jwt"}},
			opts: []introspect.Option{introspect.WithClientCredentials(id, secret), introspect.WithAuthMethod(introspect.ClientSecretJWT)},
			want: "client_secret_jwt", wantAlg: "HS256"},
		{name: "client_secret_jwt HS384", client: introspecttest.Client{ID: id, Secret: secret, Methods: []string{"client_secret_jwt"}},
			opts: []introspect.Option{introspect.WithClientCredentials(id, secret), introspect.WithAuthMethod(introspect.ClientSecretJWT), introspect.WithAssertionSigningAlg("HS384")},
			want: "client_secret_jwt", wantAlg: "HS384"},
		{name: "client_secret_jwt HS512 with a lazy secret", client: introspecttest.Client{ID: id, Secret: secret, Methods: []string{"client_secret_jwt"}},
			opts: []introspect.Option{
				introspect.WithClientCredentialsFunc(id, func(context.Context) (string, error) { return secret, nil }),
				introspect.WithAuthMethod(introspect.ClientSecretJWT), introspect.WithAssertionSigningAlg("HS512"),
			},
			want: "client_secret_jwt", wantAlg: "HS512"},
		{name: "private_key_jwt RS256", client: introspecttest.Client{ID: id, PublicKey: rsaKey.Public(), Methods: []string{"private_key_jwt"}},
			opts: []introspect.Option{introspect.WithPrivateKey(id, rsaKey, "rsa-1")}, want: "private_key_jwt", wantAlg: "RS256", wantKeyID: "rsa-1"},
		{name: "private_key_jwt PS256", client: introspecttest.Client{ID: id, PublicKey: rsaKey.Public(), Methods: []string{"private_key_jwt"}},
			opts: []introspect.Option{introspect.WithPrivateKey(id, rsaKey, ""), introspect.WithAssertionSigningAlg("PS256")}, want: "private_key_jwt", wantAlg: "PS256"},
		{name: "private_key_jwt ES256", client: introspecttest.Client{ID: id, PublicKey: ecKey.Public(), Methods: []string{"private_key_jwt"}},
			opts: []introspect.Option{introspect.WithPrivateKey(id, ecKey, "ec-1")}, want: "private_key_jwt", wantAlg: "ES256", wantKeyID: "ec-1"},
		{name: "private_key_jwt EdDSA", client: introspecttest.Client{ID: id, PublicKey: edKey.Public(), Methods: []string{"private_key_jwt"}},
			opts: []introspect.Option{introspect.WithPrivateKey(id, edKey, "ed-1")}, want: "private_key_jwt", wantAlg: "EdDSA", wantKeyID: "ed-1"},
		{name: "none", client: introspecttest.Client{ID: id, Methods: []string{"none"}},
			opts: []introspect.Option{introspect.WithClientCredentials(id, ""), introspect.WithAuthMethod(introspect.None)}, want: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := introspecttest.NewServer(introspecttest.WithRegisteredClient(tt.client))
			t.Cleanup(as.Close)
			c, err := introspect.NewClient(append([]introspect.Option{introspect.WithEndpoint(as.IntrospectionURL())}, tt.opts...)...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			for range 2 { // a second call proves the jti is fresh (the server refuses replays)
				assertActive(t, as, c)
			}
			last := as.LastRequest()
			assert.Equal(t, tt.want, last.AuthMethod)
			if tt.wantAlg == "" {
				return
			}
			assert.Equal(t, tt.wantAlg, last.Assertion.Alg)
			assert.Equal(t, tt.wantKeyID, last.Assertion.KeyID)
			assert.Equal(t, []string{as.IntrospectionURL()}, last.Assertion.Audience, "aud defaults to the endpoint without discovery")
			assert.LessOrEqual(t, last.Assertion.Lifetime, 60*time.Second)
			assert.Positive(t, last.Assertion.Lifetime)
			assert.NotEmpty(t, last.Assertion.JWTID)
		})
	}
}

func TestClientAssertionAudience(t *testing.T) {
	key := newECKey(t)
	as := discoAS(t)
	as.AddRegisteredClient(introspecttest.Client{ID: "pk", PublicKey: key.Public()})
	c := mustDiscoClient(t, as, introspect.WithPrivateKey("pk", key, ""))
	assertActive(t, as, c)
	assert.Equal(t, []string{as.Issuer}, as.LastRequest().Assertion.Audience, "aud is the issuer with discovery")

	c = mustDiscoClient(t, as, introspect.WithPrivateKey("pk", key, ""), introspect.WithAssertionAudience(as.IntrospectionURL()))
	assertActive(t, as, c)
	assert.Equal(t, []string{as.IntrospectionURL()}, as.LastRequest().Assertion.Audience)
}

func TestClientAssertionRefusedIsUnavailable(t *testing.T) {
	const secret = "the-real-secret-0123456789abcdef0123456789abcdef"
	as := introspecttest.NewServer(introspecttest.WithRegisteredClient(introspecttest.Client{ID: "c", Secret: secret}))
	t.Cleanup(as.Close)
	wrong := "wrong-secret-0123456789abcdef0123456789abcdef"
	c, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("c", wrong), introspect.WithAuthMethod(introspect.ClientSecretJWT))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	tok := as.Issue(introspecttest.Claims{Subject: "x"})
	_, err = c.Introspect(context.Background(), tok)
	var re *introspect.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
	assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
	assert.NotContains(t, err.Error(), wrong)
	assert.NotContains(t, err.Error(), tok)
}

func TestTLSClientAuth(t *testing.T) {
	cert, leaf := clientCert(t, "rs-mtls")
	as := introspecttest.NewServer(introspecttest.WithTLS(),
		introspecttest.WithRegisteredClient(introspecttest.Client{ID: "rs-mtls", Certificate: leaf}))
	t.Cleanup(as.Close)

	t.Run("discovery uses the mtls alias", func(t *testing.T) {
		c := mustTLSClient(t, as, introspect.WithIssuer(as.Issuer), introspect.WithClientCertificate("rs-mtls", cert))
		assertActive(t, as, c)
		last := as.LastRequest()
		assert.Equal(t, "tls_client_auth", last.AuthMethod)
		assert.Equal(t, "/mtls/introspect", last.Path)
	})
	t.Run("explicit endpoint", func(t *testing.T) {
		c := mustTLSClient(t, as, introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCertificate("rs-mtls", cert))
		assertActive(t, as, c)
		assert.Equal(t, "tls_client_auth", as.LastRequest().AuthMethod)
		assert.Equal(t, "/introspect", as.LastRequest().Path)
	})
	t.Run("another certificate is refused", func(t *testing.T) {
		other, _ := clientCert(t, "intruder")
		c := mustTLSClient(t, as, introspect.WithIssuer(as.Issuer), introspect.WithClientCertificate("rs-mtls", other))
		_, err := c.Introspect(context.Background(), as.Issue(introspecttest.Claims{Subject: "x"}))
		require.ErrorIs(t, err, introspect.ErrUnavailable)
	})
	t.Run("no certificate configured", func(t *testing.T) {
		_, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
			introspect.WithClientCredentials("rs-mtls", ""), introspect.WithAuthMethod(introspect.TLSClientAuth))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "client certificate")
	})
}

func mustTLSClient(t *testing.T, as *introspecttest.Server, opts ...introspect.Option) *introspect.Client {
	t.Helper()
	c, err := introspect.NewClient(append([]introspect.Option{introspect.WithHTTPClient(as.HTTPClient())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// An access token of the resource server's own as its credential (an AS
// like the one in seed 004).
func TestBearerTokenClientAuth(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithRegisteredClient(introspecttest.Client{ID: "spl-api", Methods: []string{"bearer_token"}}))
	t.Cleanup(as.Close)
	own := as.Issue(introspecttest.Claims{ClientID: "spl-api", Subject: "spl-api"})
	c, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithBearerCredentials("spl-api", func(context.Context) (string, error) { return own, nil }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	assertActive(t, as, c)
	assert.Equal(t, "bearer_token", as.LastRequest().AuthMethod)

	t.Run("source fails", func(t *testing.T) {
		c, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
			introspect.WithBearerCredentials("spl-api", func(context.Context) (string, error) { return "", errors.New("vault sealed") }))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = c.Introspect(context.Background(), own)
		require.ErrorIs(t, err, introspect.ErrClientConfig)
		assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
	})
	t.Run("revoked credential token", func(t *testing.T) {
		as.Revoke(own)
		_, err := c.Introspect(context.Background(), as.Issue(introspecttest.Claims{Subject: "y"}))
		var re *introspect.ResponseError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
		assert.NotContains(t, err.Error(), own)
	})
}

func TestClientAuthMisconfiguration(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t), newECKey(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ep := introspect.WithEndpoint("https://as.example/introspect")
	tests := []struct {
		name string
		opts []introspect.Option
		want string
	}{
		{"private_key_jwt without a key", []introspect.Option{introspect.WithClientCredentials("c", "s"), introspect.WithAuthMethod(introspect.PrivateKeyJWT)}, "private key"},
		{"client_secret_jwt without a secret", []introspect.Option{introspect.WithClientCredentials("c", ""), introspect.WithAuthMethod(introspect.ClientSecretJWT)}, "secret"},
		{"HMAC alg RS256", []introspect.Option{introspect.WithClientCredentials("c", "s"), introspect.WithAuthMethod(introspect.ClientSecretJWT), introspect.WithAssertionSigningAlg("RS256")}, "HS256"},
		{"EC alg for an RSA key", []introspect.Option{introspect.WithPrivateKey("c", rsaKey, ""), introspect.WithAssertionSigningAlg("ES256")}, "does not suit"},
		{"RSA alg for an EC key", []introspect.Option{introspect.WithPrivateKey("c", ecKey, ""), introspect.WithAssertionSigningAlg("PS256")}, "does not suit"},
		{"short RSA key", []introspect.Option{introspect.WithPrivateKey("c", small, "")}, "2048"},
		{"nil key", []introspect.Option{introspect.WithPrivateKey("c", nil, "")}, "no private key"},
		{"unknown method", []introspect.Option{introspect.WithClientCredentials("c", "s"), introspect.WithAuthMethod("magic")}, "unsupported"},
		{"bearer without source", []introspect.Option{introspect.WithBearerCredentials("c", nil)}, "nil function"},
		{"certificate without key", []introspect.Option{introspect.WithClientCertificate("c", tls.Certificate{})}, "private key"},
		{"empty assertion audience", []introspect.Option{introspect.WithClientCredentials("c", "s"), introspect.WithAssertionAudience("")}, "empty audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := introspect.NewClient(append([]introspect.Option{ep}, tt.opts...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "introspect: "), err.Error())
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	rsaKey, ecKey, edKey := newRSAKey(t), newECKey(t), newEdKey(t)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return pemOf("PRIVATE KEY", der)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	require.NoError(t, err)
	jwkOf := func(k any, kid string) []byte {
		jk, err := jwk.FromRaw(k)
		require.NoError(t, err)
		if kid != "" {
			require.NoError(t, jk.Set(jwk.KeyIDKey, kid))
		}
		b, err := json.Marshal(jk)
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		want    crypto.Signer
		wantKID string
		wantErr string
	}{
		{name: "PKCS #8 RSA", data: pkcs8(rsaKey), want: rsaKey},
		{name: "PKCS #1 RSA", data: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), want: rsaKey},
		{name: "SEC 1 EC", data: pemOf("EC PRIVATE KEY", sec1), want: ecKey},
		{name: "PKCS #8 Ed25519", data: pkcs8(edKey), want: edKey},
		{name: "JWK RSA with kid", data: jwkOf(rsaKey, "r1"), want: rsaKey, wantKID: "r1"},
		{name: "JWK EC", data: jwkOf(ecKey, "e1"), want: ecKey, wantKID: "e1"},
		{name: "JWK Ed25519", data: jwkOf(edKey, "d1"), want: edKey, wantKID: "d1"},
		{name: "JWK set of one", data: []byte(`{"keys":[` + string(jwkOf(ecKey, "s1")) + `]}`), want: ecKey, wantKID: "s1"},
		{name: "JWK set of two", data: []byte(`{"keys":[` + string(jwkOf(ecKey, "a")) + `,` + string(jwkOf(ecKey, "b")) + `]}`), wantErr: "exactly one"},
		{name: "public JWK", data: jwkOf(ecKey.Public(), ""), wantErr: "not a private key"},
		{name: "certificate PEM", data: pemOf("CERTIFICATE", []byte{1, 2, 3}), wantErr: "not a private key"},
		{name: "broken PEM body", data: pemOf("PRIVATE KEY", []byte("garbage")), wantErr: "does not parse"},
		{name: "garbage", data: []byte("hello"), wantErr: "neither PEM nor a JWK"},
		{name: "broken JWK", data: []byte(`{"kty":"EC","d":"c2VjcmV0"}`), wantErr: "JWK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, kid, err := introspect.ParsePrivateKey(tt.data)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "c2VjcmV0")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantKID, kid)
			assert.True(t, tt.want.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()))
		})
	}
}
