package introspect_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/printcheck"
	"github.com/introspect-go/introspect/introspecttest"
)

// The fixed time of the DPoP tests, and values planted in proofs that no
// error text may repeat.
var dpopNow = time.Unix(1_700_000_000, 0)

const (
	dpopURL     = "https://api.example/v1/files"
	dpopToken   = "planted-token-Vx4Lm9"
	dpopPrefix  = "introspect: token is not active: invalid DPoP proof: "
	plantedMark = "planted"
)

func dpopClock() time.Time { return dpopNow }

// newDPoPVerifier returns a verifier on the tests' clock.
func newDPoPVerifier(t testing.TB, opts ...introspect.DPoPOption) *introspect.DPoPVerifier {
	t.Helper()
	v, err := introspect.NewDPoPVerifier(append([]introspect.DPoPOption{introspect.WithDPoPClock(dpopClock)}, opts...)...)
	require.NoError(t, err)
	return v
}

func newDPoPKey(t testing.TB, alg string) *introspecttest.DPoPKey {
	t.Helper()
	k, err := introspecttest.NewDPoPKey(alg)
	require.NoError(t, err)
	return k
}

// dpopRequest is a request to target carrying the proofs, each in a DPoP
// header of its own.
func dpopRequest(method, target string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// proofAt is a proof made at the tests' time.
func proofAt(k *introspecttest.DPoPKey, method, url, token string, opts ...introspecttest.DPoPProofOption) string {
	return k.Proof(method, url, token, append([]introspecttest.DPoPProofOption{introspecttest.WithProofIssuedAt(dpopNow)}, opts...)...)
}

// rawProof signs header and claims, given as maps, with k.
func rawProof(t testing.TB, k *introspecttest.DPoPKey, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	return k.Sign(h, c)
}

// goodHeader and goodClaims are those of a valid proof of k for dpopURL.
func goodHeader(k *introspecttest.DPoPKey) map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": k.Alg(), "jwk": k.PublicJWK()}
}

func goodClaims() map[string]any {
	sum := sha256.Sum256([]byte(dpopToken))
	return map[string]any{"jti": "planted-jti-" + rand.Text(), "htm": "GET", "htu": dpopURL, "iat": dpopNow.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
}

// jwkThumbprint is the RFC 7638 thumbprint of pub computed by jwx.
func jwkThumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	k, err := jwk.Import(pub)
	require.NoError(t, err)
	tp, err := k.Thumbprint(crypto.SHA256)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(tp)
}

// A valid proof passes for every algorithm, and Verify returns the key's
// RFC 7638 thumbprint as jwx computes it, bound or not.
func TestDPoPVerifyValid(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"} {
		t.Run(alg, func(t *testing.T) {
			v := newDPoPVerifier(t)
			k := newDPoPKey(t, alg)
			want := jwkThumbprint(t, k.Public())
			require.Equal(t, want, k.JKT())

			jkt, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken)), dpopToken, "")
			require.NoError(t, err)
			assert.Equal(t, want, jkt)

			jkt, err = v.Verify(context.Background(), dpopRequest("POST", dpopURL, proofAt(k, "POST", dpopURL, dpopToken)), dpopToken, want)
			require.NoError(t, err)
			assert.Equal(t, want, jkt)
		})
	}
}

// Without an access token (a token request), ath is not needed, and one
// that is there is not checked.
func TestDPoPVerifyWithoutToken(t *testing.T) {
	v := newDPoPVerifier(t)
	k := newDPoPKey(t, "ES256")
	_, err := v.Verify(context.Background(), dpopRequest("POST", dpopURL, proofAt(k, "POST", dpopURL, "")), "", "")
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), dpopRequest("POST", dpopURL, proofAt(k, "POST", dpopURL, "other")), "", "")
	require.NoError(t, err)
}

