package introspecttest

import (
	"crypto"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// discovery is the server's metadata, keys and signed-answer state.
type discovery struct {
	oauthPath  string // RFC 8414 location, "" when not served
	openIDPath string // OpenID Connect location, "" when not served
	calls      atomic.Int64
	jwksCalls  atomic.Int64

	mu           sync.Mutex // guards the fields below
	metadata     func(map[string]any)
	cacheControl string
	fault        *Fault
	jwksFault    *Fault
	signer       crypto.Signer
	givenKey     bool // signer came from WithSigningKey
	alg          string
	kid          string
	hook         func(*SignedAnswer)

	// Guarded by Server.mu.
	assertion AssertionInfo
	jtis      map[string]bool
}

// WithIssuerPath gives the server an issuer with a path: URL + path (say
// "/tenant1"). Its metadata is then served at
// /.well-known/oauth-authorization-server/tenant1 (RFC 8414 §3.1) and
// /tenant1/.well-known/openid-configuration.
func WithIssuerPath(path string) Option {
	return func(c *serverConfig) { c.issuerPath = "/" + strings.Trim(path, "/") }
}

// WithoutOAuthMetadata serves the metadata only at the OpenID Connect
// location, as OpenID providers that predate RFC 8414 do.
func WithoutOAuthMetadata() Option {
	return func(c *serverConfig) { c.noOAuth = true }
}

// WithoutOpenIDConfiguration serves the metadata only at the RFC 8414
// location, as a plain OAuth server does.
func WithoutOpenIDConfiguration() Option {
	return func(c *serverConfig) { c.noOpenID = true }
}

// WithMetadata lets f change the metadata document before each answer
// (delete a member, set the auth methods, point elsewhere). See also
// [Server.SetMetadata].
func WithMetadata(f func(m map[string]any)) Option {
	return func(c *serverConfig) { c.metadata = f }
}

func (s *Server) initDiscovery(cfg *serverConfig) {
	d := &s.disco
	issPath := strings.TrimPrefix(s.Issuer, s.URL)
	if !cfg.noOAuth {
		d.oauthPath = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(issPath, "/")
	}
	if !cfg.noOpenID {
		d.openIDPath = strings.TrimSuffix(issPath, "/") + "/.well-known/openid-configuration"
	}
	d.metadata = cfg.metadata
	d.signer, d.alg, d.givenKey = cfg.signer, cfg.signAlg, cfg.signer != nil
	if d.signer == nil {
		d.signer, d.alg = newSigningKey()
	}
	d.kid = randomID()
}

// SetMetadata replaces the function that changes the metadata document; nil
// restores the plain document.
func (s *Server) SetMetadata(f func(m map[string]any)) {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	s.disco.metadata = f
}

// SetMetadataCacheControl sets the Cache-Control header of the metadata and
// JWKS answers ("max-age=60", say). Default none.
func (s *Server) SetMetadataCacheControl(v string) {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	s.disco.cacheControl = v
}

// SetDiscoveryFault makes the metadata endpoints misbehave as f says, until
// cleared with a nil-valued [Fault]{}.
func (s *Server) SetDiscoveryFault(f Fault) {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	s.disco.fault = faultOrNil(f)
}

// SetJWKSFault makes the JWKS endpoint misbehave as f says, until cleared
// with a zero [Fault]{}.
func (s *Server) SetJWKSFault(f Fault) {
	s.disco.mu.Lock()
	defer s.disco.mu.Unlock()
	s.disco.jwksFault = faultOrNil(f)
}

func faultOrNil(f Fault) *Fault {
	if f.before == nil && f.answer == nil {
		return nil
	}
	return &f
}

// DiscoveryCalls is the number of metadata requests received.
func (s *Server) DiscoveryCalls() int64 { return s.disco.calls.Load() }

// JWKSCalls is the number of JWKS requests received.
func (s *Server) JWKSCalls() int64 { return s.disco.jwksCalls.Load() }

// JWKSURL is the URL of the server's key set.
func (s *Server) JWKSURL() string { return s.URL + "/jwks" }

// MTLSIntrospectionURL is the mutual-TLS alias of the introspection
// endpoint, published in the metadata of a [WithTLS] server.
func (s *Server) MTLSIntrospectionURL() string { return s.URL + "/mtls/introspect" }

// Metadata returns the metadata document as it would be served now.
func (s *Server) Metadata() map[string]any {
	methods := []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"}
	if s.isTLS() {
		methods = append(methods, "tls_client_auth", "self_signed_tls_client_auth")
	}
	s.disco.mu.Lock()
	alg, f := s.disco.alg, s.disco.metadata
	s.disco.mu.Unlock()
	m := map[string]any{
		"issuer":                   s.Issuer,
		"introspection_endpoint":   s.IntrospectionURL(),
		"jwks_uri":                 s.JWKSURL(),
		"userinfo_endpoint":        s.UserinfoURL(),
		"response_types_supported": []string{"code"},
		"introspection_endpoint_auth_methods_supported":            methods,
		"introspection_endpoint_auth_signing_alg_values_supported": []string{"HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA"},
		"introspection_signing_alg_values_supported":               []string{alg},
	}
	if s.isTLS() {
		m["mtls_endpoint_aliases"] = map[string]any{"introspection_endpoint": s.MTLSIntrospectionURL()}
	}
	if f != nil {
		f(m)
	}
	return m
}

func (s *Server) isTLS() bool { return strings.HasPrefix(s.URL, "https://") }

// serveMetadata answers the well-known metadata locations; other paths 404.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "" || (p != s.disco.oauthPath && p != s.disco.openIDPath) {
		http.NotFound(w, r)
		return
	}
	s.disco.calls.Add(1)
	s.disco.mu.Lock()
	f, cc := s.disco.fault, s.disco.cacheControl
	s.disco.mu.Unlock()
	if f != nil && f.before != nil && f.before(s, w, r) {
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, cc, s.Metadata())
}

func writeJSON(w http.ResponseWriter, cacheControl string, v any) {
	w.Header().Set("Content-Type", "application/json")
	if cacheControl != "" {
		w.Header().Set("Cache-Control", cacheControl)
	}
	_ = json.NewEncoder(w).Encode(v)
}

// serveJWKS answers the server's public signing key.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.disco.jwksCalls.Add(1)
	s.disco.mu.Lock()
	f, cc := s.disco.jwksFault, s.disco.cacheControl
	s.disco.mu.Unlock()
	if f != nil && f.before != nil && f.before(s, w, r) {
		return
	}
	set, err := s.publicJWKS()
	if err != nil {
		http.Error(w, "no key", http.StatusInternalServerError)
		return
	}
	writeJSON(w, cc, set)
}
