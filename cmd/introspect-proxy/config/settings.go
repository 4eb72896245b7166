package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/introspect-go/introspect"
)

// Defaults of the settings that have one.
const (
	DefaultListen               = ":8080"
	DefaultOpsListen            = "127.0.0.1:9090"
	DefaultTrustedProxies       = "127.0.0.0/8,::1,unix"
	DefaultSocketMode           = 0o660
	DefaultIdentityHeaderPrefix = "X-Auth-"
	DefaultCacheSize            = 100_000
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultMaxHeaderBytes       = 64 << 10
	// HeaderRoom is what -max-header-bytes leaves, beyond -max-jwt-size,
	// for the other headers of a request carrying the largest JWT (a DPoP
	// proof among them).
	HeaderRoom                           = 16 << 10
	DefaultIdleTimeout                   = 2 * time.Minute
	DefaultTLSReloadInterval             = time.Minute
	DefaultShutdownTimeout               = 25 * time.Second
	DefaultUpstreamDialTimeout           = 10 * time.Second
	DefaultUpstreamResponseHeaderTimeout = time.Minute
	DefaultUpstreamIdleConnTimeout       = 90 * time.Second
	DefaultRedisLocalTTL                 = 5 * time.Second
)

// kind is how a setting's value is written.
type kind uint8

const (
	kindString   kind = iota
	kindBool          // true, false, 1, 0 ...
	kindDuration      // 90s, 5m
	kindInt
	kindList  // comma-separated; a YAML sequence in the file
	kindRules // repeatable flag; one per line in the environment; a YAML sequence in the file
)

// setting is one configuration setting: a flag, an environment variable
// and a file key.
type setting struct {
	name   string
	kind   kind
	def    string // the default, as it would be written; "" for none
	arg    string // the placeholder of the value in the usage text
	usage  string
	noEnv  bool // a flag only, with no variable
	noFile bool // no key in the configuration file
	// apply parses the values (one for a scalar kind) into c; its error
	// does not name the setting, which the caller does.
	apply func(c *Config, vals []string) error
}

// envName is the environment variable of a setting.
func envName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// secretKeys are the names under which someone might put a secret in the
// configuration file, and where the secret goes instead.
var secretKeys = map[string]string{
	"client-secret":        "client-secret-file or " + EnvClientSecret,
	"redis-secret":         "redis-secret-file or " + EnvRedisSecret,
	"redis-password":       "redis-password-file or " + EnvRedisPassword,
	"redis-encryption-key": "redis-encryption-key-file or " + EnvRedisEncryptionKey,
	"dpop-nonce-secret":    "dpop-nonce-secret-file or " + EnvDPoPNonceSecret,
}