// Each rule of RFC 9449 §4.3 refuses what breaks it with its own error,
// which matches ErrInvalidDPoPProof, maps to 401 and repeats nothing the
// client chose.
func TestDPoPVerifyRefusals(t *testing.T) {
	k := newDPoPKey(t, "ES256")
	other := newDPoPKey(t, "ES256")
	ed := newDPoPKey(t, "EdDSA")
	good := proofAt(k, "GET", dpopURL, dpopToken)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	withJWK := func(extra map[string]any) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(k.PublicJWK(), &m))
		for name, v := range extra {
			if v == nil {
				delete(m, name)
			} else {
				m[name] = v
			}
		}
		return m
	}
	header := func(change map[string]any) string {
		h := goodHeader(k)
		for name, v := range change {
			if v == nil {
				delete(h, name)
			} else {
				h[name] = v
			}
		}
		return rawProof(t, k, h, goodClaims())
	}
	claims := func(change map[string]any) string {
		c := goodClaims()
		for name, v := range change {
			if v == nil {
				delete(c, name)
			} else {
				c[name] = v
			}
		}
		return rawProof(t, k, goodHeader(k), c)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	coord := func(b []byte) string { return b64(b) }
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	smallJWK := map[string]any{"kty": "RSA", "n": b64(rsa1024.N.Bytes()), "e": "AQAB"}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	n := rsa2048.N.Bytes()
	p256 := k.Public().(*ecdsa.PublicKey)
	pt, err := p256.Bytes()
	require.NoError(t, err)
	shortX := coord(pt[2:33]) // a coordinate one byte short

	tests := []struct {
		name    string
		req     *http.Request
		token   string
		rule    string
		skipped bool
	}{
		{name: "no header", req: dpopRequest("GET", dpopURL), rule: "no DPoP header"},
		{name: "empty header", req: dpopRequest("GET", dpopURL, ""), rule: "no DPoP header"},
		{name: "two headers", req: dpopRequest("GET", dpopURL, good, good), rule: "more than one DPoP header"},
		{name: "oversized", req: dpopRequest("GET", dpopURL, good+strings.Repeat("A", 8<<10)), rule: "proof too large"},
		{name: "one part", req: dpopRequest("GET", dpopURL, "planted"), rule: "not a compact JWS"},
		{name: "two parts", req: dpopRequest("GET", dpopURL, parts[0]+"."+parts[1]), rule: "not a compact JWS"},
		{name: "four parts", req: dpopRequest("GET", dpopURL, good+".x"), rule: "not a compact JWS"},
		{name: "JWE", req: dpopRequest("GET", dpopURL, "a.b.c.d.e"), rule: "not a compact JWS"},
		{name: "empty header part", req: dpopRequest("GET", dpopURL, "."+parts[1]+"."+parts[2]), rule: "not a compact JWS"},
		{name: "empty claims part", req: dpopRequest("GET", dpopURL, parts[0]+".."+parts[2]), rule: "not a compact JWS"},
		{name: "empty signature", req: dpopRequest("GET", dpopURL, parts[0]+"."+parts[1]+"."), rule: "not a compact JWS"},
		{name: "header not base64url", req: dpopRequest("GET", dpopURL, "e30=."+parts[1]+"."+parts[2]), rule: "header is not a base64url-encoded JSON object"},
		{name: "header base64 with padding alphabet", req: dpopRequest("GET", dpopURL, "ab+/."+parts[1]+"."+parts[2]), rule: "header is not a base64url-encoded JSON object"},
		{name: "header not JSON", req: dpopRequest("GET", dpopURL, k.Sign([]byte("planted not json"), []byte("{}"))), rule: "header is not a base64url-encoded JSON object"},
		{name: "header a JSON array", req: dpopRequest("GET", dpopURL, k.Sign([]byte(`["typ"]`), []byte("{}"))), rule: "header is not a base64url-encoded JSON object"},
		{name: "header with trailing data", req: dpopRequest("GET", dpopURL, k.Sign([]byte(`{"typ":"dpop+jwt"} x`), []byte("{}"))), rule: "header is not a base64url-encoded JSON object"},
		{name: "header parameter twice", req: dpopRequest("GET", dpopURL, k.Sign([]byte(`{"typ":"dpop+jwt","alg":"ES256","alg":"ES256"}`), []byte("{}"))), rule: "a header parameter is given twice"},
		{name: "escaped header parameter twice", req: dpopRequest("GET", dpopURL, k.Sign([]byte(`{"typ":"dpop+jwt","alg":"ES256","\u0061lg":"none"}`), []byte("{}"))), rule: "a header parameter is given twice"},
		{name: "typ missing", req: dpopRequest("GET", dpopURL, header(map[string]any{"typ": nil})), rule: "typ is not dpop+jwt"},
		{name: "typ JWT", req: dpopRequest("GET", dpopURL, header(map[string]any{"typ": "JWT"})), rule: "typ is not dpop+jwt"},
		{name: "typ not a string", req: dpopRequest("GET", dpopURL, header(map[string]any{"typ": 1})), rule: "typ is not dpop+jwt"},
		{name: "crit", req: dpopRequest("GET", dpopURL, header(map[string]any{"crit": []string{"planted"}, "planted": true})), rule: "critical header parameters are not supported"},
		{name: "alg none", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "none"})), rule: "algorithm not allowed"},
		{name: "alg HS256", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "HS256"})), rule: "algorithm not allowed"},
		{name: "alg unknown", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "planted-alg"})), rule: "algorithm not allowed"},
		{name: "alg in other case", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "es256"})), rule: "algorithm not allowed"},
		{name: "alg missing", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": nil})), rule: "algorithm not allowed"},
		{name: "jwk missing", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": nil})), rule: "no jwk header parameter"},
		{name: "jwk a string", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": "planted"})), rule: "jwk is not a valid public key"},
		{name: "jwk null", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": json.RawMessage("null")})), rule: "jwk is not a valid public key"},
		{name: "jwk with d", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"d": "AAAA"})})), rule: "jwk holds private key material"},
		{name: "jwk with k", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"k": "AAAA"})})), rule: "jwk holds private key material"},
		{name: "jwk with oth", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"oth": []any{}})})), rule: "jwk holds private key material"},
		{name: "jwk with p q dp dq qi", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"p": "AQ", "q": "AQ", "dp": "AQ", "dq": "AQ", "qi": "AQ"})})), rule: "jwk holds private key material"},
		{name: "jwk member twice", req: dpopRequest("GET", dpopURL, k.Sign([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","kty":"EC"}}`), []byte("{}"))), rule: "jwk is not a valid public key"},
		{name: "jwk without kty", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"kty": nil})})), rule: "jwk is not a valid public key"},
		{name: "jwk P-224", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-224",
			"x": coord(p224.X.FillBytes(make([]byte, 28))), "y": coord(p224.Y.FillBytes(make([]byte, 28)))}})), rule: "jwk key type or curve not supported"},
		{name: "jwk secp256k1", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"crv": "secp256k1"})})), rule: "jwk key type or curve not supported"},
		{name: "jwk Ed448", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "EdDSA", "jwk": map[string]any{"kty": "OKP", "crv": "Ed448", "x": b64(make([]byte, 57))}})), rule: "jwk key type or curve not supported"},
		{name: "jwk X25519", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "EdDSA", "jwk": map[string]any{"kty": "OKP", "crv": "X25519", "x": b64(make([]byte, 32))}})), rule: "jwk key type or curve not supported"},
		{name: "jwk oct", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": map[string]any{"kty": "oct"}})), rule: "jwk key type or curve not supported"},
		{name: "jwk point not on the curve", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"y": coord(pt[1:33])})})), rule: "jwk is not a valid public key"},
		{name: "jwk coordinate cut short", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"x": shortX})})), rule: "jwk is not a valid public key"},
		{name: "jwk coordinate padded", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"x": coord(pt[1:33]) + "="})})), rule: "jwk is not a valid public key"},
		{name: "jwk of another algorithm", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": withJWK(map[string]any{"alg": "ES384"})})), rule: "jwk does not suit the algorithm"},
		{name: "EC key for EdDSA", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "EdDSA"})), rule: "jwk does not suit the algorithm"},
		{name: "P-256 key for ES384", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "ES384"})), rule: "jwk does not suit the algorithm"},
		{name: "RSA key of 1024 bits", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "PS256", "jwk": smallJWK})), rule: "RSA key shorter than 2048 bits or longer than 8192"},
		{name: "RSA key of 8200 bits", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "PS256", "jwk": map[string]any{"kty": "RSA", "n": b64(append([]byte{1}, make([]byte, 1025)...)), "e": "AQAB"}})), rule: "RSA key shorter than 2048 bits or longer than 8192"},
		{name: "RSA modulus with a leading zero", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "PS256", "jwk": map[string]any{"kty": "RSA", "n": b64(append([]byte{0}, n...)), "e": "AQAB"}})), rule: "jwk is not a valid public key"},
		{name: "RSA exponent even", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "PS256", "jwk": map[string]any{"kty": "RSA", "n": b64(n), "e": "AQAA"}})), rule: "jwk is not a valid public key"},
		{name: "RSA exponent of five bytes", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "PS256", "jwk": map[string]any{"kty": "RSA", "n": b64(n), "e": b64([]byte{1, 0, 0, 0, 1})}})), rule: "jwk is not a valid public key"},
		{name: "RSA key for ES256", req: dpopRequest("GET", dpopURL, header(map[string]any{"jwk": map[string]any{"kty": "RSA", "n": b64(n), "e": "AQAB"}})), rule: "jwk does not suit the algorithm"},
		{name: "Ed25519 key of 31 bytes", req: dpopRequest("GET", dpopURL, header(map[string]any{"alg": "EdDSA", "jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(make([]byte, 31))}})), rule: "jwk is not a valid public key"},
		{name: "signature by another key", req: dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken, introspecttest.WithProofSignedBy(other))), token: dpopToken, rule: "bad signature"},
		{name: "signature by a key of another type", req: dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken, introspecttest.WithProofSignedBy(ed))), token: dpopToken, rule: "bad signature"},
		{name: "signature of other claims", req: dpopRequest("GET", dpopURL, parts[0]+"."+strings.Split(proofAt(k, "POST", dpopURL, dpopToken), ".")[1]+"."+parts[2]), token: dpopToken, rule: "bad signature"},
		{name: "signature cut short", req: dpopRequest("GET", dpopURL, good[:len(good)-4]), token: dpopToken, rule: "bad signature"},
		{name: "signature not base64url", req: dpopRequest("GET", dpopURL, good[:len(good)-1]+"="), token: dpopToken, rule: "bad signature"},
		{name: "claims not JSON", req: dpopRequest("GET", dpopURL, k.Sign(mustJSON(t, goodHeader(k)), []byte("planted"))), rule: "claims are not a base64url-encoded JSON object"},
		{name: "claim twice", req: dpopRequest("GET", dpopURL, k.Sign(mustJSON(t, goodHeader(k)), []byte(`{"jti":"a","jti":"b"}`))), rule: "a claim is given twice"},
		{name: "htm missing", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htm": nil})), token: dpopToken, rule: "htm missing or not a string"},
		{name: "htm not a string", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htm": 1})), token: dpopToken, rule: "htm missing or not a string"},
		{name: "htm another method", req: dpopRequest("POST", dpopURL, good), token: dpopToken, rule: "htm does not match the request method"},
		{name: "htm in lower case", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htm": "get"})), token: dpopToken, rule: "htm does not match the request method"},
		{name: "htu missing", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": nil})), token: dpopToken, rule: "htu missing or not a string"},
		{name: "htu not a string", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": []string{dpopURL}})), token: dpopToken, rule: "htu missing or not a string"},
		{name: "htu another path", req: dpopRequest("GET", "https://api.example/v1/planted", good), token: dpopToken, rule: "htu does not match the request URL"},
		{name: "htu another host", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": "https://planted.example/v1/files"})), token: dpopToken, rule: "htu does not match the request URL"},
		{name: "htu another scheme", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": "http://api.example/v1/files"})), token: dpopToken, rule: "htu does not match the request URL"},
		{name: "htu with user information", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": "https://planted@api.example/v1/files"})), token: dpopToken, rule: "htu has user information"},
		{name: "htu with a fragment", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": dpopURL + "#planted"})), token: dpopToken, rule: "htu has a fragment"},
		{name: "htu relative", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": "/v1/files"})), token: dpopToken, rule: "htu is not an absolute http or https URL"},
		{name: "htu of another scheme", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": "wss://api.example/v1/files"})), token: dpopToken, rule: "htu is not an absolute http or https URL"},
		{name: "htu with a broken escape", req: dpopRequest("GET", dpopURL, claims(map[string]any{"htu": dpopURL + "%zz"})), token: dpopToken, rule: "htu is not an absolute http or https URL"},
		{name: "iat missing", req: dpopRequest("GET", dpopURL, claims(map[string]any{"iat": nil})), token: dpopToken, rule: "iat missing or not a number"},
		{name: "iat a string", req: dpopRequest("GET", dpopURL, claims(map[string]any{"iat": fmt.Sprint(dpopNow.Unix())})), token: dpopToken, rule: "iat missing or not a number"},
		{name: "iat negative", req: dpopRequest("GET", dpopURL, claims(map[string]any{"iat": -1})), token: dpopToken, rule: "iat missing or not a number"},
		{name: "iat null", req: dpopRequest("GET", dpopURL, claims(map[string]any{"iat": json.RawMessage("null")})), token: dpopToken, rule: "iat missing or not a number"},
		{name: "iat stale", req: dpopRequest("GET", dpopURL, claims(map[string]any{"iat": dpopNow.Add(-5*time.Minute - time.Second).Unix()})), token: dpopToken, rule: "iat is too old"},
		{name: "iat in the future", req: dpopRequest("GET", dpopURL, claims(map[string]any{"iat": dpopNow.Add(6 * time.Second).Unix()})), token: dpopToken, rule: "iat is in the future"},
		{name: "ath missing", req: dpopRequest("GET", dpopURL, claims(map[string]any{"ath": nil})), token: dpopToken, rule: "ath missing or not a string"},
		{name: "ath of another token", req: dpopRequest("GET", dpopURL, good), token: "planted-other-token", rule: "ath does not match the access token"},
		{name: "ath of the token itself", req: dpopRequest("GET", dpopURL, claims(map[string]any{"ath": dpopToken})), token: dpopToken, rule: "ath does not match the access token"},
		{name: "ath in standard base64", req: dpopRequest("GET", dpopURL, claims(map[string]any{"ath": base64.StdEncoding.EncodeToString(sha256Of(dpopToken))})), token: dpopToken, rule: "ath does not match the access token"},
		{name: "jti missing", req: dpopRequest("GET", dpopURL, claims(map[string]any{"jti": nil})), token: dpopToken, rule: "jti missing, empty or not a string"},
		{name: "jti empty", req: dpopRequest("GET", dpopURL, claims(map[string]any{"jti": ""})), token: dpopToken, rule: "jti missing, empty or not a string"},
		{name: "jti a number", req: dpopRequest("GET", dpopURL, claims(map[string]any{"jti": 12345})), token: dpopToken, rule: "jti missing, empty or not a string"},
		{name: "jti too long", req: dpopRequest("GET", dpopURL, claims(map[string]any{"jti": strings.Repeat("planted", 40)})), token: dpopToken, rule: "jti too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newDPoPVerifier(t)
			token := tt.token
			jkt, err := v.Verify(context.Background(), tt.req, token, "")
			require.Error(t, err)
			assert.Empty(t, jkt)
			assert.EqualError(t, err, dpopPrefix+tt.rule)
			assert.ErrorIs(t, err, introspect.ErrInvalidDPoPProof)
			assert.ErrorIs(t, err, introspect.ErrInactiveToken)
			assert.NotErrorIs(t, err, introspect.ErrUseDPoPNonce)
			assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
			assert.NotContains(t, err.Error(), plantedMark)
			assert.NotContains(t, err.Error(), dpopToken)
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func sha256Of(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// What the RFC allows that a strict reading might refuse is accepted: typ
// as a full media type or in another case, an iat within the leeway or
// with a fraction, a query in htu, header parameters and claims of other
// names, JSON white space.
func TestDPoPVerifyTolerated(t *testing.T) {
	k := newDPoPKey(t, "ES256")
	v := newDPoPVerifier(t)
	for _, tt := range []struct {
		name   string
		header map[string]any
		claims map[string]any
	}{
		{"typ application/dpop+jwt", map[string]any{"typ": "application/dpop+jwt"}, nil},
		{"typ in upper case", map[string]any{"typ": "DPOP+JWT"}, nil},
		{"kid and other header parameters", map[string]any{"kid": "k1", "x5u": "https://x"}, nil},
		{"jwk with its own alg and kid", map[string]any{"jwk": jwkWith(t, k, map[string]any{"alg": "ES256", "kid": "k1", "use": "sig"})}, nil},
		{"iat within the leeway", nil, map[string]any{"iat": dpopNow.Add(5 * time.Second).Unix()}},
		{"iat at the end of the lifetime", nil, map[string]any{"iat": dpopNow.Add(-5 * time.Minute).Unix()}},
		{"iat with a fraction", nil, map[string]any{"iat": float64(dpopNow.Unix()) + 0.25}},
		{"iat as an exponent", nil, map[string]any{"iat": json.RawMessage("1.7e9")}},
		{"htu with a query", nil, map[string]any{"htu": dpopURL + "?planted=1"}},
		{"other claims", nil, map[string]any{"exp": 1, "nonce": "unused", "cnf": map[string]any{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, c := goodHeader(k), goodClaims()
			for n, x := range tt.header {
				h[n] = x
			}
			for n, x := range tt.claims {
				c[n] = x
			}
			_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL+"?q=1", rawProof(t, k, h, c)), dpopToken, k.JKT())
			require.NoError(t, err)
		})
	}
	t.Run("white space and escapes", func(t *testing.T) {
		c := goodClaims()
		h := fmt.Sprintf(" {\n \"t\\u0079p\" : \"dpop+jwt\" , \"alg\":\"ES256\",\"jwk\": %s } ", k.PublicJWK())
		cl := fmt.Sprintf(`{"jti":%q,"htm":"G\u0045T","htu":"https:\/\/api.example\/v1\/files","iat":%d,"ath":%q}`, c["jti"], dpopNow.Unix(), c["ath"])
		_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, k.Sign([]byte(h), []byte(cl))), dpopToken, "")
		require.NoError(t, err)
	})
}

func jwkWith(t testing.TB, k *introspecttest.DPoPKey, extra map[string]any) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(k.PublicJWK(), &m))
	for n, v := range extra {
		m[n] = v
	}
	return m
}

// The algorithms are the default ten, or those given; a key of an
// algorithm left out is refused.
func TestDPoPAlgorithms(t *testing.T) {
	v := newDPoPVerifier(t)
	assert.Equal(t, []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA", "Ed25519"}, v.Algorithms())
	v.Algorithms()[0] = "none"
	assert.Equal(t, "ES256", v.Algorithms()[0], "Algorithms returns a copy")

	v = newDPoPVerifier(t, introspect.WithDPoPAlgorithms("EdDSA", "ES256", "EdDSA"))
	assert.Equal(t, []string{"EdDSA", "ES256"}, v.Algorithms())
	ps := newDPoPKey(t, "PS256")
	_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(ps, "GET", dpopURL, dpopToken)), dpopToken, "")
	assert.EqualError(t, err, dpopPrefix+"algorithm not allowed")
	ed := newDPoPKey(t, "EdDSA")
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(ed, "GET", dpopURL, dpopToken)), dpopToken, "")
	assert.NoError(t, err)
}

// Every mistake in the options is an error from NewDPoPVerifier, all of
// them together; none repeats a secret or user information.
func TestDPoPOptionErrors(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name string
		opt  introspect.DPoPOption
		msg  string
	}{
		{"nil option", nil, "introspect: NewDPoPVerifier: nil option"},
		{"no algorithm", introspect.WithDPoPAlgorithms(), "introspect: WithDPoPAlgorithms: no algorithm"},
		{"none", introspect.WithDPoPAlgorithms("none"), "introspect: WithDPoPAlgorithms: none is never accepted for DPoP proofs"},
		{"HS256", introspect.WithDPoPAlgorithms("ES256", "HS256"), "introspect: WithDPoPAlgorithms: HS256 is never accepted for DPoP proofs"},
		{"hs512 lower case", introspect.WithDPoPAlgorithms("hs512"), "hs512 is never accepted"},
		{"unknown", introspect.WithDPoPAlgorithms("ES256K"), `introspect: WithDPoPAlgorithms: unknown algorithm "ES256K"`},
		{"lifetime zero", introspect.WithDPoPProofLifetime(0), "introspect: WithDPoPProofLifetime: 0s is not between 0 and 1h0m0s"},
		{"lifetime a day", introspect.WithDPoPProofLifetime(24 * time.Hour), "WithDPoPProofLifetime: 24h0m0s is not between"},
		{"leeway negative", introspect.WithDPoPLeeway(-time.Second), "introspect: WithDPoPLeeway: -1s is not between 0 and 5m0s"},
		{"leeway an hour", introspect.WithDPoPLeeway(time.Hour), "WithDPoPLeeway: 1h0m0s is not between"},
		{"nil replay cache", introspect.WithDPoPReplayCache(nil), "introspect: WithDPoPReplayCache: nil cache"},
		{"short secret", introspect.WithDPoPNonces(secret[:31], time.Minute), "introspect: WithDPoPNonces: the secret has 31 bytes, fewer than 32"},
		{"no period", introspect.WithDPoPNonces(secret, 0), "introspect: WithDPoPNonces: period 0s is not between 1s and 24h0m0s"},
		{"relative URL", introspect.WithDPoPExternalURL("/api"), "introspect: WithDPoPExternalURL: not an absolute http or https URL"},
		{"ws URL", introspect.WithDPoPExternalURL("wss://api.example"), "not an absolute http or https URL"},
		{"URL with user information", introspect.WithDPoPExternalURL("https://planted:planted@api.example"), "introspect: WithDPoPExternalURL: the URL has user information"},
		{"URL with a query", introspect.WithDPoPExternalURL("https://api.example/?planted"), "introspect: WithDPoPExternalURL: the URL has a query"},
		{"URL with a fragment", introspect.WithDPoPExternalURL("https://api.example/#planted"), "introspect: WithDPoPExternalURL: the URL has a fragment"},
		{"URL with a bad host", introspect.WithDPoPExternalURL("https://a%20b.example/"), "WithDPoPExternalURL: "},
		{"a second URL with a query", introspect.WithDPoPExternalURL("https://api.example", "https://eu.api.example/?planted"), "introspect: WithDPoPExternalURL: the URL has a query"},
		{"size too small", introspect.WithDPoPMaxProofSize(100), "introspect: WithDPoPMaxProofSize: 100 is not between 512 and 65536"},
		{"size too large", introspect.WithDPoPMaxProofSize(1 << 20), "WithDPoPMaxProofSize: 1048576 is not between"},
		{"nil clock", introspect.WithDPoPClock(nil), "introspect: WithDPoPClock: nil clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := introspect.NewDPoPVerifier(tt.opt)
			require.Error(t, err)
			assert.Nil(t, v)
			assert.Contains(t, err.Error(), tt.msg)
			assert.NotContains(t, err.Error(), plantedMark)
			assert.NotContains(t, err.Error(), string(secret[:8]))
		})
	}
	_, err := introspect.NewDPoPVerifier(introspect.WithDPoPLeeway(-1), introspect.WithDPoPMaxProofSize(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WithDPoPLeeway")
	assert.Contains(t, err.Error(), "WithDPoPMaxProofSize")

	for _, ok := range []introspect.DPoPOption{
		introspect.WithDPoPProofLifetime(time.Hour), introspect.WithDPoPLeeway(0), introspect.WithDPoPMaxProofSize(512),
		introspect.WithDPoPNonces(secret, time.Second), introspect.WithDPoPExternalURL("HTTPS://API.example:443/base/"),
		introspect.WithDPoPExternalURL("http://[::1]:8080"),
	} {
		_, err := introspect.NewDPoPVerifier(ok)
		assert.NoError(t, err)
	}
}

// htu is compared with the request's URL after normalisation: case of the
// scheme and host, default and empty ports, an empty path, percent-encoding
// case and unreserved characters, characters a URI does not allow; never
// the dot segments, and never the query.
func TestDPoPHTU(t *testing.T) {
	k := newDPoPKey(t, "ES256")
	tests := []struct {
		name   string
		htu    string
		target string // the request, https unless it says otherwise
		opts   []introspect.DPoPOption
		match  bool
	}{
		{"same", "https://api.example/a/b", "https://api.example/a/b", nil, true},
		{"scheme and host case", "HTTPS://API.Example/a/b", "https://api.example/a/b", nil, true},
		{"path case differs", "https://api.example/A/b", "https://api.example/a/b", nil, false},
		{"default port in htu", "https://api.example:443/a", "https://api.example/a", nil, true},
		{"default port in the request", "https://api.example/a", "https://api.example:443/a", nil, true},
		{"empty port", "https://api.example:/a", "https://api.example/a", nil, true},
		{"port with a leading zero", "https://api.example:0443/a", "https://api.example/a", nil, true},
		{"other port", "https://api.example:8443/a", "https://api.example/a", nil, false},
		{"same other port", "https://api.example:8443/a", "https://api.example:8443/a", nil, true},
		{"port 80 for https", "https://api.example:80/a", "https://api.example/a", nil, false},
		{"http default port", "http://api.example:80/a", "http://api.example/a", nil, true},
		{"http for an https request", "http://api.example/a", "https://api.example/a", nil, false},
		{"https for an http request", "https://api.example/a", "http://api.example/a", nil, false},
		{"empty path", "https://api.example", "https://api.example/", nil, true},
		{"trailing slash", "https://api.example/a/", "https://api.example/a", nil, false},
		{"percent-encoding case", "https://api.example/a%2fb", "https://api.example/a%2Fb", nil, true},
		{"encoded slash is not a slash", "https://api.example/a%2Fb", "https://api.example/a/b", nil, false},
		{"encoded unreserved", "https://api.example/%7Euser/%41", "https://api.example/~user/A", nil, true},
		{"encoded space", "https://api.example/a b", "https://api.example/a%20b", nil, true},
		{"non-ASCII", "https://api.example/caf\u00e9", "https://api.example/caf%C3%A9", nil, true},
		{"dot segments kept", "https://api.example/a/../admin", "https://api.example/admin", nil, false},
		{"dot segments on both sides", "https://api.example/a/./b", "https://api.example/a/./b", nil, true},
		{"encoded dots are dots", "https://api.example/a/%2E%2E/b", "https://api.example/a/../b", nil, true},
		{"query ignored on both sides", "https://api.example/a?x=1", "https://api.example/a?y=2", nil, true},
		{"IPv6 literal", "https://[::1]:8443/a", "https://[::1]:8443/a", nil, true},
		{"IPv6 literal case", "https://[FE80::1]/a", "https://[fe80::1]/a", nil, true},
		{"host with a trailing dot", "https://api.example./a", "https://api.example/a", nil, false},
		{"external URL", "https://api.example/api/a", "http://10.0.0.7:8080/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://API.example/api/")}, true},
		{"external URL: the internal URL refused", "http://10.0.0.7:8080/a", "http://10.0.0.7:8080/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example/api")}, false},
		{"external URL with a default port", "https://api.example/a", "http://internal/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example:443")}, true},
		{"another server's URL, its name in Host", "https://other-rs.example/a", "https://other-rs.example/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example")}, false},
		{"external URLs: the first", "https://api.example/a", "http://internal/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example", "https://eu.api.example/v1")}, true},
		{"external URLs: the second, with its prefix", "https://eu.api.example/v1/a", "http://internal/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example", "https://eu.api.example/v1")}, true},
		{"external URLs: the second without its prefix", "https://eu.api.example/a", "http://internal/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example", "https://eu.api.example/v1")}, false},
		{"external URLs: neither", "https://us.api.example/a", "https://us.api.example/a",
			[]introspect.DPoPOption{introspect.WithDPoPExternalURL("https://api.example", "https://eu.api.example/v1")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newDPoPVerifier(t, tt.opts...)
			c := goodClaims()
			c["htu"] = tt.htu
			r := dpopRequest("GET", tt.target, rawProof(t, k, goodHeader(k), c))
			_, err := v.Verify(context.Background(), r, dpopToken, "")
			if tt.match {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, dpopPrefix+"htu does not match the request URL")
			}
		})
	}
	t.Run("TLS without a scheme in the URL", func(t *testing.T) {
		v := newDPoPVerifier(t)
		r := dpopRequest("GET", "/a", proofAt(k, "GET", "https://api.example/a", dpopToken))
		r.Host = "api.example"
		r.TLS = &tls.ConnectionState{}
		_, err := v.Verify(context.Background(), r, dpopToken, "")
		require.NoError(t, err)
	})
	t.Run("forwarded headers are not read", func(t *testing.T) {
		v := newDPoPVerifier(t)
		r := dpopRequest("GET", "http://internal/a", proofAt(k, "GET", "https://api.example/a", dpopToken))
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "api.example")
		r.Header.Set("Forwarded", "proto=https;host=api.example")
		_, err := v.Verify(context.Background(), r, dpopToken, "")
		require.EqualError(t, err, dpopPrefix+"htu does not match the request URL")
	})
	t.Run("a request host that cannot be compared", func(t *testing.T) {
		v := newDPoPVerifier(t)
		r := dpopRequest("GET", "https://api.example/a", proofAt(k, "GET", "https://api.example/a", dpopToken))
		r.Host = "planted@api.example"
		_, err := v.Verify(context.Background(), r, dpopToken, "")
		require.EqualError(t, err, dpopPrefix+"the request URL cannot be compared")
	})
	t.Run("no request", func(t *testing.T) {
		_, err := newDPoPVerifier(t).Verify(context.Background(), nil, dpopToken, "")
		require.EqualError(t, err, dpopPrefix+"no request")
	})
}

