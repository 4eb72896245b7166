package introspecttest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// userinfo is the state of the userinfo endpoint.
type userinfo struct {
	calls atomic.Int64

	mu     sync.Mutex // guards the fields below
	fault  *Fault
	signed bool
	hook   func(*SignedAnswer)
}

// UserinfoURL is the URL of the OpenID Connect userinfo endpoint, published
// in the metadata as userinfo_endpoint.
func (s *Server) UserinfoURL() string { return s.URL + "/userinfo" }

// UserinfoCalls is the number of requests the userinfo endpoint received.
func (s *Server) UserinfoCalls() int64 { return s.ui.calls.Load() }

// SetUserinfoFault makes the userinfo endpoint misbehave as f says (only
// the faults that act before the answer: [Latency], [Block], [Respond],
// and the like), until cleared with a zero [Fault]{}.
func (s *Server) SetUserinfoFault(f Fault) {
	s.ui.mu.Lock()
	defer s.ui.mu.Unlock()
	s.ui.fault = faultOrNil(f)
}

// SetSignedUserinfo makes the userinfo endpoint answer with a JWT
// (application/jwt, OpenID Connect Core §5.3.2) signed by the server's
// signing key (the one of its JWKS), with the header typ "JWT" and the
// key's kid, and the claims iss (the server's Issuer), aud (the token's
// client_id, left out when it has none) and iat added; f, when not nil,
// may change each answer to forge a bad one. on false restores plain JSON
// answers.
func (s *Server) SetSignedUserinfo(on bool, f func(*SignedAnswer)) {
	s.ui.mu.Lock()
	defer s.ui.mu.Unlock()
	s.ui.signed, s.ui.hook = on, f
}

// serveUserinfo answers the claims of an active token given in an
// Authorization: Bearer header (GET or POST): sub and the extra claims it
// was issued with. A missing, unknown, revoked or expired token gets 401
// invalid_token.
func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	s.ui.calls.Add(1)
	s.ui.mu.Lock()
	f, signed, hook := s.ui.fault, s.ui.signed, s.ui.hook
	s.ui.mu.Unlock()
	if f != nil && f.before != nil && f.before(s, w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	var c *Claims
	active := false
	if strings.EqualFold(scheme, "Bearer") && tok != "" {
		s.mu.Lock()
		c, active = s.tokens[tok]
		s.mu.Unlock()
		if active && !c.Expiry.IsZero() && !s.now().Before(c.Expiry) {
			active = false
		}
	}
	if !active {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	claims := make(map[string]any, 1+len(c.Extra))
	for k, v := range c.Extra {
		claims[k] = v
	}
	if c.Subject != "" {
		claims["sub"] = c.Subject
	}
	if !signed {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(claims)
		return
	}
	claims["iss"] = s.Issuer
	claims["iat"] = s.now().Unix()
	if c.ClientID != "" {
		claims["aud"] = c.ClientID
	}
	s.disco.mu.Lock()
	a := &SignedAnswer{
		Header:      map[string]any{"typ": "JWT", "kid": s.disco.kid},
		Claims:      claims,
		Alg:         s.disco.alg,
		Key:         s.disco.signer,
		ContentType: "application/jwt",
	}
	s.disco.mu.Unlock()
	if hook != nil {
		hook(a)
	}
	writeJWS(w, a)
}
