// Package introspecttest provides an RFC 7662 authorization server for tests,
// in the manner of net/http/httptest: it issues and revokes tokens with chosen
// claims, authenticates clients strictly (a client registered with
// [WithClient] and an empty secret accepts an empty one, which real servers
// and this package's New refuse; client_secret_basic with RFC 6749
// §2.3.1 form-encoding, or without it as some servers do;
// client_secret_post; client_secret_jwt and private_key_jwt assertions with
// replay checks; tls_client_auth; a bearer token; none), serves its metadata (RFC 8414 and OpenID locations), a JWKS
// and signed answers (RFC 9701), an OpenID Connect userinfo endpoint, issues
// RFC 9068 JWT access tokens, counts calls and connections, and can be told
// to misbehave.
//
// Each Server is one issuer, with its own keys, tokens and clients: start
// several for a middleware that trusts several issuers or one per tenant
// (WithIssuerPath gives an issuer a path, as multi-tenant servers do).
//
// It is for tests and demos only: tokens live in memory and nothing is
// persisted.
package introspecttest

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Claims describe a token to issue.
type Claims struct {
	Subject   string
	ClientID  string
	Username  string
	Scope     string   // space-separated
	Audience  []string // sent as a string when it has one element
	Issuer    string   // default: the server's Issuer
	TokenType string   // default "Bearer"
	// TTL is the lifetime from now; zero means one hour. Ignored when Expiry is set.
	TTL time.Duration
	// Expiry sets exp exactly (it may be in the past).
	Expiry time.Time
	// NoExpiry leaves exp out of the answer.
	NoExpiry  bool
	NotBefore time.Time // nbf, omitted when zero
	IssuedAt  time.Time // iat; zero means the time of issue
	// Confirmation is sent as "cnf" (e.g. {"x5t#S256": "..."} or {"jkt": "..."}).
	Confirmation map[string]string
	// Extra members of the answer.
	Extra map[string]any
}

// Client is a registered client of the server.
type Client struct {
	ID     string
	Secret string
	// Methods lists the accepted authentication methods:
	// "client_secret_basic", "client_secret_post", "client_secret_jwt",
	// "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth",
	// "bearer_token" (an active token issued to this client, in an
	// Authorization: Bearer header) and "none". Empty accepts both secret
	// methods, plus client_secret_jwt when Secret is set, private_key_jwt
	// when PublicKey is set and the TLS methods when Certificate is set.
	Methods []string
	// PublicKey verifies the client's private_key_jwt assertions.
	PublicKey crypto.PublicKey
	// Certificate is the client's registered TLS client certificate.
	Certificate *x509.Certificate
}

// Request describes the last introspection request the server received,
// without the token or the secret.
type Request struct {
	AuthMethod    string // the client authentication method: "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "tls_client_auth", "bearer_token" or "none"
	ClientID      string
	TokenTypeHint string
	HasHint       bool
	Accept        string
	ContentType   string
	// Path is the path of the endpoint called (/introspect, or
	// /mtls/introspect for the mutual-TLS alias).
	Path string
	// Assertion describes a client_secret_jwt or private_key_jwt assertion.
	Assertion AssertionInfo
}

// Server is a test authorization server with an introspection endpoint at
// /introspect.
type Server struct {
	// URL is the base URL of the server, e.g. http://127.0.0.1:34567.
	URL string
	// Issuer is the default "iss" of issued tokens: URL unless WithIssuer says otherwise.
	Issuer string

	srv       *httptest.Server
	done      chan struct{}
	closeOnce sync.Once
	calls     atomic.Int64
	conns     atomic.Int64
	now       func() time.Time
	rawBasic  bool // WithoutBasicFormDecoding

	mu      sync.Mutex // guards clients, tokens, fault and last
	clients map[string]Client
	tokens  map[string]*Claims
	fault   *Fault
	last    Request

	disco discovery // metadata, keys and signed answers (discovery.go, jwt.go)
	ui    userinfo  // the userinfo endpoint (userinfo.go)
}

// Option configures a Server.
type Option func(*serverConfig)

type serverConfig struct {
	clients []Client
	now     func() time.Time
	tls     bool
	issuer  string

	issuerPath string
	noOAuth    bool
	noOpenID   bool
	metadata   func(map[string]any)
	signer     crypto.Signer
	signAlg    string
	rawBasic   bool
}

// WithClient registers a client accepting both secret methods.
func WithClient(id, secret string) Option {
	return func(c *serverConfig) { c.clients = append(c.clients, Client{ID: id, Secret: secret}) }
}

// WithRegisteredClient registers a client with its accepted methods.
func WithRegisteredClient(cl Client) Option {
	return func(c *serverConfig) { c.clients = append(c.clients, cl) }
}

// WithClock sets the server's clock for exp and iat. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *serverConfig) { c.now = now }
}

// WithTLS serves https with net/http/httptest's certificate, whose private
// key is public (it is in Go's sources): for tests only. Use
// [Server.HTTPClient] to reach it.
func WithTLS() Option {
	return func(c *serverConfig) { c.tls = true }
}

// WithIssuer sets the default "iss" of issued tokens.
func WithIssuer(iss string) Option {
	return func(c *serverConfig) { c.issuer = iss }
}