// A proof is accepted once: the same proof again, even with another
// token, is a replay; the same jti with another key is not.
func TestDPoPReplay(t *testing.T) {
	v := newDPoPVerifier(t)
	k, other := newDPoPKey(t, "ES256"), newDPoPKey(t, "EdDSA")
	p := proofAt(k, "GET", dpopURL, dpopToken, introspecttest.WithProofJTI("planted-jti"))
	_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"proof replayed")
	assert.NotContains(t, err.Error(), plantedMark)
	p2 := proofAt(k, "GET", dpopURL, dpopToken, introspecttest.WithProofJTI("planted-jti"), introspecttest.WithProofIssuedAt(dpopNow.Add(-time.Second)))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p2), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"proof replayed", "another proof with the same key and jti")
	p3 := proofAt(other, "GET", dpopURL, dpopToken, introspecttest.WithProofJTI("planted-jti"))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p3), dpopToken, "")
	require.NoError(t, err, "the same jti with another key")
}

// Concurrent requests with one proof: exactly one passes.
func TestDPoPReplayConcurrent(t *testing.T) {
	v := newDPoPVerifier(t)
	k := newDPoPKey(t, "ES256")
	p := proofAt(k, "GET", dpopURL, dpopToken)
	var passed, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
			switch {
			case err == nil:
				passed.Add(1)
			case err.Error() == dpopPrefix+"proof replayed":
				replayed.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), passed.Load())
	assert.Equal(t, int32(31), replayed.Load())
}

