package introspect_test

import (
	"bytes"
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
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
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
	wrongRSA := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: rsaKey.N, E: 3}, D: rsaKey.D, Primes: rsaKey.Primes}
	wrongEC := new(ecdsa.PrivateKey)
	*wrongEC = *newECKey(t)
	wrongEC.PublicKey = ecKey.PublicKey
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
		{"zero RSA key", []introspect.Option{introspect.WithPrivateKey("c", &rsa.PrivateKey{}, "")}, "incomplete RSA private key"},
		{"nil RSA key", []introspect.Option{introspect.WithPrivateKey("c", (*rsa.PrivateKey)(nil), "")}, "incomplete RSA private key"},
		{"RSA public half only", []introspect.Option{introspect.WithPrivateKey("c", &rsa.PrivateKey{PublicKey: rsaKey.PublicKey}, "")}, "incomplete RSA private key"},
		{"EC public half only", []introspect.Option{introspect.WithPrivateKey("c", &ecdsa.PrivateKey{PublicKey: ecKey.PublicKey}, "")}, "incomplete EC private key"},
		{"Ed25519 seed", []introspect.Option{introspect.WithPrivateKey("c", ed25519.PrivateKey(newEdKey(t).Seed()), "")}, "an Ed25519 private key has 32 bytes, not 64"},
		{"RSA key with a wrong exponent", []introspect.Option{introspect.WithPrivateKey("c", wrongRSA, "")}, "invalid RSA private key"},
		{"EC key with another key's public point", []introspect.Option{introspect.WithPrivateKey("c", wrongEC, "")}, "invalid EC private key"},
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
		jk, err := jwk.Import(k)
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
		// As openssl ecparam -name prime256v1 -genkey writes it.
		{name: "SEC 1 EC after its parameters", data: append(pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}), pemOf("EC PRIVATE KEY", sec1)...), want: ecKey},
		{name: "EC parameters alone", data: pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}), wantErr: "EC parameters and no private key"},
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

// An empty secret with a method that needs one is an error from the
// constructor, naming the option and the method: a secret read from an unset
// environment variable must not start a service that answers 503 to every
// request.
func TestEmptySecretRefused(t *testing.T) {
	empty := introspect.WithClientCredentials("my-api", "")
	tests := []struct {
		name string
		opts []introspect.Option
		want []string
	}{
		{"no method", []introspect.Option{introspect.WithEndpoint("https://as.example/introspect"), empty},
			[]string{"WithClientCredentials", "client_secret_basic", "empty", "WithAuthMethod"}},
		{"no method, discovery", []introspect.Option{introspect.WithIssuer("https://as.example"), empty},
			[]string{"WithClientCredentials", "client_secret_basic"}},
		{"client_secret_basic", []introspect.Option{introspect.WithEndpoint("https://as.example/introspect"), empty,
			introspect.WithAuthMethod(introspect.ClientSecretBasic)}, []string{"WithClientCredentials", "client_secret_basic"}},
		{"client_secret_post", []introspect.Option{introspect.WithEndpoint("https://as.example/introspect"), empty,
			introspect.WithAuthMethod(introspect.ClientSecretPost)}, []string{"WithClientCredentials", "client_secret_post"}},
		{"client_secret_jwt", []introspect.Option{introspect.WithEndpoint("https://as.example/introspect"), empty,
			introspect.WithAuthMethod(introspect.ClientSecretJWT)}, []string{"WithClientCredentials", "client_secret_jwt"}},
		{"client_secret_post, discovery", []introspect.Option{introspect.WithIssuer("https://as.example"), empty,
			introspect.WithAuthMethod(introspect.ClientSecretPost)}, []string{"WithClientCredentials", "client_secret_post"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, construct := range map[string]func(...introspect.Option) (io.Closer, error){
				"New":       func(o ...introspect.Option) (io.Closer, error) { return introspect.New(o...) },
				"NewClient": func(o ...introspect.Option) (io.Closer, error) { return introspect.NewClient(o...) },
			} {
				c, err := construct(tt.opts...)
				if err == nil {
					_ = c.Close()
					t.Fatalf("%s accepted an empty secret", name)
				}
				assert.True(t, strings.HasPrefix(err.Error(), "introspect: "), err.Error())
				for _, w := range tt.want {
					assert.Contains(t, err.Error(), w, name)
				}
			}
		})
	}
}