// settings lists every setting, in the order of the usage text.
var settings = []setting{
	// What to do.
	text("config", "", "FILE", "YAML configuration file: keys are the flags' names; a flag or a variable wins over it",
		func(c *Config) *string { return &c.ConfigFile }).noFileKey(),
	boolean("check-config", false, "check the configuration, print the result and exit (0: valid, 1: not)",
		func(c *Config) *bool { return &c.CheckOnly }).flagOnly(),
	boolean("version", false, "print the version and exit",
		func(c *Config) *bool { return &c.Version }).flagOnly(),

	// Serving.
	text("listen", DefaultListen, "ADDR", "address of the proxy: host:port (the default is every interface), or unix:PATH for a unix socket",
		func(c *Config) *string { return &c.Listen }),
	{name: "socket-mode", kind: kindString, def: fmt.Sprintf("%04o", DefaultSocketMode), arg: "MODE",
		usage: "file mode (octal) of the unix sockets of -listen and -ops-listen: who may connect",
		apply: func(c *Config, v []string) error {
			m, err := strconv.ParseUint(v[0], 8, 32)
			if err != nil || m > 0o777 {
				return fmt.Errorf("%s is not an octal file mode such as 0660", quote(v[0]))
			}
			c.SocketMode = os.FileMode(m)
			return nil
		}},
	{name: "upstream", kind: kindString, arg: "URL", usage: "reverse-proxy mode: the protected service, an http or https URL (or -forward-auth)",
		apply: func(c *Config, v []string) error {
			if v[0] == "" {
				return nil
			}
			u, err := parseUpstream(v[0])
			c.Upstream = u
			return err
		}},
	boolean("forward-auth", false, "forward-auth mode: answer an ingress's auth requests (nginx auth_request, Caddy forward_auth, Traefik forwardAuth, Envoy ext_authz) with 200 and identity headers, or 401/403/503 (or -upstream)",
		func(c *Config) *bool { return &c.ForwardAuth }),
	{name: "forward-auth-ingress", kind: kindString, def: string(IngressAuto), arg: "NAME",
		usage: "where forward-auth requests carry the original method and URI: auto, nginx (X-Original-Method, X-Original-URI), caddy or traefik (X-Forwarded-Method, X-Forwarded-Uri), envoy (the request's own); read from -trusted-proxies only",
		apply: func(c *Config, v []string) error {
			switch in := Ingress(strings.ToLower(v[0])); in {
			case IngressAuto, IngressNginx, IngressCaddy, IngressTraefik, IngressEnvoy:
				c.ForwardAuthIngress = in
				return nil
			}
			return fmt.Errorf("%s is not auto, nginx, caddy, traefik or envoy", quote(v[0]))
		}},
	text("forward-auth-path-prefix", "", "PATH", "forward-auth: the path prefix Envoy's ext_authz http_service puts before the original path (path_prefix), taken off",
		func(c *Config) *string { return &c.ForwardAuthPathPrefix }),
	{name: "trusted-proxies", kind: kindList, def: DefaultTrustedProxies, arg: "CIDR,...",
		usage: "addresses of the proxies whose forwarding headers (X-Original-*, X-Forwarded-*, the client certificate header) are believed, unix for every peer of a unix socket of -listen; \"\" for none; in forward-auth mode the ingress must be one (an auth request from elsewhere is refused, but Envoy's)",
		apply: func(c *Config, v []string) error {
			c.TrustedProxies, c.TrustUnixSocket = nil, false
			var errs []error
			for _, s := range v {
				if s == TrustUnixSocket {
					c.TrustUnixSocket = true
					continue
				}
				p, problem := parsePrefix(s)
				if problem != "" {
					errs = append(errs, fmt.Errorf("%s %s", quote(s), problem))
					continue
				}
				c.TrustedProxies = append(c.TrustedProxies, p)
			}
			return errors.Join(errs...)
		}},
	{name: "ops-listen", kind: kindString, def: DefaultOpsListen, arg: "ADDR",
		usage: "address of /healthz, /readyz and /metrics (host:port or unix:PATH); off to serve none",
		apply: func(c *Config, v []string) error {
			switch v[0] {
			case "off":
				c.OpsListen = ""
			case "":
				return errors.New("empty: give an address, or off")
			default:
				c.OpsListen = v[0]
			}
			return nil
		}},

	// The authorization server.
	text("endpoint", "", "URL", "the authorization server's introspection endpoint (or -issuer)",
		func(c *Config) *string { return &c.Endpoint }),
	text("issuer", "", "URL", "the authorization server's issuer, for discovery (RFC 8414); with -endpoint too, -endpoint is the endpoint called",
		func(c *Config) *string { return &c.Issuer }),
	text("client-id", "", "ID", "the proxy's client ID at the authorization server",
		func(c *Config) *string { return &c.ClientID }),
	text("client-secret-file", "", "FILE", "file holding the client secret, one line (or $"+EnvClientSecret+")",
		nil),
	{name: "auth-method", kind: kindString, arg: "METHOD",
		usage: "client authentication: client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, tls_client_auth, self_signed_tls_client_auth, bearer_token, none (default: chosen from the credentials and the server's metadata)",
		apply: func(c *Config, v []string) error {
			switch m := introspect.AuthMethod(v[0]); m {
			case "", introspect.ClientSecretBasic, introspect.ClientSecretPost, introspect.ClientSecretJWT, introspect.PrivateKeyJWT,
				introspect.TLSClientAuth, introspect.SelfSignedTLSClientAuth, introspect.BearerToken, introspect.None:
				c.AuthMethod = m
				return nil
			}
			return fmt.Errorf("%s is not a client authentication method (client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, tls_client_auth, self_signed_tls_client_auth, bearer_token, none)", quote(v[0]))
		}},
	text("private-key", "", "FILE", "the client's private key, PEM or JWK, for private_key_jwt", nil),
	text("assertion-alg", "", "ALG", "\"alg\" of client assertions (default: HS256 for a secret, RS256 for RSA, ES256/384/512 by curve, EdDSA)",
		func(c *Config) *string { return &c.AssertionAlg }),
	text("assertion-audience", "", "AUD", "\"aud\" of client assertions (default: the issuer, or the endpoint URL)",
		func(c *Config) *string { return &c.AssertionAudience }),
	text("client-cert", "", "FILE", "the client's certificate (PEM) for tls_client_auth or self_signed_tls_client_auth", nil),
	text("client-key", "", "FILE", "the key of -client-cert (PEM; default: the -client-cert file)", nil),
	text("bearer-token-file", "", "FILE", "an access token of the proxy's own, sent as its credential (bearer_token); read on every call",
		func(c *Config) *string { return &c.BearerTokenFile }),
	boolean("raw-basic-auth", false, "send client_secret_basic credentials without form-encoding, for servers that do not decode it",
		func(c *Config) *bool { return &c.RawBasicAuth }),
	boolean("insecure-allow-http", false, "allow a plain http authorization server on a host other than loopback (tokens and secrets in clear)",
		func(c *Config) *bool { return &c.InsecureAllowHTTP }),
	boolean("eager-discovery", false, "with -issuer, fetch the metadata at start and fail when the server does not answer",
		func(c *Config) *bool { return &c.EagerDiscovery }),
	duration("introspection-timeout", introspect.DefaultTimeout, true, "bound on each call to the authorization server",
		func(c *Config) *time.Duration { return &c.IntrospectionTimeout }),
	integer("max-concurrent-introspections", introspect.DefaultMaxConcurrentIntrospections, 1, "calls to the authorization server in flight at once; beyond, 503",
		func(c *Config) *int { return &c.MaxConcurrentIntrospections }),
	duration("leeway", introspect.DefaultLeeway, false, "clock skew allowed in the exp, nbf and iat checks, at most 5m",
		func(c *Config) *time.Duration { return &c.Leeway }),
	text("expected-issuer", "", "ISS", "refuse tokens whose answer's \"iss\" is not this",
		func(c *Config) *string { return &c.ExpectedIssuer }),
	list("expected-audience", "AUD,...", "refuse tokens whose answer's \"aud\" holds none of these",
		func(c *Config) *[]string { return &c.ExpectedAudience }),
	list("allowed-client-ids", "ID,...", "refuse tokens whose answer's \"client_id\" is none of these",
		func(c *Config) *[]string { return &c.AllowedClientIDs }),
	boolean("jwt-response", false, "require signed introspection answers (RFC 9701); needs -issuer",
		func(c *Config) *bool { return &c.JWTResponse }),
	list("jwt-response-algs", "ALG,...", "with -jwt-response, the algorithms of signed answers, for a server that does not list them",
		func(c *Config) *[]string { return &c.JWTResponseAlgs }),

	// Local validation of JWT access tokens (RFC 9068).
	{name: "validate", kind: kindString, def: introspect.ValidateIntrospect.String(), arg: "MODE",
		usage: "how tokens are validated: introspect (ask the authorization server), jwt (validate JWT access tokens locally, RFC 9068; never introspect: no -endpoint or client credentials), hybrid (JWTs of -issuer or -jwt-issuers locally, other tokens introspected) or jwt+introspect (both, for a revocation seen at once)",
		apply: func(c *Config, v []string) error {
			m, err := introspect.ParseValidationMode(v[0])
			if err != nil {
				return fmt.Errorf("%s is not introspect, jwt, hybrid or jwt+introspect", quote(v[0]))
			}
			c.Validation = m
			return nil
		}},
	text("jwt-audience", "", "ID", "with -validate jwt, hybrid or jwt+introspect: the identifier of the service that a JWT access token must name in its \"aud\" (required)",
		func(c *Config) *string { return &c.JWTAudience }),
	list("jwt-issuers", "URL,...", "with -validate jwt or hybrid: more issuers, besides -issuer, whose JWT access tokens are validated locally, each with its keys from discovery; trusted on every path",
		func(c *Config) *[]string { return &c.JWTIssuers }),
	list("jwt-algs", "ALG,...", "algorithms accepted for JWT access tokens (default: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519; never none or HMAC)",
		func(c *Config) *[]string { return &c.JWTAlgs }),
	boolean("plain-jwt", false, "also accept JWT access tokens whose header typ is JWT or absent, as servers older than RFC 9068 issue them (the audience check then keeps ID tokens out)",
		func(c *Config) *bool { return &c.PlainJWT }),
	integer("max-jwt-size", introspect.DefaultMaxJWTSize, 1, "largest JWT access token validated locally, in bytes (at most 65536); a larger one is refused",
		func(c *Config) *int { return &c.MaxJWTSize }),

	// Userinfo (OpenID Connect Core 5.3).
	boolean("userinfo", false, "load the OpenID Connect userinfo claims of every accepted token, for the userinfo.NAME identity claims; tokens bound to a DPoP key or certificate get none",
		func(c *Config) *bool { return &c.Userinfo }),
	boolean("userinfo-best-effort", false, "with -userinfo, serve a request without the userinfo claims when the userinfo endpoint fails (default: 503); a token it refuses is still refused",
		func(c *Config) *bool { return &c.UserinfoBestEffort }),
	text("userinfo-endpoint", "", "URL", "with -userinfo, the userinfo endpoint (default: the userinfo_endpoint of the token's issuer's metadata)",
		func(c *Config) *string { return &c.UserinfoEndpoint }),

	// The cache.
	integer("cache-size", DefaultCacheSize, 0, "verdicts cached in memory (with -redis-addr: the in-memory tier); 0: none",
		func(c *Config) *int { return &c.CacheSize }),
	duration("max-ttl", introspect.DefaultMaxTTL, true, "longest time an active verdict is cached: how long a revoked token may keep working",
		func(c *Config) *time.Duration { return &c.MaxTTL }),
	duration("negative-ttl", introspect.DefaultNegativeTTL, false, "how long an inactive verdict is cached; 0: never",
		func(c *Config) *time.Duration { return &c.NegativeTTL }),
	duration("stale-if-error", 0, false, "serve a cached active verdict this long past its expiry while the authorization server is down; 0: never",
		func(c *Config) *time.Duration { return &c.StaleIfError }),
	duration("refresh-ahead", 0, false, "refresh a cached active verdict in the background this long before it expires; 0: never",
		func(c *Config) *time.Duration { return &c.RefreshAhead }),
	list("redis-addr", "ADDR,...", "Redis (or Valkey) shared by the replicas: one address, or the nodes of a cluster; the secret in $"+EnvRedisSecret+" or -redis-secret-file",
		func(c *Config) *[]string { return &c.redis.Addrs }),
	text("redis-username", "", "NAME", "Redis ACL user (the password in $"+EnvRedisPassword+" or -redis-password-file)",
		func(c *Config) *string { return &c.redis.Username }),
	text("redis-password-file", "", "FILE", "file holding the Redis password (or $"+EnvRedisPassword+")", nil),
	integer("redis-db", 0, 0, "Redis database number",
		func(c *Config) *int { return &c.redis.DB }),
	boolean("redis-tls", false, "connect to Redis over TLS",
		func(c *Config) *bool { return &c.redis.TLS }),
	text("redis-prefix", "", "PREFIX", "prefix of the proxy's Redis keys (default introspect:)",
		func(c *Config) *string { return &c.redis.Prefix }),
	duration("redis-timeout", 50*time.Millisecond, true, "bound on each call to Redis",
		func(c *Config) *time.Duration { return &c.redis.Timeout }),
	duration("redis-local-ttl", DefaultRedisLocalTTL, false, "longest time an entry stays in the in-memory tier in front of Redis; 0: Redis alone",
		func(c *Config) *time.Duration { return &c.redis.LocalTTL }),
	text("redis-secret-file", "", "FILE", "file holding the Redis cache secret, at least 32 bytes, the same on every replica (or $"+EnvRedisSecret+")", nil),
	text("redis-encryption-key-file", "", "FILE", "file holding a base64 AES key (16, 24 or 32 bytes) encrypting the cached claims (or $"+EnvRedisEncryptionKey+")", nil),

	// Sender-constrained tokens.
	{name: "dpop", kind: kindString, def: "allowed", arg: "MODE",
		usage: "DPoP-bound tokens (RFC 9449): off, allowed (Bearer and DPoP) or required (DPoP only)",
		apply: func(c *Config, v []string) error {
			m, err := introspect.ParseDPoPMode(v[0])
			if err != nil {
				return fmt.Errorf("%s is not off, allowed or required", quote(v[0]))
			}
			c.DPoP = m
			return nil
		}},
	text("dpop-external-url", "", "URL[,URL...]", "the URLs clients reach the service at, for the DPoP proofs' htu, which must match one (set it in production: without it the host of htu is the request's Host header, which the client chooses)",
		func(c *Config) *string { return &c.DPoPExternalURL }),
	list("dpop-algs", "ALG,...", "algorithms accepted for DPoP proofs (default: ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512, EdDSA)",
		func(c *Config) *[]string { return &c.DPoPAlgs }),
	duration("dpop-nonce-period", 0, false, "require DPoP server nonces that change each period (the secret in $"+EnvDPoPNonceSecret+" or -dpop-nonce-secret-file); 0: no nonces",
		func(c *Config) *time.Duration { return &c.DPoPNoncePeriod }),
	text("dpop-nonce-secret-file", "", "FILE", "file holding the DPoP nonce secret, at least 32 bytes, the same on every replica (or $"+EnvDPoPNonceSecret+")", nil),
	text("client-cert-header", "", "NAME", "header in which a TLS-terminating proxy of -trusted-proxies passes the client certificate, for certificate-bound tokens (RFC 8705)",
		func(c *Config) *string { return &c.ClientCertHeader }),
	{name: "client-cert-header-format", kind: kindString, def: "escaped-pem", arg: "FORMAT",
		usage: "format of -client-cert-header: escaped-pem (nginx $ssl_client_escaped_cert), xfcc (Envoy), base64-der (HAProxy, Traefik)",
		apply: func(c *Config, v []string) error {
			for _, f := range []introspect.CertHeaderFormat{introspect.CertHeaderEscapedPEM, introspect.CertHeaderXFCC, introspect.CertHeaderBase64DER} {
				if f.String() == v[0] {
					c.ClientCertHeaderFormat = f
					return nil
				}
			}
			return fmt.Errorf("%s is not escaped-pem, xfcc or base64-der", quote(v[0]))
		}},
	boolean("insecure-skip-token-binding", false, "do not check certificate- or DPoP-bound tokens against the client (only where a proxy in front checks them)",
		func(c *Config) *bool { return &c.InsecureSkipTokenBinding }),

	// Answers.
	text("realm", "", "REALM", "realm of the WWW-Authenticate challenges",
		func(c *Config) *string { return &c.Realm }),
	text("resource-metadata", "", "URL", "URL of the protected resource's metadata (RFC 9728), named in 401 challenges",
		func(c *Config) *string { return &c.ResourceMetadata }),
	boolean("optional-token", false, "let requests without a token through, without identity headers (a token that is there must be valid; a -require-scope rule still needs one)",
		func(c *Config) *bool { return &c.OptionalToken }),

	// Rules and identity.
	{name: "require-scope", kind: kindRules, arg: "[METHOD ]PREFIX=SCOPE,...",
		usage: "require every SCOPE of the requests whose path starts with PREFIX (and whose method is METHOD); repeatable, the longest prefix wins; in the environment one rule per line",
		apply: func(c *Config, v []string) error {
			c.ScopeRules = nil
			var errs []error
			for _, s := range v {
				r, err := ParseScopeRule(s)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				c.ScopeRules = append(c.ScopeRules, r)
			}
			return errors.Join(errs...)
		}},
	text("identity-header-prefix", DefaultIdentityHeaderPrefix, "PREFIX", "prefix of the identity headers (PREFIXSubject, PREFIXClient-Id, PREFIXScope, PREFIXUsername, PREFIXClaim-NAME, PREFIXUserinfo-NAME); the client's own headers with it are removed",
		func(c *Config) *string { return &c.IdentityHeaderPrefix }),
	list("identity-claims", "NAME,...", "claims of the token's answer passed as PREFIXClaim-NAME headers, and with -userinfo userinfo claims written userinfo.NAME, passed as PREFIXUserinfo-NAME (strings as they are, other values as JSON)",
		nil),
	boolean("forward-authorization", true, "reverse proxy: pass the Authorization (and DPoP) header to the upstream",
		func(c *Config) *bool { return &c.ForwardAuthorization }),
	boolean("pass-host-header", true, "reverse proxy: pass the client's Host header to the upstream (false: the upstream URL's host)",
		func(c *Config) *bool { return &c.PassHostHeader }),
	text("upstream-client-cert-header", "", "NAME", "reverse proxy with -tls-client-auth: pass the client's TLS certificate to the upstream in this header (base64 DER), when -tls-client-ca verified it or the token is bound to it",
		func(c *Config) *string { return &c.UpstreamClientCertHeader }),
	text("upstream-ca", "", "FILE", "CA certificates (PEM) for an https upstream (default: the system's)", nil),

	// The server.
	text("tls-cert", "", "FILE", "serve https with this certificate (PEM, chain included)", nil),
	text("tls-key", "", "FILE", "the key of -tls-cert (PEM)", nil),
	text("tls-client-ca", "", "FILE", "CA certificates (PEM) that client certificates are checked against", nil),
	duration("tls-reload-interval", DefaultTLSReloadInterval, false, "how often -tls-cert, -tls-key and -tls-client-ca are read again, at least 1s; 0: never. What changed and loads goes to new handshakes (a certificate renewed in place); new contents go into use once two checks at least 2s apart read the same bytes; files that do not load leave the configuration in use",
		func(c *Config) *time.Duration { return &c.TLSReloadInterval }),
	{name: "tls-client-auth", kind: kindString, arg: "MODE",
		usage: "client certificates: none, request (any, unchecked: enough for certificate-bound tokens), verify-if-given, require (default: verify-if-given with -tls-client-ca, else none)",
		apply: func(c *Config, v []string) error {
			switch v[0] {
			case "":
			case "none":
				c.TLSClientAuth = tls.NoClientCert
			case "request":
				c.TLSClientAuth = tls.RequestClientCert
			case "verify-if-given":
				c.TLSClientAuth = tls.VerifyClientCertIfGiven
			case "require":
				c.TLSClientAuth = tls.RequireAndVerifyClientCert
			default:
				return fmt.Errorf("%s is not none, request, verify-if-given or require", quote(v[0]))
			}
			return nil
		}},
	integer("max-header-bytes", DefaultMaxHeaderBytes, 4096, "bound on the size of a request's headers, request line included, in bytes; beyond, 431. HTTP/1 lets up to 4 KiB more through; HTTP/2 counts 32 bytes more per header and lets about 320 bytes more through. With local JWT validation, at least -max-jwt-size + 16 KiB (the default grows to that)",
		func(c *Config) *int { return &c.MaxHeaderBytes }),
	duration("read-header-timeout", DefaultReadHeaderTimeout, true, "bound on reading a request's headers",
		func(c *Config) *time.Duration { return &c.ReadHeaderTimeout }),
	duration("read-timeout", 0, false, "bound on reading a whole request, body included; 0: none",
		func(c *Config) *time.Duration { return &c.ReadTimeout }),
	duration("write-timeout", 0, false, "bound on writing a response; 0: none (streams and websockets run for as long as they last)",
		func(c *Config) *time.Duration { return &c.WriteTimeout }),
	duration("idle-timeout", DefaultIdleTimeout, false, "how long an idle keep-alive connection is kept",
		func(c *Config) *time.Duration { return &c.IdleTimeout }),
	duration("shutdown-timeout", DefaultShutdownTimeout, true, "on SIGTERM or SIGINT, how long requests in flight may take to finish",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	duration("shutdown-delay", 0, false, "on SIGTERM or SIGINT, how long to go on serving, /readyz failing, before draining (for load balancers to notice)",
		func(c *Config) *time.Duration { return &c.ShutdownDelay }),
	duration("upstream-dial-timeout", DefaultUpstreamDialTimeout, true, "bound on connecting to the upstream",
		func(c *Config) *time.Duration { return &c.UpstreamDialTimeout }),
	duration("upstream-response-header-timeout", DefaultUpstreamResponseHeaderTimeout, false, "bound on waiting for the upstream's response headers; 0: none",
		func(c *Config) *time.Duration { return &c.UpstreamResponseHeaderTimeout }),
	duration("upstream-idle-conn-timeout", DefaultUpstreamIdleConnTimeout, false, "how long an idle connection to the upstream is kept",
		func(c *Config) *time.Duration { return &c.UpstreamIdleConnTimeout }),
	{name: "log-level", kind: kindString, def: "info", arg: "LEVEL",
		usage: "debug, info, warn or error",
		apply: func(c *Config, v []string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v[0])); err != nil {
				return fmt.Errorf("%s is not debug, info, warn or error", quote(v[0]))
			}
			return nil
		}},
	boolean("access-log", true, "log each request (method, path without query, status, duration, outcome) as JSON to stderr",
		func(c *Config) *bool { return &c.AccessLog }),
}

// flagOnly marks a setting that has no environment variable and no file
// key.
func (s setting) flagOnly() setting {
	s.noEnv, s.noFile = true, true
	return s
}

// noFileKey marks a setting that has no file key.
func (s setting) noFileKey() setting {
	s.noFile = true
	return s
}

// lookup returns the setting called name.
func lookup(name string) (setting, bool) {
	for _, s := range settings {
		if s.name == name {
			return s, true
		}
	}
	return setting{}, false
}

// text is a string setting; field nil keeps the value for the checks only.
func text(name, def, arg, usage string, field func(*Config) *string) setting {
	return setting{name: name, kind: kindString, def: def, arg: arg, usage: usage,
		apply: func(c *Config, v []string) error {
			if field != nil {
				*field(c) = v[0]
			}
			return nil
		}}
}

func boolean(name string, def bool, usage string, field func(*Config) *bool) setting {
	return setting{name: name, kind: kindBool, def: strconv.FormatBool(def), usage: usage,
		apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return fmt.Errorf("%s is not true or false", quote(v[0]))
			}
			if field != nil {
				*field(c) = b
			}
			return nil
		}}
}

// duration is a duration setting, at least zero, or above zero when
// positive is set.
func duration(name string, def time.Duration, positive bool, usage string, field func(*Config) *time.Duration) setting {
	return setting{name: name, kind: kindDuration, def: def.String(), arg: "DURATION", usage: usage,
		apply: func(c *Config, v []string) error {
			d, err := time.ParseDuration(v[0])
			switch {
			case err != nil:
				return fmt.Errorf("%s is not a duration (such as 500ms, 30s or 5m)", quote(v[0]))
			case d < 0:
				return fmt.Errorf("%v is negative", d)
			case d == 0 && positive:
				return errors.New("must be more than 0")
			}
			if field != nil {
				*field(c) = d
			}
			return nil
		}}
}

// integer is an integer setting of at least least.
func integer(name string, def, least int, usage string, field func(*Config) *int) setting {
	return setting{name: name, kind: kindInt, def: strconv.Itoa(def), arg: "N", usage: usage,
		apply: func(c *Config, v []string) error {
			n, err := strconv.Atoi(v[0])
			switch {
			case err != nil:
				return fmt.Errorf("%s is not an integer", quote(v[0]))
			case n < least:
				return fmt.Errorf("%d is less than %d", n, least)
			}
			if field != nil {
				*field(c) = n
			}
			return nil
		}}
}

// list is a comma-separated setting without a default; its items may not
// be empty.
func list(name, arg, usage string, field func(*Config) *[]string) setting {
	return setting{name: name, kind: kindList, arg: arg, usage: usage,
		apply: func(c *Config, v []string) error {
			if field != nil {
				*field(c) = v
			}
			return nil
		}}
}

// quote quotes a value for a message, shortened: values in messages come
// from the operator, never from a request.
func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.Quote(s)
}

// parseUpstream reads -upstream: an absolute http or https URL without user
// information, query or fragment.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return nil, errors.New("not an absolute http or https URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %s: want http or https", quote(u.Scheme))
	case u.User != nil:
		return nil, errors.New("must not hold user information: a secret in a URL shows in the process list and in logs")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("must not have a query")
	case u.Fragment != "":
		return nil, errors.New("must not have a fragment")
	}
	return u, nil
}

// parsePrefix reads a trusted proxy: an IP prefix in CIDR notation or one
// address. On failure it returns what is wrong.
func parsePrefix(s string) (netip.Prefix, string) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, "is not an IP prefix (CIDR), an IP address or unix"
		}
		if m := p.Masked(); m != p {
			return p, "has host bits set (the network is " + m.String() + ")"
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, "is not an IP prefix (CIDR), an IP address or unix"
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Addr().Is4In6():
		return p, "is IPv4-mapped IPv6: write it in IPv4"
	case p.Bits() == 0:
		return p, "holds every address: name the proxies alone"
	}
	return p, ""
}