// A proof of another key than the token's is ErrDPoPKeyMismatch, and is
// not recorded: it cannot fill the replay cache, and the same proof still
// passes where its key is the bound one.
func TestDPoPKeyMismatch(t *testing.T) {
	cache := &countingCache{}
	v := newDPoPVerifier(t, introspect.WithDPoPReplayCache(cache))
	k, other := newDPoPKey(t, "ES256"), newDPoPKey(t, "ES256")
	p := proofAt(k, "GET", dpopURL, dpopToken)
	_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, other.JKT())
	require.ErrorIs(t, err, introspect.ErrDPoPKeyMismatch)
	assert.ErrorIs(t, err, introspect.ErrTokenBinding)
	assert.NotErrorIs(t, err, introspect.ErrInvalidDPoPProof)
	assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
	assert.Equal(t, "introspect: token is not active: token binding not satisfied: DPoP proof key does not match the token's binding", err.Error())
	assert.Zero(t, cache.calls.Load(), "nothing recorded")

	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, k.JKT()[:42])
	require.ErrorIs(t, err, introspect.ErrDPoPKeyMismatch, "a prefix of the thumbprint")
	jkt, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, k.JKT())
	require.NoError(t, err)
	assert.Equal(t, k.JKT(), jkt)
	assert.Equal(t, int32(1), cache.calls.Load())
}

