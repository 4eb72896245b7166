package introspecttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"mime"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// SignedAnswer is a signed introspection answer (RFC 9701) about to be
// sent. A hook set with [Server.SetSignedAnswerHook] may change it to forge
// a bad one.
type SignedAnswer struct {
	// Header holds "typ" (token-introspection+jwt) and "kid"; "alg" is set
	// from Alg unless the hook sets it.
	Header map[string]any
	// Claims holds "iss", "aud" (the client ID), "iat" and
	// "token_introspection".
	Claims map[string]any
	// Alg is the signing algorithm: the server's, or "none", or an HMAC
	// algorithm keyed with Key.
	Alg string
	// Key replaces the server's key: []byte for HMAC.
	Key any
	// Body, when not empty, is sent instead of the signed answer.
	Body string
	// ContentType of the answer. Default application/token-introspection+jwt.
	ContentType string
}

// WithSigningKey sets the key and algorithm of signed answers (ES256 with a
// fresh P-256 key by default).
func WithSigningKey(key crypto.Signer, alg string) Option {
	return func(c *serverConfig) { c.signer, c.signAlg = key, alg }
}

// SetSignedAnswerHook makes f change every signed answer; nil restores
// honest answers.
func (s *Server) SetSignedAnswerHook(f func(*SignedAnswer)) {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	s.disco.hook = f
}

// SigningKey returns the key signing the answers and its key ID.
func (s *Server) SigningKey() (crypto.Signer, string) {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	return s.disco.signer, s.disco.kid
}

// RotateSigningKey gives the signing key a new key ID and, unless the key
// came from [WithSigningKey], replaces it by a fresh ES256 key; the JWKS then
// holds only the new key.
func (s *Server) RotateSigningKey() {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	if !s.disco.givenKey {
		s.disco.signer, s.disco.alg = newSigningKey()
	}
	s.disco.kid = randomID()
}

func newSigningKey() (crypto.Signer, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("introspecttest: " + err.Error())
	}
	return k, "ES256"
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// publicJWKS is the key set of the server: its public signing key.
func (s *Server) publicJWKS() (jwk.Set, error) {
	s.disco.mu.Lock()
	signer, alg, kid := s.disco.signer, s.disco.alg, s.disco.kid
	s.disco.mu.Unlock()
	k, err := jwk.Import(signer.Public())
	if err != nil {
		return nil, err
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.AlgorithmKey, alg)
	_ = k.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(k)
	return set, nil
}

// wantsJWT reports whether the request asks for a signed answer.
func wantsJWT(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/token-introspection+jwt" {
			return true
		}
	}
	return false
}

// writeSigned sends answer as an RFC 9701 signed JWT for clientID.
func (s *Server) writeSigned(w http.ResponseWriter, clientID string, answer map[string]any) {
	s.disco.mu.Lock()
	a := &SignedAnswer{
		Header: map[string]any{"typ": "token-introspection+jwt", "kid": s.disco.kid},
		Claims: map[string]any{
			"iss": s.Issuer, "aud": clientID, "iat": s.now().Unix(),
			"token_introspection": answer,
		},
		Alg:         s.disco.alg,
		Key:         s.disco.signer,
		ContentType: "application/token-introspection+jwt",
	}
	hook := s.disco.hook
	s.disco.mu.Unlock()
	if hook != nil {
		hook(a)
	}
	writeJWS(w, a)
}

// writeJWS signs and sends a, or sends its Body.
func writeJWS(w http.ResponseWriter, a *SignedAnswer) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", a.ContentType)
	if a.Body != "" {
		_, _ = w.Write([]byte(a.Body))
		return
	}
	method := signingMethod(a.Alg)
	key := a.Key
	if a.Alg == "none" {
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	}
	if method == nil {
		http.Error(w, "unknown alg", http.StatusInternalServerError)
		return
	}
	t := jwt.NewWithClaims(method, jwt.MapClaims(a.Claims))
	t.Header["alg"] = a.Alg // Ed25519 signs as EdDSA under its own name
	for k, v := range a.Header {
		t.Header[k] = v
	}
	signed, err := t.SignedString(key)
	if err != nil {
		http.Error(w, "signing failed", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(signed))
}

// lastAssertion returns the assertion info of r, recorded by
// authenticateAssertion. s.mu is held.
func (s *Server) lastAssertion(r *http.Request) AssertionInfo {
	if _, ok := r.PostForm["client_assertion"]; !ok {
		return AssertionInfo{}
	}
	a := s.disco.assertion
	s.disco.assertion = AssertionInfo{}
	return a
}

// signingMethod is the JOSE library's method for alg, nil if it has none.
// Ed25519, the fully-specified name of EdDSA with an Ed25519 key (RFC
// 9864), signs as EdDSA.
func signingMethod(alg string) jwt.SigningMethod {
	if alg == "Ed25519" {
		return jwt.SigningMethodEdDSA
	}
	return jwt.GetSigningMethod(alg)
}
