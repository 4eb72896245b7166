package introspecttest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// decodeProof returns the header and the claims of a proof.
func decodeProof(t *testing.T, proof string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(proof, ".")
	require.Len(t, parts, 3)
	for i, m := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, m))
	}
	return header, claims
}

// verifyProof checks the signature of proof with jwx and the key of its
// jwk header, and returns the claims it signs.
func verifyProof(t *testing.T, proof string, pub crypto.PublicKey, alg string) []byte {
	t.Helper()
	a, ok := jwa.LookupSignatureAlgorithm(alg)
	require.True(t, ok)
	payload, err := jws.Verify([]byte(proof), jws.WithKey(a, pub))
	require.NoError(t, err)
	return payload
}

// thumbprint is the RFC 7638 SHA-256 thumbprint computed from the members
// of jwk, as the RFC spells it out.
func thumbprint(t *testing.T, jwk map[string]any) string {
	t.Helper()
	var canonical string
	switch jwk["kty"] {
	case "EC":
		canonical = `{"crv":"` + jwk["crv"].(string) + `","kty":"EC","x":"` + jwk["x"].(string) + `","y":"` + jwk["y"].(string) + `"}`
	case "OKP":
		canonical = `{"crv":"` + jwk["crv"].(string) + `","kty":"OKP","x":"` + jwk["x"].(string) + `"}`
	case "RSA":
		canonical = `{"e":"` + jwk["e"].(string) + `","kty":"RSA","n":"` + jwk["n"].(string) + `"}`
	default:
		t.Fatalf("key type %v", jwk["kty"])
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// A key of each algorithm makes proofs as RFC 9449 §4.2 has them: typ,
// alg and a public jwk in the header; jti, htm, htu without query and
// fragment, iat and ath in the claims; signed in the algorithm.
func TestDPoPKeyProof(t *testing.T) {
	for _, alg := range []string{"", "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"} {
		t.Run(alg, func(t *testing.T) {
			k, err := introspecttest.NewDPoPKey(alg)
			require.NoError(t, err)
			want := alg
			if want == "" {
				want = "ES256"
			}
			assert.Equal(t, want, k.Alg())

			before := time.Now().Unix()
			proof := k.Proof("POST", "https://api.example/files?x=1#top", "tok")
			h, c := decodeProof(t, proof)
			assert.Equal(t, "dpop+jwt", h["typ"])
			assert.Equal(t, want, h["alg"])
			jwk, ok := h["jwk"].(map[string]any)
			require.True(t, ok)
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				assert.NotContains(t, jwk, private)
			}
			assert.Equal(t, thumbprint(t, jwk), k.JKT())
			var pub map[string]any
			require.NoError(t, json.Unmarshal(k.PublicJWK(), &pub))
			assert.Equal(t, jwk, pub)

			assert.Equal(t, "POST", c["htm"])
			assert.Equal(t, "https://api.example/files", c["htu"])
			sum := sha256.Sum256([]byte("tok"))
			assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), c["ath"])
			assert.Len(t, c["jti"], 22, "128 random bits")
			assert.InDelta(t, before, c["iat"], 2)
			assert.NotContains(t, c, "nonce")

			payload := verifyProof(t, proof, k.Public(), want)
			assert.JSONEq(t, string(mustJSON(t, c)), string(payload))

			_, c2 := decodeProof(t, k.Proof("POST", "https://api.example/files", ""))
			assert.NotContains(t, c2, "ath", "no token, no ath")
			assert.NotEqual(t, c["jti"], c2["jti"])
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// The options set the nonce, iat and jti, change or remove any header
// parameter or claim, and sign with another key.
func TestDPoPKeyProofOptions(t *testing.T) {
	k, err := introspecttest.NewDPoPKey("ES256")
	require.NoError(t, err)
	other, err := introspecttest.NewDPoPKey("ES256")
	require.NoError(t, err)
	at := time.Unix(1_700_000_000, 0)
	proof := k.Proof("GET", "https://api.example/", "tok",
		introspecttest.WithProofNonce("n-1"),
		introspecttest.WithProofIssuedAt(at),
		introspecttest.WithProofJTI("j-1"),
		introspecttest.WithProofHeader("typ", "JWT"),
		introspecttest.WithProofHeader("kid", "k1"),
		introspecttest.WithProofHeader("jwk", nil),
		introspecttest.WithProofClaim("ath", nil),
		introspecttest.WithProofClaim("htu", json.RawMessage("null")),
		introspecttest.WithProofClaim("extra", []int{1, 2}),
	)
	h, c := decodeProof(t, proof)
	assert.Equal(t, map[string]any{"typ": "JWT", "alg": "ES256", "kid": "k1"}, h)
	assert.Equal(t, map[string]any{"jti": "j-1", "htm": "GET", "htu": nil, "iat": float64(at.Unix()), "nonce": "n-1",
		"extra": []any{float64(1), float64(2)}}, c)
	verifyProof(t, proof, k.Public(), "ES256")

	forged := k.Proof("GET", "https://api.example/", "tok", introspecttest.WithProofSignedBy(other))
	h, _ = decodeProof(t, forged)
	assert.Equal(t, k.JKT(), thumbprint(t, h["jwk"].(map[string]any)), "the header keeps the key's jwk")
	_, err = jws.Verify([]byte(forged), jws.WithKey(jwa.ES256(), k.Public()))
	assert.Error(t, err, "the signature is another key's")
	verifyProof(t, forged, other.Public(), "ES256")

	assert.Panics(t, func() {
		k.Proof("GET", "https://api.example/", "", introspecttest.WithProofClaim("bad", make(chan int)))
	})
}

// Sign signs whatever it is given, as it is.
func TestDPoPKeySign(t *testing.T) {
	k, err := introspecttest.NewDPoPKey("EdDSA")
	require.NoError(t, err)
	proof := k.Sign([]byte("not json"), []byte(`{"jti":"a","jti":"b"}`))
	parts := strings.Split(proof, ".")
	require.Len(t, parts, 3)
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	assert.Equal(t, "not json", string(h))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	assert.True(t, ed25519.Verify(k.Public().(ed25519.PublicKey), []byte(parts[0]+"."+parts[1]), sig))
}

// Bind binds claims to the key (cnf.jkt, token type DPoP) without
// changing the caller's map, and the server answers with the binding.
func TestDPoPKeyBind(t *testing.T) {
	k, err := introspecttest.NewDPoPKey("")
	require.NoError(t, err)
	cnf := map[string]string{"x5t#S256": "abc"}
	c := k.Bind(introspecttest.Claims{Subject: "alice", Confirmation: cnf})
	assert.Equal(t, map[string]string{"x5t#S256": "abc", "jkt": k.JKT()}, c.Confirmation)
	assert.Equal(t, map[string]string{"x5t#S256": "abc"}, cnf, "the caller's map is left alone")
	assert.Equal(t, "DPoP", c.TokenType)
	assert.Equal(t, "N_A", k.Bind(introspecttest.Claims{TokenType: "N_A"}).TokenType)

	srv := introspecttest.NewServer(introspecttest.WithClient("rs", "secret"))
	t.Cleanup(srv.Close)
	tok := srv.Issue(k.Bind(introspecttest.Claims{Subject: "alice"}))
	resp, err := http.PostForm(srv.IntrospectionURL(), url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {"secret"}})
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	var answer struct {
		Active    bool              `json:"active"`
		TokenType string            `json:"token_type"`
		Cnf       map[string]string `json:"cnf"`
	}
	require.NoError(t, json.Unmarshal(body, &answer))
	assert.True(t, answer.Active)
	assert.Equal(t, "DPoP", answer.TokenType)
	assert.Equal(t, map[string]string{"jkt": k.JKT()}, answer.Cnf)
}

// A key of your own: its algorithm follows from its type, and one that
// does not suit it is refused, as are unknown algorithms and key types.
func TestNewDPoPKeyFrom(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	k, err := introspecttest.NewDPoPKeyFrom(p384, "")
	require.NoError(t, err)
	assert.Equal(t, "ES384", k.Alg())
	verifyProof(t, k.Proof("GET", "https://a/", ""), p384.Public(), "ES384")

	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	_, err = introspecttest.NewDPoPKeyFrom(p224, "")
	assert.EqualError(t, err, "introspecttest: NewDPoPKeyFrom: unsupported curve")
	_, err = introspecttest.NewDPoPKeyFrom(p384, "ES256")
	assert.EqualError(t, err, `introspecttest: NewDPoPKeyFrom: the key signs with ES384, not "ES256"`)
	_, err = introspecttest.NewDPoPKeyFrom(nil, "")
	assert.EqualError(t, err, "introspecttest: NewDPoPKeyFrom: nil key")
	_, err = introspecttest.NewDPoPKeyFrom(otherSigner{}, "")
	assert.EqualError(t, err, "introspecttest: NewDPoPKeyFrom: unsupported key type string")
	rsaKey, err := introspecttest.NewDPoPKey("RS256")
	require.NoError(t, err)
	assert.Equal(t, "RS256", rsaKey.Alg())

	for _, alg := range []string{"none", "HS256", "ES256K", "PS1024", "RS"} {
		_, err := introspecttest.NewDPoPKey(alg)
		assert.ErrorContains(t, err, "introspecttest: NewDPoPKey: unknown algorithm", alg)
	}
}

// otherSigner is a signer of an unsupported key type.
type otherSigner struct{}

func (otherSigner) Public() crypto.PublicKey { return "public" }

func (otherSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

// A test issues a token bound to a client's DPoP key and sends it with a
// proof, as a DPoP client would.
func ExampleDPoPKey() {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "secret"))
	defer as.Close()
	key, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		log.Fatal(err)
	}
	tok := as.Issue(key.Bind(introspecttest.Claims{Subject: "alice", Scope: "read"}))

	r := httptest.NewRequest(http.MethodGet, "https://api.example/files", nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", key.Proof(r.Method, r.URL.String(), tok))

	// A proof that must fail: made for another method.
	bad := key.Proof(http.MethodPost, r.URL.String(), tok)
	fmt.Println(len(strings.Split(bad, ".")), key.Alg())
	// Output: 3 ES256
}