// countingCache is a replay cache that remembers nothing and counts calls,
// or fails with err.
type countingCache struct {
	calls atomic.Int32
	err   error
}

func (c *countingCache) Seen(context.Context, [32]byte, time.Time) (bool, error) {
	c.calls.Add(1)
	return false, c.err
}

// A failing replay cache fails the proof, in the package's words; the
// cache's error stays reachable.
func TestDPoPReplayCacheError(t *testing.T) {
	cause := errors.New("planted: redis at 10.0.0.1 refused")
	v := newDPoPVerifier(t, introspect.WithDPoPReplayCache(&countingCache{err: cause}))
	k := newDPoPKey(t, "ES256")
	_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken)), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"replay cache failed")
	assert.ErrorIs(t, err, introspect.ErrInvalidDPoPProof)
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))

	v = newDPoPVerifier(t, introspect.WithDPoPReplayCache(&countingCache{err: context.DeadlineExceeded}))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken)), dpopToken, "")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// The replay cache records until the proof's iat plus its lifetime: after
// that the proof is stale anyway, and a fresh proof may reuse the jti.
func TestDPoPReplayWindow(t *testing.T) {
	var now atomic.Int64
	now.Store(dpopNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v, err := introspect.NewDPoPVerifier(introspect.WithDPoPClock(clock), introspect.WithDPoPProofLifetime(time.Minute))
	require.NoError(t, err)
	k := newDPoPKey(t, "ES256")
	p := proofAt(k, "GET", dpopURL, dpopToken, introspecttest.WithProofJTI("j"))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
	require.NoError(t, err)
	now.Add(int64(time.Minute))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"proof replayed", "at the end of its lifetime")
	now.Add(int64(time.Second))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"iat is too old")
	// The record outlives the proof by the leeway (5 s), for replicas whose
	// clocks differ: the jti again, in a fresh proof, is a replay until then.
	fresh := k.Proof("GET", dpopURL, dpopToken, introspecttest.WithProofJTI("j"), introspecttest.WithProofIssuedAt(clock()))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, fresh), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"proof replayed", "the jti again within the leeway after the first expired")
	now.Add(int64(5 * time.Second)) // the default leeway
	fresh = k.Proof("GET", dpopURL, dpopToken, introspecttest.WithProofJTI("j"), introspecttest.WithProofIssuedAt(clock()))
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, fresh), dpopToken, "")
	require.NoError(t, err, "the jti again, in a proof made after the first's record ended")
}

