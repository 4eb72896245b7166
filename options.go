package introspect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the options.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultMaxResponseSize = 1 << 20 // 1 MiB
	DefaultLeeway          = 5 * time.Second
	DefaultTokenTypeHint   = "access_token"

	// MaxLeeway is the largest leeway [WithLeeway] takes: a leeway lets a
	// token pass that long after its exp, and synchronised clocks differ
	// by far less.
	MaxLeeway = 5 * time.Minute
)

// An Option configures [New] and [NewClient]. Options are checked once, in the
// constructor: a mistake is an error from it, never a failure later. When an
// option is given twice, the last one wins.
type Option func(*config)

// config is written by the options and read-only after the constructor.
type config struct {
	endpoint     string
	creds        Credentials
	credsSet     bool
	store        ClientStore
	httpClient   *http.Client
	timeout      time.Duration
	maxBody      int64
	hint         string
	hintFunc     func(token string) string // WithTokenTypeHintFunc; nil: hint
	insecureHTTP bool
	leeway       time.Duration
	issuer       string
	audiences    []string
	clientIDs    []string
	now          func() time.Time
	skipBinding  bool

	// Discovery, client authentication and signed responses (provider.go,
	// clientauth.go, jwtresponse.go).
	discoveryIssuer   string           // WithIssuer
	jwtIssuers        []string         // WithJWTIssuers
	maxIssuers        int              // WithMaxIssuers
	eagerDiscovery    bool             // WithEagerDiscovery
	metadataRefresh   time.Duration    // WithMetadataRefresh
	keyRefreshLimit   time.Duration    // least time between refreshes for an unknown kid
	clientCert        *tls.Certificate // WithClientCertificate
	jwtResponse       bool             // WithJWTResponse
	jwtResponseMaxAge time.Duration    // how old a signed answer's iat may be
	jwtResponseAlgs   []string         // WithJWTResponseAlgorithms; nil: the metadata's

	// Local validation of JWT access tokens (jwtmode.go, jwtvalidator.go).
	validation  ValidationMode // WithValidation; ValidateJWT for a JWTValidator
	jwtAudience string         // WithJWTAudience
	jwtAlgs     []string       // WithJWTAlgorithms; nil: asymmetricAlgs
	jwtPlain    bool           // WithPlainJWT
	jwtMaxSize  int            // WithMaxJWTSize; 0: DefaultMaxJWTSize
	jwtOpts     []string       // names of the JWT validation options given

	// Userinfo (userinfo.go).
	userinfo            *userinfoConfig // WithUserinfo; nil: off
	userinfoEndpoint    string          // WithUserinfoEndpoint
	userinfoEndpointSet bool

	// Middleware only.
	extractor        Extractor
	realm            string
	resourceMetadata string
	optional         bool
	skip             func(*http.Request) bool // WithSkipper
	dpopMode         DPoPMode                 // WithDPoP; default DPoPAllowed (zero)
	dpopOpts         []DPoPOption             // WithDPoP
	onError          ErrorResponder
	onInactive       InactiveTokenResponder
	mwOnly           []string // names of middleware-only options given, refused by NewClient

	// The client certificate header of a TLS-terminating proxy (mtls.go).
	certHeader *certHeader // WithClientCertificateHeader; nil: the TLS connection's certificate only

	// Verdict cache, coalescing and observability (lookup.go, hooks.go).
	cache         Cache
	maxTTL        time.Duration
	defaultTTL    time.Duration
	negativeTTL   time.Duration
	staleTTL      time.Duration
	refreshAhead  time.Duration
	maxConcurrent int
	cachePolicy   []string // names of the cache policy options given, refused without a cache
	hooks         *Hooks
	logger        *slog.Logger

	errs []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("introspect: "+format, args...))
}

func (c *config) middlewareOnly(name string) { c.mwOnly = append(c.mwOnly, name) }

func newConfig(opts []Option) *config {
	c := &config{
		timeout: DefaultTimeout,
		maxBody: DefaultMaxResponseSize,
		hint:    DefaultTokenTypeHint,
		leeway:  DefaultLeeway,
		now:     time.Now,

		maxTTL:        DefaultMaxTTL,
		defaultTTL:    DefaultTTL,
		negativeTTL:   DefaultNegativeTTL,
		maxConcurrent: DefaultMaxConcurrentIntrospections,
	}
	for _, o := range opts {
		if o == nil {
			c.fail("nil option")
			continue
		}
		o(c)
	}
	return c
}

