package introspect_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// fuzzDPoPKey is a fixed P-256 key, so that seeds of the corpus carry its
// jwk and their signatures verify.
func fuzzDPoPKey(f *testing.F) *introspecttest.DPoPKey {
	f.Helper()
	d := sha256.Sum256([]byte("introspect DPoP fuzz key"))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		f.Fatal(err)
	}
	k, err := introspecttest.NewDPoPKeyFrom(priv, "ES256")
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzDPoPProof feeds the verifier proofs made of an arbitrary header and
// arbitrary claims, signed with a fixed key so that the checks past the
// signature run, and arbitrary DPoP headers as they are, for a request of
// arbitrary method, host and path. Verify never panics; every error matches
// ErrInvalidDPoPProof or ErrDPoPKeyMismatch, is printable ASCII in the
// package's words and repeats nothing of the input; a proof that passes has
// a header and claims that encoding/json reads as Verify did.
func FuzzDPoPProof(f *testing.F) {
	k := fuzzDPoPKey(f)
	ath := func(tok string) string {
		sum := sha256.Sum256([]byte(tok))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	header := fmt.Sprintf(`{"typ":"dpop+jwt","alg":"ES256","jwk":%s}`, k.PublicJWK())
	claims := func(htm, htu, extra string) string {
		return fmt.Sprintf(`{"jti":"j1","htm":%q,"htu":%q,"iat":%d,"ath":%q%s}`, htm, htu, dpopNow.Unix(), ath("tok"), extra)
	}
	seeds := []struct {
		header, claims, raw, method, host, path, token string
		bound                                          bool
	}{
		{header, claims("GET", "http://api.example/a", ""), "", "GET", "api.example", "/a", "tok", true},
		{header, claims("POST", "HTTP://API.example:80/a%2fb/c%7e d?q", ""), "", "POST", "api.example", "/a%2Fb/c~%20d", "tok", false},
		{header, claims("POST", "http://api.example/a#f", ""), "", "POST", "api.example", "/a", "tok", false},
		{header, claims("GET", "http://api.example/", `,"nonce":"n","jti":"again"`), "", "GET", "api.example", "", "tok", false},
		{`{"t\u0079p":"DPoP+JWT","alg":"ES256","jwk":` + string(k.PublicJWK()) + `,"crit":["b64"]}`, claims("GET", "https://api.example/a", ""), "", "GET", "api.example", "/a", "tok", false},
		{`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}}`, `{}`, "", "GET", "h", "/", "", false},
		{`{"typ":"dpop+jwt","alg":"PS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`, `{}`, "", "GET", "h", "/", "", false},
		{header, `{"jti":"","htm":"GET","htu":"https://[::1]:0/","iat":1.7e9}`, "", "GET", "[::1]:0", "/", "", false},
		{header, `{"htm":"GET","htu":"https://u@h/","iat":-0.5,"jti":"\ud800"}`, "", "GET", "h", "/", "", false},
		{"", "", k.Proof("GET", "https://api.example/a", "tok"), "GET", "api.example", "/a", "tok", true},
		{"", "", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AAAA", "GET", "api.example", "/a", "", false},
		{"", "", "a.b.c.d.e", "GET", "h", "/", "", false},
		{"[1,2", "{", "...", "", "", "", "", false},
	}
	for _, s := range seeds {
		f.Add([]byte(s.header), []byte(s.claims), s.raw, s.method, s.host, s.path, s.token, s.bound)
	}
	v, err := introspect.NewDPoPVerifier(introspect.WithDPoPClock(dpopClock))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, claims []byte, raw, method, host, path, token string, bound bool) {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			u = &url.URL{Path: path}
		}
		r := &http.Request{Method: method, Host: host, URL: u, Header: http.Header{}}
		boundJKT := ""
		if bound {
			boundJKT = k.JKT()
		}
		inputs := []string{string(header), string(claims), raw, method, host, path, token}
		check := func(proof string, signed bool) {
			r.Header.Set("DPoP", proof)
			jkt, err := v.Verify(context.Background(), r, token, boundJKT)
			if err != nil {
				checkDPoPError(t, err, append(inputs, proof))
				return
			}
			if len(jkt) != 43 || bound && jkt != k.JKT() || signed && jkt != k.JKT() {
				t.Fatalf("a proof passed with the thumbprint %q", jkt)
			}
			if signed {
				checkPassed(t, header, claims, method, token)
			}
		}
		if len(header) > 0 || len(claims) > 0 {
			check(k.Sign(header, claims), true)
		}
		if raw != "" {
			check(raw, false)
		}
	})
}

// checkDPoPError fails unless err is one of Verify's, in its words.
func checkDPoPError(t *testing.T, err error, inputs []string) {
	t.Helper()
	msg := err.Error()
	if !errors.Is(err, introspect.ErrInvalidDPoPProof) && !errors.Is(err, introspect.ErrDPoPKeyMismatch) {
		t.Fatalf("an error that is not a DPoP refusal: %v", msg)
	}
	if !strings.HasPrefix(msg, "introspect: token is not active: ") {
		t.Fatalf("an error not in the package's words: %q", msg)
	}
	for i := 0; i < len(msg); i++ {
		if msg[i] < 0x20 || msg[i] > 0x7e {
			t.Fatalf("an error with a byte that is not printable ASCII: %q", msg)
		}
	}
	rest := msg[len("introspect: token is not active: "):]
	for _, in := range inputs {
		if len(in) >= 8 && strings.Contains(rest, in) {
			t.Fatalf("the error %q repeats the input %q", msg, in)
		}
	}
}

// checkPassed fails unless encoding/json reads the header and claims of a
// proof that passed as Verify read them.
func checkPassed(t *testing.T, header, claims []byte, method, token string) {
	t.Helper()
	var h, c map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatalf("a proof passed with a header encoding/json refuses: %v", err)
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		t.Fatalf("a proof passed with claims encoding/json refuse: %v", err)
	}
	if typ, _ := h["typ"].(string); !strings.EqualFold(typ, "dpop+jwt") && !strings.EqualFold(typ, "application/dpop+jwt") {
		t.Fatalf("a proof passed with typ %q", typ)
	}
	if alg, _ := h["alg"].(string); alg != "ES256" {
		t.Fatalf("a proof passed with alg %q", alg)
	}
	if jwk, ok := h["jwk"].(map[string]any); !ok || jwk["d"] != nil {
		t.Fatalf("a proof passed with the jwk %v", h["jwk"])
	}
	if _, ok := h["crit"]; ok {
		t.Fatal("a proof passed with crit")
	}
	if htm, _ := c["htm"].(string); utf8.ValidString(method) && htm != method {
		t.Fatalf("a proof passed with htm %q for %q", htm, method)
	}
	if jti, _ := c["jti"].(string); jti == "" {
		t.Fatal("a proof passed without a jti")
	}
	if iat, ok := c["iat"].(float64); !ok || iat < float64(dpopNow.Unix()-300) || iat > float64(dpopNow.Unix()+5) {
		t.Fatalf("a proof passed with iat %v", c["iat"])
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		if a, _ := c["ath"].(string); a != base64.RawURLEncoding.EncodeToString(sum[:]) {
			t.Fatalf("a proof passed with ath %q", a)
		}
	}
}