// Server nonces: off by default; on, a proof needs a nonce of the current
// or the previous period, and gets a fresh one in a DPoPNonceError when it
// has none or another.
func TestDPoPNonces(t *testing.T) {
	k := newDPoPKey(t, "ES256")
	assert.Empty(t, newDPoPVerifier(t).Nonce())

	secret := []byte("0123456789abcdef0123456789abcdef")
	var now atomic.Int64
	now.Store(dpopNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v, err := introspect.NewDPoPVerifier(introspect.WithDPoPClock(clock), introspect.WithDPoPNonces(secret, time.Minute))
	require.NoError(t, err)
	n1 := v.Nonce()
	require.NotEmpty(t, n1)
	assert.Equal(t, n1, v.Nonce(), "stable within a period")
	assert.Regexp(t, `^[A-Za-z0-9_-]+$`, n1, "NQCHAR and base64url")
	assert.NotContains(t, n1, string(secret[:8]))

	verify := func(opts ...introspecttest.DPoPProofOption) error {
		p := k.Proof("GET", dpopURL, dpopToken, append([]introspecttest.DPoPProofOption{introspecttest.WithProofIssuedAt(clock())}, opts...)...)
		_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
		return err
	}
	requireNonceError := func(err error) {
		t.Helper()
		var ne *introspect.DPoPNonceError
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, v.Nonce(), ne.Nonce)
		assert.ErrorIs(t, err, introspect.ErrUseDPoPNonce)
		assert.ErrorIs(t, err, introspect.ErrInvalidDPoPProof)
		assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
		assert.Equal(t, dpopPrefix+"a DPoP nonce is required", err.Error())
		assert.NotContains(t, err.Error(), ne.Nonce)
	}

	requireNonceError(verify())
	require.NoError(t, verify(introspecttest.WithProofNonce(n1)))
	requireNonceError(verify(introspecttest.WithProofNonce("planted-forged")))
	requireNonceError(verify(introspecttest.WithProofNonce(n1 + "A")))
	require.EqualError(t, verify(introspecttest.WithProofClaim("nonce", 1)), dpopPrefix+"nonce is not a string")

	other, err := introspect.NewDPoPVerifier(introspect.WithDPoPClock(clock), introspect.WithDPoPNonces([]byte("another secret of thirty-two byt"), time.Minute))
	require.NoError(t, err)
	requireNonceError(verify(introspecttest.WithProofNonce(other.Nonce())))

	now.Add(int64(time.Minute))
	n2 := v.Nonce()
	assert.NotEqual(t, n1, n2)
	require.NoError(t, verify(introspecttest.WithProofNonce(n1)), "the previous period's nonce")
	require.NoError(t, verify(introspecttest.WithProofNonce(n2)))
	now.Add(int64(time.Minute))
	requireNonceError(verify(introspecttest.WithProofNonce(n1)))

	twin, err := introspect.NewDPoPVerifier(introspect.WithDPoPClock(clock), introspect.WithDPoPNonces(secret, time.Minute))
	require.NoError(t, err)
	assert.Equal(t, v.Nonce(), twin.Nonce(), "replicas sharing the secret make the same nonces")
}

