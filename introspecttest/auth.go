package introspecttest

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionInfo describes the client assertion (RFC 7523) of a request.
type AssertionInfo struct {
	Alg      string        // the header's "alg"
	KeyID    string        // the header's "kid"
	Audience []string      // the "aud" claim
	Lifetime time.Duration // exp - iat
	JWTID    string        // the "jti" claim
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// WithoutBasicFormDecoding makes the server take the client ID and secret of
// client_secret_basic as they come out of base64, without the RFC 6749
// §2.3.1 form-decoding, as servers that treat them like a plain HTTP Basic
// login do. Such a server refuses a secret holding '+', '/', '=', '%', a
// space or another character that form-encoding changes when the client
// form-encodes it. Default: the credentials are form-decoded.
func WithoutBasicFormDecoding() Option {
	return func(c *serverConfig) { c.rawBasic = true }
}

// accepts reports whether the client may authenticate with method.
func (cl Client) accepts(method string) bool {
	if len(cl.Methods) > 0 {
		return slices.Contains(cl.Methods, method)
	}
	switch method {
	case "client_secret_basic", "client_secret_post":
		return true
	case "client_secret_jwt":
		return cl.Secret != ""
	case "private_key_jwt":
		return cl.PublicKey != nil
	case "tls_client_auth", "self_signed_tls_client_auth":
		return cl.Certificate != nil
	}
	return false
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (s *Server) client(id string) (Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.clients[id]
	return cl, ok
}

// authenticateAssertion checks a client assertion strictly: registered
// client, known algorithm and key, iss = sub = client_id, aud naming this
// server (issuer or endpoint), exp required and at most 5 minutes away, iat
// required, jti required and never seen before.
func (s *Server) authenticateAssertion(w http.ResponseWriter, r *http.Request) (method, clientID string, ok bool) {
	if r.PostForm.Get("client_assertion_type") != assertionType {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return "", "", false
	}
	raw := r.PostForm.Get("client_assertion")
	var cl Client
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
			"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(5*time.Second),
	)
	claims := jwt.MapClaims{}
	tok, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		iss, _ := claims["iss"].(string)
		c, known := s.client(iss)
		if !known {
			return nil, jwt.ErrTokenUnverifiable
		}
		cl = c
		if strings.HasPrefix(t.Method.Alg(), "HS") {
			method = "client_secret_jwt"
			if cl.Secret == "" {
				return nil, jwt.ErrTokenUnverifiable
			}
			return []byte(cl.Secret), nil
		}
		method = "private_key_jwt"
		if cl.PublicKey == nil {
			return nil, jwt.ErrTokenUnverifiable
		}
		return cl.PublicKey, nil
	})
	if err != nil || !tok.Valid {
		unauthorized(w)
		return method, cl.ID, false
	}
	info := assertionInfo(tok, claims)
	s.mu.Lock()
	s.disco.assertion = info
	s.mu.Unlock()
	sub, _ := claims["sub"].(string)
	formID := r.PostForm.Get("client_id")
	audOK := slices.ContainsFunc(info.Audience, func(a string) bool {
		return a == s.Issuer || a == s.IntrospectionURL() || a == s.URL+"/mtls/introspect"
	})
	if sub != cl.ID || (formID != "" && formID != cl.ID) || !audOK || info.JWTID == "" ||
		info.Lifetime <= 0 || info.Lifetime > 5*time.Minute || !cl.accepts(method) || !s.useJTI(cl.ID, info.JWTID) {
		unauthorized(w)
		return method, cl.ID, false
	}
	return method, cl.ID, true
}

func assertionInfo(tok *jwt.Token, claims jwt.MapClaims) AssertionInfo {
	info := AssertionInfo{Alg: tok.Method.Alg()}
	info.KeyID, _ = tok.Header["kid"].(string)
	info.Audience, _ = claims.GetAudience()
	info.JWTID, _ = claims["jti"].(string)
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if exp != nil && iat != nil {
		info.Lifetime = exp.Sub(iat.Time)
	}
	return info
}

// useJTI records a jti and reports whether it was new.
func (s *Server) useJTI(clientID, jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disco.jtis == nil {
		s.disco.jtis = make(map[string]bool)
	}
	k := clientID + "\x00" + jti
	if s.disco.jtis[k] {
		return false
	}
	s.disco.jtis[k] = true
	return true
}

// authenticateBearer accepts an active token issued to a registered client
// that accepts "bearer_token".
func (s *Server) authenticateBearer(w http.ResponseWriter, tok string) (method, clientID string, ok bool) {
	method = "bearer_token"
	s.mu.Lock()
	c, active := s.tokens[tok]
	s.mu.Unlock()
	if !active || !c.Expiry.IsZero() && !s.now().Before(c.Expiry) {
		unauthorized(w)
		return method, "", false
	}
	cl, known := s.client(c.ClientID)
	if !known || !cl.accepts(method) {
		unauthorized(w)
		return method, c.ClientID, false
	}
	return method, cl.ID, true
}

// authenticateWithoutSecret handles a request carrying only client_id: a
// TLS client certificate (RFC 8705) or a public client.
func (s *Server) authenticateWithoutSecret(w http.ResponseWriter, r *http.Request) (method, clientID string, ok bool) {
	clientID = r.PostForm.Get("client_id")
	cl, known := s.client(clientID)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		method = "tls_client_auth"
		if len(cl.Methods) > 0 && !slices.Contains(cl.Methods, method) {
			method = "self_signed_tls_client_auth"
		}
		if !known || cl.Certificate == nil || !bytes.Equal(cl.Certificate.Raw, r.TLS.PeerCertificates[0].Raw) || !cl.accepts(method) {
			unauthorized(w)
			return method, clientID, false
		}
		return method, clientID, true
	}
	method = "none"
	if !known || !cl.accepts(method) {
		unauthorized(w)
		return method, clientID, false
	}
	return method, clientID, true
}