// What the constructor cannot check about secrets: a public client, a secret
// read lazily and the credentials of a ClientStore. The last two fail their
// call with ErrClientConfig, without asking the server.
func TestEmptySecretNotKnownToNew(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithRegisteredClient(introspecttest.Client{ID: "public", Methods: []string{"none"}}),
		introspecttest.WithClient("confidential", "s3cret"))
	t.Cleanup(as.Close)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})

	t.Run("public client", func(t *testing.T) {
		c, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
			introspect.WithClientCredentials("public", ""), introspect.WithAuthMethod(introspect.None))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		assertActive(t, as, c)
		assert.Equal(t, "none", as.LastRequest().AuthMethod)
	})
	for _, m := range []introspect.AuthMethod{"", introspect.ClientSecretBasic, introspect.ClientSecretPost, introspect.ClientSecretJWT} {
		t.Run("lazy secret turns out empty, "+string(m), func(t *testing.T) {
			opts := []introspect.Option{introspect.WithEndpoint(as.IntrospectionURL()),
				introspect.WithClientCredentialsFunc("confidential", func(context.Context) (string, error) { return "", nil })}
			if m != "" {
				opts = append(opts, introspect.WithAuthMethod(m))
			}
			c, err := introspect.NewClient(opts...)
			require.NoError(t, err, "a secret read later cannot be checked now")
			t.Cleanup(func() { _ = c.Close() })
			before := as.Calls()
			_, err = c.Introspect(context.Background(), tok)
			require.ErrorIs(t, err, introspect.ErrClientConfig)
			assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
			assert.Contains(t, err.Error(), "secret function returned an empty one")
			assert.Equal(t, before, as.Calls(), "the server is not asked with an empty secret")
		})
	}
	t.Run("client store", func(t *testing.T) {
		store := introspect.StaticClientStore{Endpoint: as.IntrospectionURL(),
			Credentials: introspect.Credentials{ClientID: "confidential", AuthMethod: introspect.ClientSecretPost}}
		mw, err := introspect.New(introspect.WithClientStore(store))
		require.NoError(t, err, "a store's credentials are known per request only")
		t.Cleanup(func() { _ = mw.Close() })
		before := as.Calls()
		assert.Equal(t, http.StatusServiceUnavailable, serveBearer(mw.Handler(okHandler), tok))
		ti, err := mw.VerifyAs(context.Background(), introspect.ClientContext(store), tok)
		assert.Nil(t, ti)
		require.ErrorIs(t, err, introspect.ErrClientConfig)
		assert.Contains(t, err.Error(), "client_secret_post needs a client secret")
		assert.Equal(t, before, as.Calls())
	})
}

// A wrong secret cannot be known before the server is asked: the request
// gets a 503, and the failure reaches Hooks.IntrospectDone and the WARN log
// as the server's refusal, without the secret.
func TestWrongSecretIsReported(t *testing.T) {
	const wrong = "wrong+secret/with=reserved%chars"
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "the-right-secret"))
	t.Cleanup(as.Close)
	var logs bytes.Buffer
	var mu sync.Mutex
	var done []error
	mw, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("rs", wrong),
		introspect.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		introspect.WithHooks(&introspect.Hooks{IntrospectDone: func(_ context.Context, info introspect.IntrospectDoneInfo) {
			mu.Lock()
			defer mu.Unlock()
			done = append(done, info.Err)
		}}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	assert.Equal(t, http.StatusServiceUnavailable, serveBearer(mw.Handler(okHandler), as.Issue(introspecttest.Claims{Subject: "a"})))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, done, 1)
	var re *introspect.ResponseError
	require.ErrorAs(t, done[0], &re)
	assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
	assert.Equal(t, "invalid_client", re.ErrorCode)
	assert.Contains(t, logs.String(), "level=WARN msg=\"introspect: introspection failed\"")
	assert.Contains(t, logs.String(), "invalid_client")
	assert.NotContains(t, logs.String(), wrong)
	assert.NotContains(t, logs.String(), url.QueryEscape(wrong))
}