// The memory replay cache stays within its size under a flood of distinct
// jti's, in entries and in memory, and still catches the replay of a record
// it had to drop while live: such a key is reported seen.
func TestDPoPMemoryReplayCacheBounded(t *testing.T) {
	const size = 4096
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	c, err := introspect.NewDPoPMemoryReplayCache(size)
	require.NoError(t, err)
	until := time.Now().Add(time.Hour)
	key := func(i int) [32]byte { return sha256.Sum256(fmt.Append(nil, i)) }
	const flood = 50 * size
	for i := range flood {
		seen, err := c.Seen(context.Background(), key(i), until.Add(time.Duration(i)))
		require.NoError(t, err)
		require.False(t, seen, "a new key ending after every other")
		if i%size == 0 {
			require.LessOrEqual(t, c.Len(), size)
		}
	}
	assert.LessOrEqual(t, c.Len(), size)
	assert.Greater(t, c.Len(), size*9/10, "the shards are full, or nearly")
	if after := heap(); after > before {
		// About 225 bytes a record once the maps have churned.
		assert.Less(t, after-before, uint64(size*300), "the heap grew by %d bytes for %d records", after-before, flood)
	}
	for i := flood - size; i < flood; i += 97 {
		seen, err := c.Seen(context.Background(), key(i), until.Add(time.Duration(i)))
		require.NoError(t, err)
		assert.True(t, seen, "a recent record")
	}
	for i := 0; i < size; i += 97 {
		seen, err := c.Seen(context.Background(), key(i), until.Add(time.Duration(i)))
		require.NoError(t, err)
		assert.True(t, seen, "a replay of a record dropped while live")
	}
	seen, err := c.Seen(context.Background(), key(-1), until.Add(time.Hour))
	require.NoError(t, err)
	assert.False(t, seen, "a key ending after every dropped record")
	runtime.KeepAlive(c)
}

// Records expire at their end; a record ending in the past is not kept.
func TestDPoPMemoryReplayCacheExpiry(t *testing.T) {
	c, err := introspect.NewDPoPMemoryReplayCache(10)
	require.NoError(t, err)
	ctx := context.Background()
	k := sha256.Sum256([]byte("a"))
	seen, err := c.Seen(ctx, k, time.Now().Add(-time.Second))
	require.NoError(t, err)
	assert.False(t, seen)
	assert.Zero(t, c.Len(), "nothing to record")

	seen, _ = c.Seen(ctx, k, time.Now().Add(50*time.Millisecond))
	assert.False(t, seen)
	seen, _ = c.Seen(ctx, k, time.Now().Add(50*time.Millisecond))
	assert.True(t, seen)
	time.Sleep(100 * time.Millisecond)
	seen, _ = c.Seen(ctx, k, time.Now().Add(time.Minute))
	assert.False(t, seen, "expired, then recorded again")
	seen, _ = c.Seen(ctx, k, time.Now().Add(time.Minute))
	assert.True(t, seen)
	assert.Equal(t, 1, c.Len())

	_, err = introspect.NewDPoPMemoryReplayCache(0)
	assert.EqualError(t, err, "introspect: NewDPoPMemoryReplayCache: size 0 is not positive")
	var zero introspect.DPoPMemoryReplayCache
	_, err = zero.Seen(ctx, k, time.Now().Add(time.Minute))
	assert.Error(t, err, "a cache not made by its constructor fails closed")
}

