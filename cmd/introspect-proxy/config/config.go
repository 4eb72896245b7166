// Package config reads the configuration of introspect-proxy from its flags,
// from INTROSPECT_* environment variables and from a YAML file, and checks
// it: a flag wins over the environment, which wins over the file. Every
// setting has all three forms: the flag -max-ttl, the variable
// INTROSPECT_MAX_TTL (INTROSPECT_ and the flag's name in upper case, '-'
// written '_') and the file key max-ttl. Secrets come only from the
// environment or from files, never from a flag or the configuration file.
//
// A mistake is an error from [Load] that names the setting as it was given:
// "-max-ttl", "INTROSPECT_MAX_TTL" or "proxy.yaml:12: max-ttl".
package config

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/introspect-go/introspect"
)

// EnvPrefix starts the name of every environment variable of the proxy.
const EnvPrefix = "INTROSPECT_"

// UnixPrefix starts an address of -listen or -ops-listen that is a unix
// socket's path.
const UnixPrefix = "unix:"

// TrustUnixSocket is the entry of -trusted-proxies that trusts every peer
// of a unix socket the proxy listens on: whoever may open the socket file,
// which -socket-mode and the file's owner decide.
const TrustUnixSocket = "unix"

// The environment variables that hold secrets. Each has a -...-file setting
// naming a file instead; giving both is an error.
const (
	EnvClientSecret       = "INTROSPECT_CLIENT_SECRET"
	EnvRedisSecret        = "INTROSPECT_REDIS_SECRET"
	EnvRedisPassword      = "INTROSPECT_REDIS_PASSWORD"
	EnvRedisEncryptionKey = "INTROSPECT_REDIS_ENCRYPTION_KEY"
	EnvDPoPNonceSecret    = "INTROSPECT_DPOP_NONCE_SECRET"
)

// Ingress says which headers of a forward-auth request carry the original
// request's method and URI.
type Ingress string

// The ingresses of -forward-auth-ingress.
const (
	// IngressAuto reads X-Original-Method and X-Original-URI (nginx) and
	// X-Forwarded-Method and X-Forwarded-Uri (Caddy, Traefik); when both
	// sets are there they must agree. With neither, the request's own
	// method and URI count, as Envoy's ext_authz sends them.
	IngressAuto Ingress = "auto"
	// IngressNginx reads X-Original-Method and X-Original-URI, which the
	// nginx configuration sets with proxy_set_header.
	IngressNginx Ingress = "nginx"
	// IngressCaddy reads X-Forwarded-Method and X-Forwarded-Uri, which
	// Caddy's forward_auth sets.
	IngressCaddy Ingress = "caddy"
	// IngressTraefik reads X-Forwarded-Method and X-Forwarded-Uri, which
	// Traefik's forwardAuth middleware sets.
	IngressTraefik Ingress = "traefik"
	// IngressEnvoy takes the request's own method and URI (less
	// -forward-auth-path-prefix): Envoy's ext_authz HTTP service sends the
	// original method, path and headers, and no header is read for them.
	IngressEnvoy Ingress = "envoy"
)

