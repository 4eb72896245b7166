package introspect_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

func jwtClient(t *testing.T, as *introspecttest.Server, opts ...introspect.Option) *introspect.Client {
	t.Helper()
	return mustDiscoClient(t, as, append([]introspect.Option{introspect.WithJWTResponse()}, opts...)...)
}

func TestJWTResponse(t *testing.T) {
	as := discoAS(t)
	c := jwtClient(t, as)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read write", ClientID: "app", Audience: []string{"api"},
		Extra: map[string]any{"acr": "1"}})
	ti, err := c.Introspect(context.Background(), tok)
	require.NoError(t, err)
	assert.True(t, ti.Active)
	assert.Equal(t, "alice", ti.Subject)
	assert.Equal(t, []string{"read", "write"}, ti.Scopes)
	assert.Equal(t, []string{"api"}, ti.Audience)
	assert.Equal(t, as.Issuer, ti.Issuer)
	assert.JSONEq(t, `"1"`, string(ti.Extra["acr"]))
	assert.Equal(t, "application/token-introspection+jwt", as.LastRequest().Accept)

	as.Revoke(tok)
	ti, err = c.Introspect(context.Background(), tok)
	require.ErrorIs(t, err, introspect.ErrInactiveToken)
	assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
	assert.False(t, ti.Active)

	ti, err = c.Introspect(context.Background(), "never-issued")
	require.ErrorIs(t, err, introspect.ErrInactiveToken)
	assert.False(t, ti.Active)
}

// Every forged, mismatched or unusable signed answer fails closed with 503.
func TestJWTResponseBadInput(t *testing.T) {
	rsaKey := newRSAKey(t)
	as := discoAS(t)
	pub, _ := as.SigningKey()
	pubDER, err := x509.MarshalPKIXPublicKey(pub.Public())
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name    string
		hook    func(a *introspecttest.SignedAnswer)
		wantErr error
		want    string
	}{
		{name: "alg none", hook: func(a *introspecttest.SignedAnswer) { a.Alg = "none" }, want: "algorithm"},
		{name: "HS256 keyed with the public key", hook: func(a *introspecttest.SignedAnswer) { a.Alg, a.Key = "HS256", pubPEM }, want: "algorithm"},
		{name: "HS256 keyed with the public key DER", hook: func(a *introspecttest.SignedAnswer) { a.Alg, a.Key = "HS256", pubDER }, want: "algorithm"},
		{name: "alg not advertised", hook: func(a *introspecttest.SignedAnswer) { a.Alg, a.Key = "RS256", rsaKey }, want: "algorithm"},
		{name: "header alg differs from the signature", hook: func(a *introspecttest.SignedAnswer) { a.Header["alg"] = "ES384" }, want: "algorithm"},
		{name: "typ JWT", hook: func(a *introspecttest.SignedAnswer) { a.Header["typ"] = "JWT" }, want: "typ"},
		{name: "no typ", hook: func(a *introspecttest.SignedAnswer) { a.Header["typ"] = nil }, want: "typ"},
		{name: "typ in upper-case member name only", hook: func(a *introspecttest.SignedAnswer) {
			a.Header["typ"] = nil
			a.Header["TYP"] = "token-introspection+jwt"
		}, want: "typ"},
		{name: "crit header", hook: func(a *introspecttest.SignedAnswer) { a.Header["crit"] = []string{"exp"} }, want: "critical"},
		{name: "wrong iss", hook: func(a *introspecttest.SignedAnswer) { a.Claims["iss"] = "https://evil.example" }, want: "iss"},
		{name: "no iss", hook: func(a *introspecttest.SignedAnswer) { delete(a.Claims, "iss") }, want: "iss"},
		{name: "wrong aud", hook: func(a *introspecttest.SignedAnswer) { a.Claims["aud"] = "someone-else" }, want: "aud"},
		{name: "no aud", hook: func(a *introspecttest.SignedAnswer) { delete(a.Claims, "aud") }, want: "aud"},
		{name: "stale iat", hook: func(a *introspecttest.SignedAnswer) { a.Claims["iat"] = time.Now().Add(-10 * time.Minute).Unix() }, want: "iat"},
		{name: "iat in the future", hook: func(a *introspecttest.SignedAnswer) { a.Claims["iat"] = time.Now().Add(10 * time.Minute).Unix() }, want: "iat"},
		{name: "no iat", hook: func(a *introspecttest.SignedAnswer) { delete(a.Claims, "iat") }, want: "iat"},
		{name: "expired", hook: func(a *introspecttest.SignedAnswer) { a.Claims["exp"] = time.Now().Add(-time.Minute).Unix() }, want: "expired"},
		{name: "no token_introspection", hook: func(a *introspecttest.SignedAnswer) { delete(a.Claims, "token_introspection") }, want: "token_introspection"},
		{name: "token_introspection not an object", hook: func(a *introspecttest.SignedAnswer) { a.Claims["token_introspection"] = "yes" }, want: "token_introspection"},
		{name: "member given twice inside", hook: func(a *introspecttest.SignedAnswer) {
			a.Claims["token_introspection"] = json.RawMessage(`{"active":false,"active":true,"sub":"mallory"}`)
		}, want: "given twice"},
		{name: "active as a string inside", hook: func(a *introspecttest.SignedAnswer) {
			a.Claims["token_introspection"] = map[string]any{"active": "true"}
		}, want: "boolean"},
		{name: "signed by another key with the server's kid", hook: func(a *introspecttest.SignedAnswer) { a.Key = newECKey(t) }, want: "signature"},
		{name: "plain JSON answer", hook: func(a *introspecttest.SignedAnswer) {
			a.ContentType, a.Body = "application/json", `{"active":true,"sub":"mallory"}`
		}, want: "plain JSON"},
		{name: "JWE", hook: func(a *introspecttest.SignedAnswer) {
			a.Body = "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIiwidHlwIjoidG9rZW4taW50cm9zcGVjdGlvbitqd3QifQ.a.b.c.d"
		}, wantErr: introspect.ErrEncryptedResponse},
		{name: "not a JWS", hook: func(a *introspecttest.SignedAnswer) { a.Body = "hello" }, want: "compact"},
		{name: "header not base64url", hook: func(a *introspecttest.SignedAnswer) { a.Body = "***.e30.sig" }, want: "base64url"},
		{name: "other content type", hook: func(a *introspecttest.SignedAnswer) { a.ContentType = "text/plain" }, want: "content type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as.SetSignedAnswerHook(tt.hook)
			t.Cleanup(func() { as.SetSignedAnswerHook(nil) })
			mw := newJWTMiddleware(t, as)
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			for range 2 { // the failure is not cached
				ti, err := mw.Client().Introspect(context.Background(), tok)
				assert.Nil(t, ti)
				require.ErrorIs(t, err, introspect.ErrUnavailable)
				assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				assert.Contains(t, err.Error(), tt.want)
				assert.NotContains(t, err.Error(), tok)
				assert.NotContains(t, err.Error(), discoSecret)
				assert.Equal(t, http.StatusServiceUnavailable, serveBearer(mw.Handler(okHandler), tok))
			}
		})
	}
}