// check validates the client side of the configuration.
func (c *config) check() error {
	switch {
	case c.store != nil && (c.endpoint != "" || c.credsSet):
		c.fail("WithClientStore cannot be combined with WithEndpoint or client credentials options")
	case !c.validation.introspects():
		// Nothing is introspected: checkValidation has the rules.
	case c.store == nil && c.endpoint == "" && c.discoveryIssuer == "":
		c.fail("no introspection endpoint: use WithEndpoint, WithIssuer or WithClientStore")
	case c.store == nil && !c.credsSet:
		c.fail("no client credentials: use WithClientCredentials, WithClientCredentialsFunc or WithClientStore")
	}
	if c.endpoint != "" {
		if err := checkEndpoint(c.endpoint, c.insecureHTTP); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	if c.credsSet {
		if err := checkCredentials(c.creds); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	return errors.Join(c.errs...)
}

func checkCredentials(cr Credentials) error {
	if cr.ClientID == "" {
		return errors.New("introspect: empty client ID")
	}
	if !cr.AuthMethod.valid() {
		return fmt.Errorf("introspect: unsupported auth method %q", cr.AuthMethod)
	}
	return nil
}

// checkEndpoint requires an absolute https URL without credentials, or http
// to a loopback host, or http anywhere when insecure is set.
//
// Errors name the endpoint by scheme, host and path only: a URL that carries
// credentials in its user info or query must not repeat them into logs.
func checkEndpoint(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("introspect: endpoint is not an absolute URL")
	}
	if u.User != nil {
		return errors.New("introspect: endpoint URL must not contain credentials")
	}
	if u.Fragment != "" {
		return errors.New("introspect: endpoint URL must not contain a fragment")
	}
	name := strconv.Quote(u.Scheme + "://" + u.Host + u.EscapedPath())
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("introspect: endpoint %s is not https (use InsecureAllowHTTP to allow it)", name)
	}
	return fmt.Errorf("introspect: endpoint %s: scheme must be https", name)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WithEndpoint sets the introspection endpoint URL. It must be https, unless
// the host is loopback or [InsecureAllowHTTP] is given. No default.
func WithEndpoint(endpoint string) Option {
	return func(c *config) { c.endpoint = endpoint }
}

// WithClientCredentials sets a static client ID and secret, sent with
// client_secret_basic unless [WithAuthMethod] says otherwise. An empty secret
// (an unset environment variable, say) is an error from [New] for a method
// that needs one; a public client says so with WithAuthMethod([None]). No
// default.
func WithClientCredentials(clientID, clientSecret string) Option {
	return func(c *config) {
		c.creds.ClientID, c.creds.ClientSecret, c.creds.SecretFunc = clientID, clientSecret, nil
		c.credsSet = true
	}
}

// WithClientCredentialsFunc sets a static client ID and a secret read lazily:
// secret is called only when the authorization server must be asked (on cache
// misses), with that call's context, for example to read a rotated secret. The
// client ID is fixed because it scopes the cache. An error of secret fails
// the call ([ErrClientConfig], 503); errors.Is and errors.As find it, but
// its text is left out of the package's errors and logs, since it may
// carry what another server chose: log it in secret if you need it. No
// default.
func WithClientCredentialsFunc(clientID string, secret func(ctx context.Context) (string, error)) Option {
	return func(c *config) {
		if secret == nil {
			c.fail("WithClientCredentialsFunc: nil function")
			return
		}
		c.creds.ClientID, c.creds.ClientSecret, c.creds.SecretFunc = clientID, "", secret
		c.credsSet = true
	}
}

// WithAuthMethod sets how static credentials are sent. Default: chosen from
// the credentials and, with discovery, the methods the server announces, in
// the order documented on [AuthMethod] (client_secret_basic for a secret).
func WithAuthMethod(m AuthMethod) Option {
	return func(c *config) {
		if !m.valid() {
			c.fail("unsupported auth method %q", m)
			return
		}
		c.creds.AuthMethod = m
	}
}

// WithClientStore chooses the endpoint and credentials per request (one client
// per tenant, say). It excludes [WithEndpoint] and the credentials options.
// Endpoints from the store are checked like [WithEndpoint]'s on every call.
// No default.
func WithClientStore(s ClientStore) Option {
	return func(c *config) {
		if s == nil {
			c.fail("WithClientStore: nil store")
			return
		}
		c.store = s
	}
}

// WithHTTPClient sets the HTTP client for calls to the authorization server.
// The library uses a copy that never follows redirects (credentials must not
// travel to another host) and bounds every call by [WithTimeout] whatever the
// client's own Timeout. Default: a client on a shared transport tuned for
// concurrency (256 idle connections per host, 90 s idle timeout, 5 s TLS
// handshake timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc == nil {
			c.fail("WithHTTPClient: nil client")
			return
		}
		c.httpClient = hc
	}
}