// Config is the proxy's configuration, checked. Its printed forms (fmt,
// log/slog, encoding/json) are a summary that holds no secret and no key.
type Config struct {
	// Serving.
	Listen                string         // -listen
	OpsListen             string         // -ops-listen; "" when off
	Upstream              *url.URL       // -upstream; nil in forward-auth mode
	ForwardAuth           bool           // -forward-auth
	ForwardAuthIngress    Ingress        // -forward-auth-ingress
	ForwardAuthPathPrefix string         // -forward-auth-path-prefix
	TrustedProxies        []netip.Prefix // -trusted-proxies, its addresses
	TrustUnixSocket       bool           // -trusted-proxies holds unix
	SocketMode            os.FileMode    // -socket-mode

	// The authorization server and the proxy's client there.
	Endpoint                    string                // -endpoint
	Issuer                      string                // -issuer
	ClientID                    string                // -client-id
	ClientSecret                Secret                // $INTROSPECT_CLIENT_SECRET or -client-secret-file
	AuthMethod                  introspect.AuthMethod // -auth-method; "" to choose
	PrivateKey                  crypto.Signer         // -private-key
	PrivateKeyID                string                // the JWK's kid, if any
	AssertionAlg                string                // -assertion-alg
	AssertionAudience           string                // -assertion-audience
	ClientCertificate           *tls.Certificate      // -client-cert, -client-key
	BearerTokenFile             string                // -bearer-token-file
	RawBasicAuth                bool                  // -raw-basic-auth
	InsecureAllowHTTP           bool                  // -insecure-allow-http
	EagerDiscovery              bool                  // -eager-discovery
	IntrospectionTimeout        time.Duration         // -introspection-timeout
	MaxConcurrentIntrospections int                   // -max-concurrent-introspections
	Leeway                      time.Duration         // -leeway
	ExpectedIssuer              string                // -expected-issuer
	ExpectedAudience            []string              // -expected-audience
	AllowedClientIDs            []string              // -allowed-client-ids
	JWTResponse                 bool                  // -jwt-response
	JWTResponseAlgs             []string              // -jwt-response-algs

	// Local validation of JWT access tokens (RFC 9068).
	Validation  introspect.ValidationMode // -validate
	JWTAudience string                    // -jwt-audience
	JWTIssuers  []string                  // -jwt-issuers
	JWTAlgs     []string                  // -jwt-algs; nil: the library's default
	PlainJWT    bool                      // -plain-jwt
	MaxJWTSize  int                       // -max-jwt-size

	// The userinfo claims (OpenID Connect Core §5.3).
	Userinfo           bool   // -userinfo
	UserinfoBestEffort bool   // -userinfo-best-effort
	UserinfoEndpoint   string // -userinfo-endpoint; "": the metadata's

	// The verdict cache.
	CacheSize    int           // -cache-size; 0: no in-memory cache
	MaxTTL       time.Duration // -max-ttl
	NegativeTTL  time.Duration // -negative-ttl
	StaleIfError time.Duration // -stale-if-error
	RefreshAhead time.Duration // -refresh-ahead
	Redis        *Redis        // nil without -redis-addr

	// Sender-constrained tokens.
	DPoP                     introspect.DPoPMode         // -dpop
	DPoPExternalURL          string                      // -dpop-external-url
	DPoPAlgs                 []string                    // -dpop-algs
	DPoPNoncePeriod          time.Duration               // -dpop-nonce-period; 0: no nonces
	DPoPNonceSecret          Secret                      // $INTROSPECT_DPOP_NONCE_SECRET or -dpop-nonce-secret-file
	ClientCertHeader         string                      // -client-cert-header
	ClientCertHeaderFormat   introspect.CertHeaderFormat // -client-cert-header-format
	InsecureSkipTokenBinding bool                        // -insecure-skip-token-binding

	// The answers to refused requests.
	Realm            string // -realm
	ResourceMetadata string // -resource-metadata
	OptionalToken    bool   // -optional-token

	// Authorization rules and what the upstream learns.
	ScopeRules               []ScopeRule     // -require-scope
	IdentityHeaderPrefix     string          // -identity-header-prefix
	IdentityClaims           []IdentityClaim // -identity-claims
	ForwardAuthorization     bool            // -forward-authorization
	PassHostHeader           bool            // -pass-host-header
	UpstreamClientCertHeader string          // -upstream-client-cert-header
	UpstreamCAs              *x509.CertPool  // -upstream-ca; nil: the system's

	// The server.
	TLSCertificate                *tls.Certificate   // -tls-cert, -tls-key; nil: plain HTTP
	TLSClientCAs                  *x509.CertPool     // -tls-client-ca
	TLSCertFile                   string             // -tls-cert, read again every TLSReloadInterval
	TLSKeyFile                    string             // -tls-key
	TLSClientCAFile               string             // -tls-client-ca
	TLSReloadInterval             time.Duration      // -tls-reload-interval; 0: the files are read once
	TLSClientAuth                 tls.ClientAuthType // -tls-client-auth
	MaxHeaderBytes                int                // -max-header-bytes
	ReadHeaderTimeout             time.Duration      // -read-header-timeout
	ReadTimeout                   time.Duration      // -read-timeout
	WriteTimeout                  time.Duration      // -write-timeout
	IdleTimeout                   time.Duration      // -idle-timeout
	ShutdownTimeout               time.Duration      // -shutdown-timeout
	ShutdownDelay                 time.Duration      // -shutdown-delay
	UpstreamDialTimeout           time.Duration      // -upstream-dial-timeout
	UpstreamResponseHeaderTimeout time.Duration      // -upstream-response-header-timeout
	UpstreamIdleConnTimeout       time.Duration      // -upstream-idle-conn-timeout
	LogLevel                      slog.Level         // -log-level
	AccessLog                     bool               // -access-log

	// What to do.
	CheckOnly  bool   // -check-config: check, then exit
	Version    bool   // -version: print the version, then exit
	ConfigFile string // -config

	// Warnings are problems that do not stop the start, such as an unknown
	// INTROSPECT_ variable.
	Warnings []string

	origins map[string]origin // where each setting came from
	redis   Redis             // the Redis settings as given
}

// Redis is the configuration of the shared cache in Redis (-redis-addr).
type Redis struct {
	Addrs         []string      // -redis-addr: one address, or several of a cluster
	Username      string        // -redis-username
	Password      Secret        // $INTROSPECT_REDIS_PASSWORD or -redis-password-file
	DB            int           // -redis-db
	TLS           bool          // -redis-tls
	Prefix        string        // -redis-prefix
	Timeout       time.Duration // -redis-timeout
	LocalTTL      time.Duration // -redis-local-ttl; 0: Redis alone
	Secret        Secret        // $INTROSPECT_REDIS_SECRET or -redis-secret-file
	EncryptionKey Secret        // $INTROSPECT_REDIS_ENCRYPTION_KEY or -redis-encryption-key-file, decoded
}