// RFC 6749 §2.3.1 form-encoding is the default; WithRawBasicAuth sends the
// credentials as they are, for servers that do not form-decode them. A
// secret with reserved characters tells the two apart: each client works
// against its kind of server only.
func TestRawBasicAuth(t *testing.T) {
	const id = "rs-basic"
	const secret = "a+b/c=d:e%f&g h%zz-0123456789abcdef"
	for _, tt := range []struct {
		name      string
		rawServer bool
		rawClient bool
		ok        bool
	}{
		{"form-encoded to a decoding server", false, false, true},
		{"raw to a server that does not decode", true, true, true},
		{"form-encoded to a server that does not decode", true, false, false},
		{"raw to a decoding server", false, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sopts := []introspecttest.Option{introspecttest.WithRegisteredClient(introspecttest.Client{ID: id, Secret: secret,
				Methods: []string{"client_secret_basic"}})}
			if tt.rawServer {
				sopts = append(sopts, introspecttest.WithoutBasicFormDecoding())
			}
			as := introspecttest.NewServer(sopts...)
			t.Cleanup(as.Close)
			opts := []introspect.Option{introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials(id, secret)}
			if tt.rawClient {
				opts = append(opts, introspect.WithRawBasicAuth())
			}
			c, err := introspect.NewClient(opts...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			ti, err := c.Introspect(context.Background(), tok)
			assert.Equal(t, "client_secret_basic", as.LastRequest().AuthMethod)
			if tt.ok {
				require.NoError(t, err)
				assert.True(t, ti.Active)
				return
			}
			var re *introspect.ResponseError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
			assert.NotContains(t, err.Error(), secret)
		})
	}

	t.Run("discovery", func(t *testing.T) {
		as := introspecttest.NewServer(introspecttest.WithClient(id, secret), introspecttest.WithoutBasicFormDecoding())
		t.Cleanup(as.Close)
		c := mustDiscoClient(t, as, introspect.WithClientCredentials(id, secret), introspect.WithRawBasicAuth())
		assertActive(t, as, c)
		assert.Equal(t, "client_secret_basic", as.LastRequest().AuthMethod)
	})
	t.Run("another method set", func(t *testing.T) {
		_, err := introspect.NewClient(introspect.WithEndpoint("https://as.example/introspect"), introspect.WithClientCredentials(id, secret),
			introspect.WithRawBasicAuth(), introspect.WithAuthMethod(introspect.ClientSecretPost))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "introspect: WithRawBasicAuth applies to client_secret_basic, and the method is client_secret_post")
		assert.NotContains(t, err.Error(), secret)
	})
	t.Run("another method chosen from the metadata", func(t *testing.T) {
		as := introspecttest.NewServer(introspecttest.WithClient(id, secret), introspecttest.WithoutBasicFormDecoding(),
			introspecttest.WithMetadata(func(m map[string]any) {
				m["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
			}))
		t.Cleanup(as.Close)
		c := mustDiscoClient(t, as, introspect.WithClientCredentials(id, secret), introspect.WithRawBasicAuth())
		assertActive(t, as, c)
		assert.Equal(t, "client_secret_post", as.LastRequest().AuthMethod)
	})
	t.Run("client ID with a colon", func(t *testing.T) {
		_, err := introspect.New(introspect.WithEndpoint("https://as.example/introspect"),
			introspect.WithClientCredentials("urn:rs:api", secret), introspect.WithRawBasicAuth())
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "introspect: WithRawBasicAuth: "), err.Error())
		assert.Contains(t, err.Error(), "':'")
		assert.NotContains(t, err.Error(), secret)

		// Form-encoded, the same client ID is fine.
		as := introspecttest.NewServer(introspecttest.WithClient("urn:rs:api", secret))
		t.Cleanup(as.Close)
		c, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials("urn:rs:api", secret))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		assertActive(t, as, c)
	})
	t.Run("client store", func(t *testing.T) {
		as := introspecttest.NewServer(introspecttest.WithClient(id, secret), introspecttest.WithoutBasicFormDecoding())
		t.Cleanup(as.Close)
		tok := as.Issue(introspecttest.Claims{Subject: "alice"})
		for _, tc := range []struct {
			clientID string
			ok       bool
		}{{id, true}, {"urn:rs:api", false}} {
			store := introspect.StaticClientStore{Endpoint: as.IntrospectionURL(), Credentials: introspect.Credentials{
				ClientID: tc.clientID, ClientSecret: secret, AuthMethod: introspect.ClientSecretBasic, RawBasicAuth: true}}
			mw, err := introspect.New(introspect.WithClientStore(store))
			require.NoError(t, err)
			t.Cleanup(func() { _ = mw.Close() })
			ti, err := mw.VerifyAs(context.Background(), introspect.ClientContext(store), tok)
			if tc.ok {
				require.NoError(t, err)
				assert.True(t, ti.Active)
				continue
			}
			require.ErrorIs(t, err, introspect.ErrClientConfig)
			assert.Contains(t, err.Error(), "WithRawBasicAuth")
		}
	})
}