// WithTimeout bounds each call to the authorization server, from connecting
// to the last byte of the answer. Default 5 s.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithTimeout: %v is not positive", d)
			return
		}
		c.timeout = d
	}
}

// WithMaxResponseSize bounds the size of an answer from the authorization
// server; a larger one is an error (503). Default 1 MiB.
func WithMaxResponseSize(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail("WithMaxResponseSize: %d is not positive", n)
			return
		}
		c.maxBody = n
	}
}

// WithTokenTypeHint sets the token_type_hint sent with each request; "" omits
// it. It replaces a [WithTokenTypeHintFunc]. Default "access_token".
func WithTokenTypeHint(hint string) Option {
	return func(c *config) { c.hint, c.hintFunc = hint, nil }
}

// WithTokenTypeHintFunc chooses the token_type_hint per token, for servers
// that take several kinds (an STS that takes "access_token" or "pct", say):
// hint is called with the token on each call to the authorization server and
// returns the hint to send, "" for none. It must depend on the token alone,
// since the verdict is cached per token, and it must not keep or log it. It
// replaces a [WithTokenTypeHint]. Default: the fixed hint "access_token".
func WithTokenTypeHintFunc(hint func(token string) string) Option {
	return func(c *config) {
		if hint == nil {
			c.fail("WithTokenTypeHintFunc: nil function")
			return
		}
		c.hintFunc = hint
	}
}

// InsecureAllowHTTP allows a plain http introspection endpoint on a
// non-loopback host. Tokens and client secrets then cross the network in
// clear. Default off (loopback hosts are always allowed, except in the
// metadata of an issuer that is not on loopback itself: such an issuer
// cannot point the library at this host's own services).
func InsecureAllowHTTP() Option {
	return func(c *config) { c.insecureHTTP = true }
}

// WithLeeway sets the clock-skew allowance for the local exp, nbf and iat
// checks, which run on every request, cached or not. Default 5 s, at most
// [MaxLeeway].
func WithLeeway(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("WithLeeway: %v is negative", d)
			return
		}
		if d > MaxLeeway {
			c.fail("WithLeeway: %v is more than MaxLeeway (%v): tokens would pass that long after they expired", d, MaxLeeway)
			return
		}
		c.leeway = d
	}
}

// WithExpectedIssuer requires the answer's "iss" to equal iss; an answer
// without "iss" or with another is refused (401). Default: not checked.
func WithExpectedIssuer(iss string) Option {
	return func(c *config) {
		if iss == "" {
			c.fail("WithExpectedIssuer: empty issuer")
			return
		}
		c.issuer = iss
	}
}

// WithExpectedAudience requires the answer's "aud" to contain at least one of
// auds; otherwise the token is refused (401 invalid_token). For a per-route
// 403 instead, use [Middleware.RequireAudience]. Default: not checked.
func WithExpectedAudience(auds ...string) Option {
	return func(c *config) {
		if len(auds) == 0 || containsEmpty(auds) {
			c.fail("WithExpectedAudience: empty audience")
			return
		}
		c.audiences = append([]string(nil), auds...)
	}
}

// WithAllowedClientIDs accepts only tokens whose "client_id" is one of ids
// (401 otherwise). The resource server is usually not the client a token was
// issued to, so there is no client_id check by default.
func WithAllowedClientIDs(ids ...string) Option {
	return func(c *config) {
		if len(ids) == 0 || containsEmpty(ids) {
			c.fail("WithAllowedClientIDs: empty client ID")
			return
		}
		c.clientIDs = append([]string(nil), ids...)
	}
}

// WithClock sets the clock for the local time checks and the cache. Default
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.fail("WithClock: nil clock")
			return
		}
		c.now = now
	}
}