// NewServer starts a server on a loopback port. Close it when done.
func NewServer(opts ...Option) *Server {
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	s := &Server{
		done:     make(chan struct{}),
		now:      cfg.now,
		rawBasic: cfg.rawBasic,
		clients:  make(map[string]Client),
		tokens:   make(map[string]*Claims),
	}
	for _, cl := range cfg.clients {
		s.clients[cl.ID] = cl
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/introspect", s.introspect)
	mux.HandleFunc("/mtls/introspect", s.introspect)
	mux.HandleFunc("/jwks", s.serveJWKS)
	mux.HandleFunc("/userinfo", s.serveUserinfo)
	mux.HandleFunc("/", s.serveMetadata)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if cfg.tls {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	s.Issuer = cfg.issuer
	if s.Issuer == "" {
		s.Issuer = s.URL + cfg.issuerPath
	}
	s.initDiscovery(&cfg)
	return s
}

// IntrospectionURL is the URL of the introspection endpoint.
func (s *Server) IntrospectionURL() string { return s.URL + "/introspect" }

// HTTPClient returns a client that trusts the server's certificate (with
// [WithTLS]) and reaches it.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// Close stops the server, ending any hanging or trickling answers first.
// It is safe to call more than once, concurrently too.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// AddClient registers a client accepting both secret methods.
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = Client{ID: id, Secret: secret}
}

// AddRegisteredClient registers a client with its accepted methods and keys.
func (s *Server) AddRegisteredClient(cl Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[cl.ID] = cl
}

// Issue creates an active token with the given claims and returns it.
func (s *Server) Issue(c Claims) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	if c.Expiry.IsZero() && !c.NoExpiry {
		ttl := c.TTL
		if ttl == 0 {
			ttl = time.Hour
		}
		c.Expiry = now.Add(ttl)
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.Issuer == "" {
		c.Issuer = s.Issuer
	}
	if c.TokenType == "" {
		c.TokenType = "Bearer"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = &c
	return tok
}

// Revoke makes token inactive.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// Calls is the number of requests the introspection endpoint received.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Connections is the number of TCP connections the server accepted.
func (s *Server) Connections() int64 { return s.conns.Load() }

// LastRequest describes the last introspection request received.
func (s *Server) LastRequest() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// SetFault makes every following introspection request misbehave as f says,
// until ClearFault.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = &f
}

// ClearFault restores normal answers.
func (s *Server) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f != nil && f.before != nil && f.before(s, w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	method, clientID, ok := s.authenticate(w, r)
	hint, hasHint := r.PostForm["token_type_hint"]
	s.mu.Lock()
	s.last = Request{
		AuthMethod: method, ClientID: clientID, HasHint: hasHint,
		Accept: r.Header.Get("Accept"), ContentType: r.Header.Get("Content-Type"),
		Path: r.URL.Path, Assertion: s.lastAssertion(r),
	}
	if hasHint {
		s.last.TokenTypeHint = hint[0]
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	tokens := r.PostForm["token"]
	if len(tokens) != 1 || tokens[0] == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	s.mu.Lock()
	c, active := s.tokens[tokens[0]]
	s.mu.Unlock()
	if active && !c.Expiry.IsZero() && !s.now().Before(c.Expiry) {
		active = false
	}
	if f != nil && f.answer != nil && f.answer(w, active) {
		return
	}
	if wantsJWT(r) {
		answer := map[string]any{"active": false}
		if active {
			answer = c.answer()
		}
		s.writeSigned(w, clientID, answer)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !active {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	_ = json.NewEncoder(w).Encode(c.answer())
}

// authenticate checks the client like a strict server: exactly one method,
// the Basic credentials form-decoded (RFC 6749 §2.3.1) unless
// WithoutBasicFormDecoding says otherwise.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (method, clientID string, ok bool) {
	_, hasPostSecret := r.PostForm["client_secret"]
	user, pass, hasBasic := r.BasicAuth()
	_, hasAssertion := r.PostForm["client_assertion"]
	bearer, hasBearer := bearerToken(r)
	var secret string
	switch {
	case count(hasBasic, hasPostSecret, hasAssertion, hasBearer) > 1:
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return "", "", false
	case hasAssertion:
		return s.authenticateAssertion(w, r)
	case hasBearer:
		return s.authenticateBearer(w, bearer)
	case !hasBasic && !hasPostSecret && r.PostForm.Get("client_id") != "":
		return s.authenticateWithoutSecret(w, r)
	case hasBasic:
		method = "client_secret_basic"
		if s.rawBasic {
			clientID, secret = user, pass
			break
		}
		var err1, err2 error
		clientID, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			unauthorized(w)
			return method, "", false
		}
	case hasPostSecret:
		method = "client_secret_post"
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		unauthorized(w)
		return "", r.PostForm.Get("client_id"), false
	}
	s.mu.Lock()
	cl, known := s.clients[clientID]
	s.mu.Unlock()
	if !known || cl.Secret != secret || !cl.accepts(method) {
		unauthorized(w)
		return method, clientID, false
	}
	return method, clientID, true
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="introspecttest"`)
	oauthError(w, http.StatusUnauthorized, "invalid_client")
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + code + `"}`))
}

func (c *Claims) answer() map[string]any {
	m := make(map[string]any, 12+len(c.Extra))
	for k, v := range c.Extra {
		m[k] = v
	}
	m["active"] = true
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("sub", c.Subject)
	put("client_id", c.ClientID)
	put("username", c.Username)
	put("scope", c.Scope)
	put("iss", c.Issuer)
	put("token_type", c.TokenType)
	switch len(c.Audience) {
	case 0:
	case 1:
		m["aud"] = c.Audience[0]
	default:
		m["aud"] = c.Audience
	}
	if !c.Expiry.IsZero() {
		m["exp"] = c.Expiry.Unix()
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	if !c.IssuedAt.IsZero() {
		m["iat"] = c.IssuedAt.Unix()
	}
	if len(c.Confirmation) > 0 {
		m["cnf"] = c.Confirmation
	}
	return m
}

// hostOf is used by faults that redirect.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.ToLower(p.Host)
}
