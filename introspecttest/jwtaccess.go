package introspecttest

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"

	"github.com/golang-jwt/jwt/v5"
)

// IssueJWT issues an RFC 9068 JWT access token with the claims of c, signed
// by the server's current signing key (the one of its JWKS, ES256 unless
// [WithSigningKey] says otherwise; [Server.RotateSigningKey] rotates it),
// with the header typ "at+jwt" and the key's kid. The claims are those
// [Server.Issue] would answer for c, without "active" and "token_type", with
// a fresh "jti": iss (the server's Issuer by default), exp (an hour by
// default), iat, aud, sub, client_id, scope, nbf, cnf and the extra claims.
// The introspection endpoint answers for the token as for one from Issue,
// and [Server.Revoke] revokes it there.
func (s *Server) IssueJWT(c Claims) string {
	return s.IssueJWTFunc(c, nil)
}

// IssueJWTFunc is [Server.IssueJWT] with edit called on the header and the
// claims before they are signed, to forge a bad token: a header member
// changed or removed ("typ", "kid", "crit", "jku", ...), a claim added. The
// header's "alg" is the key's; edit may set it to "none" (the token is then
// unsigned) or to an HMAC algorithm (the token is then keyed with the
// public key's PEM text, as in an algorithm confusion attack against a
// verifier that keys HMAC with the PEM it was given).
func (s *Server) IssueJWTFunc(c Claims, edit func(header, claims map[string]any)) string {
	tok := s.Issue(c)
	s.mu.Lock()
	stored := *s.tokens[tok]
	s.mu.Unlock()
	claims := stored.answer()
	delete(claims, "active")
	delete(claims, "token_type")
	if _, ok := claims["jti"]; !ok {
		claims["jti"] = randomID()
	}
	s.disco.mu.Lock()
	signer, alg, kid := s.disco.signer, s.disco.alg, s.disco.kid
	s.disco.mu.Unlock()
	header := map[string]any{"typ": "at+jwt", "kid": kid, "alg": alg}
	if edit != nil {
		edit(header, claims)
	}
	a, _ := header["alg"].(string)
	var method jwt.SigningMethod
	var key any = signer
	switch {
	case a == "none":
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	case len(a) == 5 && a[:2] == "HS":
		method, key = jwt.GetSigningMethod(a), publicDER(signer)
	default:
		method = signingMethod(alg)
	}
	t := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	t.Header = header
	signed, err := t.SignedString(key)
	if err != nil {
		panic("introspecttest: signing a JWT: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[signed] = s.tokens[tok]
	delete(s.tokens, tok)
	return signed
}

// publicDER is the PEM form of the signer's public key, the "secret" of an
// algorithm confusion attack.
func publicDER(signer crypto.Signer) []byte {
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		panic("introspecttest: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