// InsecureSkipTokenBinding turns off the proof-of-possession checks. By
// default a token whose answer carries cnf "x5t#S256" (RFC 8705) is accepted
// only with that client certificate (the TLS connection's, or a trusted
// proxy's header: [WithClientCertificateHeader]); a token bound to a DPoP key
// (cnf "jkt", RFC 9449) only with the DPoP scheme and a valid proof of that
// key ([WithDPoP]); and a token bound by any other cnf method, or whose cnf
// cannot be checked, is refused. With this option none of that is checked,
// DPoP proofs included; New refuses it together with [DPoPRequired]. Turn
// the checks off only where a proxy in front has already checked the
// binding. Default off (checks on).
func InsecureSkipTokenBinding() Option {
	return func(c *config) { c.skipBinding = true }
}

// WithExtractor sets how the token is taken off the request. Default the zero
// [BearerExtractor] (Authorization header only, 4 KiB limit; with local JWT
// validation, the limit of [WithMaxJWTSize] when it is larger).
func WithExtractor(e Extractor) Option {
	return func(c *config) {
		c.middlewareOnly("WithExtractor")
		if e == nil {
			c.fail("WithExtractor: nil extractor")
			return
		}
		c.extractor = e
	}
}

// WithRealm sets the realm of the WWW-Authenticate challenge. It must be
// printable ASCII. Default none.
func WithRealm(realm string) Option {
	return func(c *config) {
		c.middlewareOnly("WithRealm")
		if !printable(realm) {
			c.fail("WithRealm: realm must be printable ASCII")
			return
		}
		c.realm = realm
	}
}

// WithResourceMetadata adds the resource_metadata attribute (RFC 9728 §5.1),
// the URL of the protected resource's metadata, to 401 challenges. Default
// none.
func WithResourceMetadata(metadataURL string) Option {
	return func(c *config) {
		c.middlewareOnly("WithResourceMetadata")
		u, err := url.Parse(metadataURL)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || !printable(metadataURL) {
			c.fail("WithResourceMetadata: %q is not an absolute http(s) URL", metadataURL)
			return
		}
		c.resourceMetadata = metadataURL
	}
}

// WithOptionalToken lets a request without a bearer token through to the
// handler, unauthenticated ([FromContext] reports false). A request with a
// malformed or invalid token is still refused. Default off.
func WithOptionalToken() Option {
	return func(c *config) {
		c.middlewareOnly("WithOptionalToken")
		c.optional = true
	}
}

// WithSkipper lets the requests for which skip returns true through to the
// handler untouched: no token is looked for, nothing is asked, and the
// handler finds no verdict ([FromContext] reports false; a guard behind the
// middleware answers 401). The common case is the CORS preflight, which
// browsers send without credentials:
//
//	introspect.WithSkipper(func(r *http.Request) bool { return r.Method == http.MethodOptions })
//
// A skipped request reaches the handler: with that skipper, a handler that
// does not check the method (a ServeMux pattern without one) runs for an
// OPTIONS request without a token. A CORS middleware in front of this one,
// which answers preflights itself and adds its headers to the 401s, needs
// no skipper. skip runs first on every request: keep it cheap, and skip
// only what must be public (a method, an exact path), never on something a
// client can spell two ways to get around the check. Default: nothing is
// skipped.
func WithSkipper(skip func(r *http.Request) bool) Option {
	return func(c *config) {
		c.middlewareOnly("WithSkipper")
		if skip == nil {
			c.fail("WithSkipper: nil function")
			return
		}
		c.skip = skip
	}
}

// WithErrorResponder sets the response to a refused request: missing token,
// bad request, insufficient scope, authorization server unavailable, and
// inactive tokens unless [WithInactiveTokenResponder] is set. It must not
// write err's text or the request's credentials into the response. Default
// the RFC 6750 §3 responses: 400 invalid_request, 401 with a Bearer
// challenge (invalid_token when a token was refused), 403
// insufficient_scope with the scopes, 503 without a challenge.
func WithErrorResponder(f ErrorResponder) Option {
	return func(c *config) {
		c.middlewareOnly("WithErrorResponder")
		if f == nil {
			c.fail("WithErrorResponder: nil responder")
			return
		}
		c.onError = f
	}
}

// WithInactiveTokenResponder sets the response to a token that is not active
// or that a local check refused. Default: the error responder's 401
// invalid_token.
func WithInactiveTokenResponder(f InactiveTokenResponder) Option {
	return func(c *config) {
		c.middlewareOnly("WithInactiveTokenResponder")
		if f == nil {
			c.fail("WithInactiveTokenResponder: nil responder")
			return
		}
		c.onInactive = f
	}
}

func containsEmpty(s []string) bool {
	for _, v := range s {
		if v == "" {
			return true
		}
	}
	return false
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