func newJWTMiddleware(t *testing.T, as *introspecttest.Server, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	mw, err := introspect.New(append([]introspect.Option{
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(discoClientID, discoSecret),
		introspect.WithJWTResponse(),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

// An unknown kid refreshes the keys once (a rotation works), and forged kids
// cause no refresh storm.
func TestJWTResponseUnknownKid(t *testing.T) {
	clk := newFakeClock()
	as := discoAS(t, introspecttest.WithClock(clk.Now))
	c := jwtClient(t, as, introspect.WithClock(clk.Now), introspect.WithKeyRefreshLimit(time.Minute))
	assertActive(t, as, c)
	require.Equal(t, int64(1), as.JWKSCalls())

	// Rotation right after a fetch: the refresh limit holds, the answer fails.
	as.RotateSigningKey()
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	_, err := c.Introspect(context.Background(), tok)
	require.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.Contains(t, err.Error(), "kid")
	assert.Equal(t, int64(1), as.JWKSCalls())

	// Later, one refresh finds the new key.
	clk.Advance(61 * time.Second)
	ti, err := c.Introspect(context.Background(), tok)
	require.NoError(t, err)
	assert.True(t, ti.Active)
	assert.Equal(t, int64(2), as.JWKSCalls())

	// Forged kids under load: at most one refresh per limit.
	as.SetSignedAnswerHook(func(a *introspecttest.SignedAnswer) { a.Header["kid"] = "forged" })
	clk.Advance(61 * time.Second)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Introspect(context.Background(), tok)
			assert.ErrorIs(t, err, introspect.ErrUnavailable)
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(3), as.JWKSCalls(), "one refresh for fifty forged kids")
}

func TestJWKSBadDocuments(t *testing.T) {
	many := `{"keys":[` + strings.Repeat(`{"kty":"oct","k":"AAAA"},`, 150) + `{"kty":"oct","k":"AAAA"}]}`
	tests := []struct {
		name  string
		fault introspecttest.Fault
	}{
		{"oversized", introspecttest.Oversized(2 << 20)},
		{"non-JSON", introspecttest.Respond(http.StatusOK, "text/html", "<html></html>")},
		{"not a key set", introspecttest.Respond(http.StatusOK, "application/json", `{"kty":"EC"}`)},
		{"too many keys", introspecttest.Respond(http.StatusOK, "application/json", many)},
		{"server error", introspecttest.Respond(http.StatusInternalServerError, "application/json", `{}`)},
		{"empty key set", introspecttest.Respond(http.StatusOK, "application/json", `{"keys":[]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t)
			as.SetJWKSFault(tt.fault)
			c := jwtClient(t, as)
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			_, err := c.Introspect(context.Background(), tok)
			require.ErrorIs(t, err, introspect.ErrUnavailable)
			assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
		})
	}
}

func TestJWTResponseAlgorithmsFromMetadata(t *testing.T) {
	tests := []struct {
		name string
		algs any
		ok   bool
	}{
		{"only none and HMAC", []string{"none", "HS256"}, false},
		{"server's algorithm among others", []string{"HS256", "ES256", "RS256"}, true},
		{"empty list", []string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t, introspecttest.WithMetadata(func(m map[string]any) {
				m["introspection_signing_alg_values_supported"] = tt.algs
			}))
			c := jwtClient(t, as)
			_, err := c.Introspect(context.Background(), as.Issue(introspecttest.Claims{Subject: "a"}))
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, introspect.ErrDiscovery)
		})
	}
}

// FuzzJWTResponse feeds arbitrary answers to the signed-answer check: it must
// never panic, and must accept only answers signed by the test key.
func FuzzJWTResponse(f *testing.F) {
	jwks, err := os.ReadFile(filepath.Join("testdata", "jwtresponse", "jwks.json"))
	require.NoError(f, err)
	verify, err := introspect.NewJWTResponseVerifier("https://as.example", "rs", jwks, []string{"ES256"},
		time.Unix(1767225600, 0)) // the iat of the seeds
	require.NoError(f, err)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "jwtresponse", "*.jwt"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		ti, err := verify(tok)
		if err == nil && ti == nil {
			t.Fatal("nil verdict without an error")
		}
		if err != nil && ti != nil {
			t.Fatal("verdict with an error")
		}
	})
}

// The fuzz seeds are what they claim to be: the check is not vacuous.
func TestJWTResponseSeeds(t *testing.T) {
	jwks, err := os.ReadFile(filepath.Join("testdata", "jwtresponse", "jwks.json"))
	require.NoError(t, err)
	at := time.Unix(1767225600, 0)
	verify, err := introspect.NewJWTResponseVerifier("https://as.example", "rs", jwks, []string{"ES256"}, at)
	require.NoError(t, err)
	tests := []struct {
		file    string
		active  bool
		wantErr error
	}{
		{"active.jwt", true, nil},
		{"inactive.jwt", false, nil},
		{"no-kid.jwt", true, nil},
		{"aud-array.jwt", true, nil},
		{"jwe.jwt", false, introspect.ErrEncryptedResponse},
		{"none.jwt", false, introspect.ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "jwtresponse", tt.file))
			require.NoError(t, err)
			ti, err := verify(b)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.active, ti.Active)
		})
	}
	// A valid seed checked at another client or too late fails.
	b, err := os.ReadFile(filepath.Join("testdata", "jwtresponse", "active.jwt"))
	require.NoError(t, err)
	other, err := introspect.NewJWTResponseVerifier("https://as.example", "someone-else", jwks, []string{"ES256"}, at)
	require.NoError(t, err)
	_, err = other(b)
	require.ErrorIs(t, err, introspect.ErrMalformedResponse)
	late, err := introspect.NewJWTResponseVerifier("https://as.example", "rs", jwks, []string{"ES256"}, at.Add(time.Hour))
	require.NoError(t, err)
	_, err = late(b)
	require.ErrorIs(t, err, introspect.ErrMalformedResponse)
}

func TestJWTResponseServerAlgorithms(t *testing.T) {
	tests := []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"RS256", newRSAKey(t), "RS256"},
		{"PS256", newRSAKey(t), "PS256"},
		{"ES256", newECKey(t), "ES256"},
		{"EdDSA", newEdKey(t), "EdDSA"},
		{"Ed25519", newEdKey(t), "Ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t, introspecttest.WithSigningKey(tt.key, tt.alg))
			c := jwtClient(t, as, introspect.WithKeyRefreshLimit(time.Nanosecond))
			assertActive(t, as, c)
			as.RotateSigningKey() // new kid: one refresh finds it
			assertActive(t, as, c)
			assert.Equal(t, int64(2), as.JWKSCalls())
		})
	}
}

// WithJWTResponseAlgorithms sets the algorithms of a server that does not
// announce them, and replaces the list of one that does.
func TestJWTResponseAlgorithmsOption(t *testing.T) {
	unannounced := introspecttest.WithMetadata(func(m map[string]any) {
		delete(m, "introspection_signing_alg_values_supported")
	})
	tests := []struct {
		name   string
		server []introspecttest.Option
		algs   []string // nil: the option is not given
		ok     bool
	}{
		{name: "PS384 unannounced, default RS256 only", server: []introspecttest.Option{unannounced,
			introspecttest.WithSigningKey(newRSAKey(t), "PS384")}},
		{name: "PS384 unannounced, configured", server: []introspecttest.Option{unannounced,
			introspecttest.WithSigningKey(newRSAKey(t), "PS384")}, algs: []string{"RS256", "PS384"}, ok: true},
		{name: "ES256 unannounced, configured", server: []introspecttest.Option{unannounced}, algs: []string{"ES256"}, ok: true},
		{name: "EdDSA unannounced, configured", server: []introspecttest.Option{unannounced,
			introspecttest.WithSigningKey(newEdKey(t), "EdDSA")}, algs: []string{"EdDSA"}, ok: true},
		{name: "the list replaces the server's", algs: []string{"PS256"}},
		{name: "the list replaces an unusable one", server: []introspecttest.Option{introspecttest.WithMetadata(func(m map[string]any) {
			m["introspection_signing_alg_values_supported"] = []string{"none", "HS256"}
		})}, algs: []string{"ES256"}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t, tt.server...)
			var opts []introspect.Option
			if tt.algs != nil {
				opts = append(opts, introspect.WithJWTResponseAlgorithms(tt.algs...))
			}
			c := jwtClient(t, as, opts...)
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})
			ti, err := c.Introspect(context.Background(), tok)
			if tt.ok {
				require.NoError(t, err)
				assert.True(t, ti.Active)
				return
			}
			require.ErrorIs(t, err, introspect.ErrUnavailable)
			assert.Contains(t, err.Error(), "algorithm not allowed")
		})
	}
}

func TestJWTResponseAlgorithmsMisconfiguration(t *testing.T) {
	base := []introspect.Option{introspect.WithIssuer("https://as.example"), introspect.WithClientCredentials("a", "b")}
	tests := []struct {
		name string
		opts []introspect.Option
		want string
	}{
		{"none", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("ES256", "none")}, "none is never accepted"},
		{"HS256", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("HS256")}, "HS256 is never accepted"},
		{"HS384", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("HS384")}, "HS384 is never accepted"},
		{"HS512 in lower case", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("hs512")}, "hs512 is never accepted"},
		{"unknown", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("RS257")}, `unknown algorithm "RS257"`},
		{"wrong case", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("es256")}, `unknown algorithm "es256"`},
		{"empty name", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("")}, `unknown algorithm ""`},
		{"no algorithm", []introspect.Option{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms()}, "no algorithm"},
		{"without WithJWTResponse", []introspect.Option{introspect.WithJWTResponseAlgorithms("ES256")}, "needs WithJWTResponse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := introspect.New(append(base, tt.opts...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "introspect: WithJWTResponseAlgorithms")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	// WithJWTResponse before or after the algorithms: both fine.
	for _, opts := range [][]introspect.Option{
		{introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("ES256")},
		{introspect.WithJWTResponseAlgorithms("ES256"), introspect.WithJWTResponse()},
		{introspect.WithJWTResponseAlgorithms("ES256"), introspect.WithJWTResponseAlgorithms("PS256"), introspect.WithJWTResponse()},
	} {
		mw, err := introspect.New(append(base, opts...)...)
		require.NoError(t, err)
		require.NoError(t, mw.Close())
	}
}