// A verifier not made by NewDPoPVerifier refuses every proof.
func TestDPoPZeroVerifier(t *testing.T) {
	k := newDPoPKey(t, "ES256")
	r := dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken))
	for _, v := range []*introspect.DPoPVerifier{nil, {}} {
		_, err := v.Verify(context.Background(), r, dpopToken, "")
		require.ErrorIs(t, err, introspect.ErrInvalidDPoPProof)
		assert.Empty(t, v.Nonce())
	}
	assert.Nil(t, (*introspect.DPoPVerifier)(nil).Algorithms())
}

// Many clients: more keys than the key cache holds all verify, and a key's
// proofs keep verifying after its cache entry was dropped.
func TestDPoPManyKeys(t *testing.T) {
	v := newDPoPVerifier(t)
	keys := make([]*introspecttest.DPoPKey, 1100)
	for i := range keys {
		keys[i] = newDPoPKey(t, "ES256")
	}
	for round := range 2 {
		for i, k := range keys {
			jkt, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken)), dpopToken, k.JKT())
			require.NoError(t, err, "round %d, key %d", round, i)
			require.Equal(t, k.JKT(), jkt)
		}
	}
}

// The key cache is keyed by the exact jwk: a cached key does not let a
// proof with another jwk through, nor does a jwk that is the cached one
// with a private member added.
func TestDPoPKeyCacheExact(t *testing.T) {
	v := newDPoPVerifier(t)
	k := newDPoPKey(t, "ES256")
	_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopToken)), dpopToken, "")
	require.NoError(t, err)
	h := goodHeader(k)
	h["jwk"] = jwkWith(t, k, map[string]any{"d": "AAAA"})
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, rawProof(t, k, h, goodClaims())), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"jwk holds private key material")
	h = goodHeader(k)
	h["alg"] = "ES384"
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, rawProof(t, k, h, goodClaims())), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"jwk does not suit the algorithm", "a cached key is checked against the algorithm")
}

// An Ed25519 key: the signature is over the message, not a digest, and a
// signature of the wrong length is refused.
func TestDPoPEd25519Signature(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k, err := introspecttest.NewDPoPKeyFrom(priv, "")
	require.NoError(t, err)
	require.Equal(t, "EdDSA", k.Alg())
	v := newDPoPVerifier(t)
	p := proofAt(k, "GET", dpopURL, dpopToken)
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p+"AAAA"), dpopToken, "")
	require.EqualError(t, err, dpopPrefix+"bad signature")
	_, err = v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, "")
	require.NoError(t, err)
}

// dpopPrintNonceSecret is the nonce secret planted in the printing samples.
const dpopPrintNonceSecret = "s3cr3t-nonce-Hq4TzW8pLs2VnX6cR1mB"

// dpopPrintSamples returns the printing table's entries for the DPoP types,
// and what their printed forms must not contain: the nonce secret and the
// keys of the replay cache.
func dpopPrintSamples(t *testing.T) (map[string]printcheck.Entry, []printcheck.Leak) {
	t.Helper()
	v := newDPoPVerifier(t, introspect.WithDPoPNonces([]byte(dpopPrintNonceSecret), time.Minute),
		introspect.WithDPoPExternalURL("https://api.example"))
	k := newDPoPKey(t, "ES256")
	const jti = "s3cr3t-jti-Rk2WqZ"
	p := proofAt(k, "GET", dpopURL, dpopToken, introspecttest.WithProofJTI(jti), introspecttest.WithProofNonce(v.Nonce()))
	_, err := v.Verify(context.Background(), dpopRequest("GET", dpopURL, p), dpopToken, k.JKT())
	require.NoError(t, err)
	var recorded []byte // the key the verifier recorded: SHA-256 over the thumbprint and the jti, length-prefixed
	recorded = binary.BigEndian.AppendUint32(recorded, uint32(len(k.JKT())))
	recorded = append(recorded, k.JKT()...)
	recorded = binary.BigEndian.AppendUint32(recorded, uint32(len(jti)))
	recorded = append(recorded, jti...)
	verifierKey := sha256.Sum256(recorded)

	cache, err := introspect.NewDPoPMemoryReplayCache(100)
	require.NoError(t, err)
	cacheKey := sha256.Sum256([]byte("printed"))
	_, err = cache.Seen(context.Background(), cacheKey, time.Now().Add(time.Hour))
	require.NoError(t, err)
	vCopy, cacheCopy := *v, *cache
	nonceErr := &introspect.DPoPNonceError{Nonce: v.Nonce()}

	entries := map[string]printcheck.Entry{
		"DPoPVerifier": {Samples: []any{v, vCopy, &vCopy, (*introspect.DPoPVerifier)(nil), introspect.DPoPVerifier{}}},
		"DPoPMemoryReplayCache": {Samples: []any{cache, cacheCopy, &cacheCopy, (*introspect.DPoPMemoryReplayCache)(nil),
			introspect.DPoPMemoryReplayCache{}}},
		"DPoPNonceError":  {Samples: []any{nonceErr, *nonceErr}, Reason: "the nonce is sent to every client in a DPoP-Nonce header"},
		"DPoPOption":      {Reason: "a function type"},
		"DPoPReplayCache": {Reason: "an interface: DPoPMemoryReplayCache has an entry of its own"},
	}
	bad := printcheck.StringForms("DPoP nonce secret", dpopPrintNonceSecret)
	bad = append(bad, printcheck.StringForms("DPoP jti", jti)...)
	bad = append(bad, printcheck.BytesForms("DPoP replay key", verifierKey[:])...)
	bad = append(bad, printcheck.BytesForms("DPoP replay cache key", cacheKey[:])...)
	return entries, bad
}

// A resource server behind a proxy checks the DPoP proof of a request for
// the token it carries, bound to the key whose thumbprint the authorization
// server reported in cnf.jkt.
func ExampleDPoPVerifier() {
	v, err := introspect.NewDPoPVerifier(
		introspect.WithDPoPExternalURL("https://api.example.com"), // the URL clients use
	)
	if err != nil {
		log.Fatal(err)
	}

	// A client's key, and the request it sends through the proxy.
	key, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		log.Fatal(err)
	}
	token := "an-access-token"
	r := httptest.NewRequest(http.MethodGet, "http://10.0.0.7:8080/files?page=2", nil)
	r.Header.Set("Authorization", "DPoP "+token)
	r.Header.Set("DPoP", key.Proof(http.MethodGet, "https://api.example.com/files", token))

	boundJKT := key.JKT() // the token's cnf.jkt, from the introspection answer
	jkt, err := v.Verify(r.Context(), r, token, boundJKT)
	fmt.Println(err == nil, jkt == boundJKT)

	_, err = v.Verify(r.Context(), r, token, boundJKT) // the same proof again
	fmt.Println(err)
	// Output:
	// true true
	// introspect: token is not active: invalid DPoP proof: proof replayed
}