// ScopeRule requires Scopes (all of them) of the requests whose path starts
// with Prefix and, when Method is set, whose method is Method.
type ScopeRule struct {
	Method string // upper case; "" for every method
	Prefix string
	Scopes []string
}

// String writes the rule as -require-scope takes it.
func (r ScopeRule) String() string {
	s := r.Prefix + "=" + strings.Join(r.Scopes, ",")
	if r.Method != "" {
		s = r.Method + " " + s
	}
	return s
}

// UserinfoClaimPrefix starts an -identity-claims name that is read from the
// userinfo claims (-userinfo) rather than from the token's: userinfo.email.
const UserinfoClaimPrefix = "userinfo."

// IdentityClaim is a claim of the token's answer, or of the userinfo
// claims, passed to the upstream in Header (-identity-claims).
type IdentityClaim struct {
	Name     string // the member of the answer, or of the userinfo claims
	Userinfo bool   // a userinfo claim: -identity-claims named it userinfo.Name
	Header   string // the header's canonical name: the prefix, "Claim-" (or "Userinfo-") and the name
}

// Mode names the mode: "reverse-proxy" or "forward-auth".
func (c *Config) Mode() string {
	if c.ForwardAuth {
		return "forward-auth"
	}
	return "reverse-proxy"
}

// Label names a setting as it was given, for messages: "-max-ttl",
// "INTROSPECT_MAX_TTL" or "proxy.yaml:12: max-ttl"; the flag when it was
// not given.
func (c *Config) Label(name string) string {
	if c == nil || c.origins == nil {
		return "-" + name
	}
	return c.origins[name].label(name)
}

// Secret is a secret value from the environment or a file. Its printed
// forms never show it.
type Secret struct{ v string }

// NewSecret returns a Secret holding v.
func NewSecret(v string) Secret { return Secret{v: v} }

// Value returns the secret.
func (s Secret) Value() string { return s.v }

// IsSet reports whether the secret is not empty.
func (s Secret) IsSet() bool { return s.v != "" }

// String is "" for an empty secret and "[redacted]" otherwise.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return "[redacted]"
}

// GoString is String.
func (s Secret) GoString() string { return s.String() }

// Format prints String under every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue is String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes String as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// summary is what the printed forms of a Config show.
func (c Config) summary() map[string]any {
	m := map[string]any{
		"mode":       c.Mode(),
		"listen":     c.Listen,
		"client_id":  c.ClientID,
		"dpop":       c.DPoP.String(),
		"validation": c.Validation.String(),
		"userinfo":   c.Userinfo,
	}
	if c.JWTAudience != "" {
		m["jwt_audience"] = c.JWTAudience
	}
	if len(c.JWTIssuers) > 0 {
		issuers := make([]string, len(c.JWTIssuers))
		for i, iss := range c.JWTIssuers {
			issuers[i] = redactURL(iss)
		}
		m["jwt_issuers"] = issuers
	}
	if c.Upstream != nil {
		u := *c.Upstream
		u.User = nil
		m["upstream"] = u.String()
	}
	if c.Issuer != "" {
		m["issuer"] = redactURL(c.Issuer)
	}
	if c.Endpoint != "" {
		m["endpoint"] = redactURL(c.Endpoint)
	}
	if c.AuthMethod != "" {
		m["auth_method"] = string(c.AuthMethod)
	}
	rules := make([]string, len(c.ScopeRules))
	for i, r := range c.ScopeRules {
		rules[i] = r.String()
	}
	m["require_scope"] = rules
	m["redis"] = c.Redis != nil
	m["tls"] = c.TLSCertificate != nil
	return m
}

// redactURL is u without user information, query or fragment, where a
// credential may hide.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Scheme + "://" + p.Host + p.EscapedPath()
}

// String summarises the configuration, without secrets or keys.
func (c Config) String() string {
	b, _ := json.Marshal(c.summary())
	return "introspect-proxy config " + string(b)
}

// GoString is String.
func (c Config) GoString() string { return c.String() }

// Format prints String under every verb.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue is the summary of String as a group.
func (c Config) LogValue() slog.Value {
	m := c.summary()
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		attrs = append(attrs, slog.Any(k, m[k]))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON writes the summary of String.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.summary())
}

// String summarises the Redis settings, without secrets.
func (r Redis) String() string {
	return fmt.Sprintf("redis %s (prefix %q, tls %t, local ttl %v)", strings.Join(r.Addrs, ","), r.Prefix, r.TLS, r.LocalTTL)
}

// GoString is String.
func (r Redis) GoString() string { return r.String() }

// Format prints String under every verb.
func (r Redis) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.String()) }

// LogValue is String.
func (r Redis) LogValue() slog.Value { return slog.StringValue(r.String()) }

// MarshalJSON writes String as a JSON string.
func (r Redis) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }
