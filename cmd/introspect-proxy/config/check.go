package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
)

// minSecretSize is the least size of the Redis cache secret and of the
// DPoP nonce secret.
const minSecretSize = 32

// jwtAlgs are the algorithms the library accepts for signed introspection
// answers and JWT access tokens (Ed25519 is EdDSA's fully-specified name,
// RFC 9864).
var jwtAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

// bad records a problem.
func (l *loader) bad(format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

// check applies the rules between settings and reads the files they name.
func (l *loader) check() {
	c := l.c
	lb := c.Label
	// An empty variable leaves its setting unset; for a list whose
	// default is not empty, that default may be the opposite of what an
	// empty list would say (-trusted-proxies "" trusts none).
	for _, s := range settings {
		if env := envName(s.name); s.kind == kindList && s.def != "" && l.emptyEnv[env] && !l.given(s.name) {
			l.bad("%s: empty, which leaves the default %s: unset it for the default, or give the empty list as -%s=\"\" or %s: [] in the file",
				env, s.def, s.name, s.name)
		}
	}
	l.checkMode()
	if c.Listen == "" {
		l.bad("%s: empty", lb("listen"))
	}
	unix := false
	for i, addr := range []string{c.Listen, c.OpsListen} {
		name := [...]string{"listen", "ops-listen"}[i]
		if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
			unix = true
			switch {
			case path == "":
				l.bad("%s: %s with no path", lb(name), UnixPrefix)
			case path[0] == '@':
				l.bad("%s: %s is an abstract socket, which has no file mode: anyone on the host could connect", lb(name), quote(path))
			}
		}
	}
	switch {
	case !unix && l.given("socket-mode"):
		l.bad("%s needs %s or %s of the form %sPATH", lb("socket-mode"), lb("listen"), lb("ops-listen"), UnixPrefix)
	case c.SocketMode&0o600 != 0o600:
		l.bad("%s: %#o does not let the proxy's own user read and write the socket", lb("socket-mode"), c.SocketMode)
	case unix && c.SocketMode&0o007 != 0 && c.TrustUnixSocket:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s %#o lets every user of the host connect, and %s holds unix: each of them is a trusted proxy, whose forwarding headers are believed",
			lb("socket-mode"), c.SocketMode, lb("trusted-proxies")))
	}
	if _, port, _ := net.SplitHostPort(c.Listen); c.OpsListen != "" && c.OpsListen == c.Listen && port != "0" {
		l.bad("%s and %s: the same address; the operations endpoints must not share the proxy's (or set %s off)", lb("ops-listen"), lb("listen"), lb("ops-listen"))
	}
	l.checkServer()
	l.checkCredentials()
	l.checkJWT()
	l.checkUserinfo()
	l.checkCache()
	l.checkBinding()
	l.checkIdentity()
	l.warnInsecure()
	if c.MaxJWTSize > introspect.MaxJWTSize {
		l.bad("%s: %d is more than %d", lb("max-jwt-size"), c.MaxJWTSize, introspect.MaxJWTSize)
	}
	if need := c.MaxJWTSize + HeaderRoom; c.Validation != introspect.ValidateIntrospect && c.MaxHeaderBytes < need {
		if l.given("max-header-bytes") {
			l.bad("%s: %d is less than %s and %d bytes for the other headers, %d: a token of that size could not arrive",
				lb("max-header-bytes"), c.MaxHeaderBytes, lb("max-jwt-size"), HeaderRoom, need)
		} else {
			c.MaxHeaderBytes = need // the default makes room for the largest token
		}
	}
	if c.Leeway > introspect.MaxLeeway {
		l.bad("%s: %v is more than %v: tokens would pass that long after they expired", lb("leeway"), c.Leeway, introspect.MaxLeeway)
	}
	if c.Realm != "" && !printable(c.Realm) {
		l.bad("%s: must be printable ASCII", lb("realm"))
	}
	if md := c.ResourceMetadata; md != "" {
		u, err := url.Parse(md)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !printable(md):
			// Not repeated: it may hold user information with a password.
			l.bad("%s: not an absolute http or https URL", lb("resource-metadata"))
		case u.User != nil:
			l.bad("%s: must not hold user information: it is sent to every client", lb("resource-metadata"))
		}
	}
	seen := make(map[string]bool)
	for _, r := range c.ScopeRules {
		key := r.Method + " " + r.Prefix
		if seen[key] {
			l.bad("%s: two rules for %s: merge their scopes into one", lb("require-scope"), quote(strings.TrimSpace(key)))
		}
		seen[key] = true
	}
}

// checkMode checks the choice of mode and the settings of each.
func (l *loader) checkMode() {
	c, lb := l.c, l.c.Label
	switch {
	case c.Upstream == nil && !c.ForwardAuth && l.value("upstream") == "":
		l.bad("%s or %s: choose the mode: the URL of the service to protect, or forward-auth for an ingress", lb("upstream"), lb("forward-auth"))
	case c.Upstream != nil && c.ForwardAuth:
		l.bad("%s and %s: choose one mode", lb("upstream"), lb("forward-auth"))
	}
	if c.ForwardAuth {
		for _, name := range []string{"forward-authorization", "pass-host-header", "upstream-client-cert-header", "upstream-ca",
			"upstream-dial-timeout", "upstream-response-header-timeout", "upstream-idle-conn-timeout"} {
			if l.given(name) {
				l.bad("%s: applies to the reverse proxy (-upstream), not to -forward-auth", lb(name))
			}
		}
	} else {
		for _, name := range []string{"forward-auth-ingress", "forward-auth-path-prefix"} {
			if l.given(name) {
				l.bad("%s: applies to -forward-auth, not to the reverse proxy", lb(name))
			}
		}
	}
	if p := c.ForwardAuthPathPrefix; p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#")) {
		l.bad("%s: %s must be a path starting with /", lb("forward-auth-path-prefix"), quote(p))
	}
	if f := l.value("upstream-ca"); f != "" {
		if c.Upstream != nil && c.Upstream.Scheme != "https" {
			l.bad("%s: %s is plain http, with no certificate to check", lb("upstream-ca"), lb("upstream"))
		}
		pool, err := loadPool(f)
		if err != nil {
			l.bad("%s: %v", lb("upstream-ca"), err)
		}
		c.UpstreamCAs = pool
	}
}

// checkServer checks TLS and the client certificates of the proxy's own
// clients.
func (l *loader) checkServer() {
	c, lb := l.c, l.c.Label
	certFile, keyFile, caFile := l.value("tls-cert"), l.value("tls-key"), l.value("tls-client-ca")
	switch {
	case certFile != "" && keyFile == "":
		l.bad("%s needs %s", lb("tls-cert"), lb("tls-key"))
	case certFile == "" && keyFile != "":
		l.bad("%s needs %s", lb("tls-key"), lb("tls-cert"))
	case certFile != "":
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			l.bad("%s, %s: %v", lb("tls-cert"), lb("tls-key"), err)
		} else {
			c.TLSCertificate = &cert
			c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		}
	}
	switch d := c.TLSReloadInterval; {
	case l.given("tls-reload-interval") && certFile == "":
		l.bad("%s needs %s: it reads the certificate files again", lb("tls-reload-interval"), lb("tls-cert"))
	case d > 0 && d < time.Second:
		l.bad("%s: %v is less than 1s", lb("tls-reload-interval"), d)
	}
	if caFile != "" {
		if certFile == "" {
			l.bad("%s needs %s: client certificates come with TLS", lb("tls-client-ca"), lb("tls-cert"))
		}
		pool, err := loadPool(caFile)
		if err != nil {
			l.bad("%s: %v", lb("tls-client-ca"), err)
		}
		c.TLSClientCAs = pool
		c.TLSClientCAFile = caFile
	}
	mode := l.value("tls-client-auth")
	switch {
	case mode == "" && caFile != "":
		c.TLSClientAuth = tls.VerifyClientCertIfGiven
	case mode == "none" && caFile != "":
		l.bad("%s: %s none asks no client for a certificate: give verify-if-given or require", lb("tls-client-ca"), lb("tls-client-auth"))
	case mode == "request" && caFile != "":
		// Go still names the CAs to clients: a hint for the choice of a
		// certificate, for certificate-bound tokens.
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: with %s request its CAs only help clients choose a certificate: none is verified against them (verify-if-given verifies)",
			lb("tls-client-ca"), lb("tls-client-auth")))
	case mode == "" || mode == "none":
	case certFile == "":
		l.bad("%s: %s needs %s", lb("tls-client-auth"), mode, lb("tls-cert"))
	case (mode == "verify-if-given" || mode == "require") && caFile == "":
		l.bad("%s: %s needs %s, the CAs to check certificates against (request asks for one without checking it)", lb("tls-client-auth"), mode, lb("tls-client-ca"))
	}
}

// checkCredentials checks the authorization server's settings and reads the
// proxy's credentials.
func (l *loader) checkCredentials() {
	c, lb := l.c, l.c.Label
	if c.Validation == introspect.ValidateJWT {
		l.checkNoIntrospection()
		return
	}
	if c.Endpoint == "" && c.Issuer == "" {
		l.bad("%s or %s: name the authorization server", lb("endpoint"), lb("issuer"))
	}
	if c.Endpoint != "" {
		if problem := serverURLProblem(c.Endpoint, c.InsecureAllowHTTP, false); problem != "" {
			l.bad("%s: %s", lb("endpoint"), problem)
		}
	}
	l.checkIssuer()
	if c.Issuer == "" && c.JWTResponse {
		l.bad("%s needs %s: it works on the server's metadata", lb("jwt-response"), lb("issuer"))
	}
	if len(c.JWTResponseAlgs) > 0 {
		if !c.JWTResponse {
			l.bad("%s needs %s", lb("jwt-response-algs"), lb("jwt-response"))
		}
		for _, a := range c.JWTResponseAlgs {
			if !slices.Contains(jwtAlgs, a) {
				l.bad("%s: %s is not one of %s", lb("jwt-response-algs"), quote(a), strings.Join(jwtAlgs, ", "))
			}
		}
	}
	if c.ClientID == "" {
		l.bad("%s: the proxy's client ID at the authorization server is needed", lb("client-id"))
	}

	c.ClientSecret = l.secret("the client secret", EnvClientSecret, "client-secret-file")
	if f := l.value("private-key"); f != "" {
		data, err := ReadFile(f, MaxFileSize)
		if err == nil {
			c.PrivateKey, c.PrivateKeyID, err = introspect.ParsePrivateKey(data)
		}
		if err != nil {
			l.bad("%s: %s", lb("private-key"), libText(err))
		}
	}
	certFile, keyFile := l.value("client-cert"), l.value("client-key")
	switch {
	case keyFile != "" && certFile == "":
		l.bad("%s needs %s", lb("client-key"), lb("client-cert"))
	case certFile != "":
		if keyFile == "" {
			keyFile = certFile
		}
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			l.bad("%s: %v", lb("client-cert"), err)
		} else {
			c.ClientCertificate = &cert
		}
	}
	if f := c.BearerTokenFile; f != "" {
		data, err := ReadFile(f, MaxSecretFileSize)
		switch {
		case err != nil:
			l.bad("%s: %v", lb("bearer-token-file"), err)
		case strings.TrimSpace(string(data)) == "":
			l.bad("%s: the file %s is empty", lb("bearer-token-file"), quote(f))
		}
	}

	hasSecret, hasKey := c.ClientSecret.IsSet(), l.value("private-key") != ""
	hasCert, hasBearer := certFile != "", c.BearerTokenFile != ""
	need := func(what string) {
		l.bad("%s: %s needs %s", lb("auth-method"), c.AuthMethod, what)
	}
	switch c.AuthMethod {
	case "":
		if !hasSecret && !hasKey && !hasCert && !hasBearer {
			l.bad("no client credential: give a client secret (%s or %s), %s, %s, %s, or %s none for a public client",
				EnvClientSecret, lb("client-secret-file"), lb("private-key"), lb("client-cert"), lb("bearer-token-file"), lb("auth-method"))
		}
	case introspect.ClientSecretBasic, introspect.ClientSecretPost, introspect.ClientSecretJWT:
		if !hasSecret {
			need("a client secret (" + EnvClientSecret + " or " + lb("client-secret-file") + ")")
		}
	case introspect.PrivateKeyJWT:
		if !hasKey {
			need(lb("private-key"))
		}
	case introspect.TLSClientAuth, introspect.SelfSignedTLSClientAuth:
		if !hasCert {
			need(lb("client-cert"))
		}
	case introspect.BearerToken:
		if !hasBearer {
			need(lb("bearer-token-file"))
		}
	case introspect.None:
		if hasSecret || hasKey || hasCert || hasBearer {
			l.bad("%s: none sends the client ID alone, yet a credential is given: leave one out", lb("auth-method"))
		}
	}
	if c.RawBasicAuth && strings.Contains(c.ClientID, ":") {
		l.bad("%s: the client ID %s holds ':', which raw Basic credentials cannot carry", lb("raw-basic-auth"), quote(c.ClientID))
	}
	if c.RawBasicAuth && c.AuthMethod != "" && c.AuthMethod != introspect.ClientSecretBasic {
		l.bad("%s applies to client_secret_basic, and %s is %s", lb("raw-basic-auth"), lb("auth-method"), c.AuthMethod)
	}
	if alg := c.AssertionAlg; alg != "" {
		if c.PrivateKey != nil {
			// The library knows which algorithms suit which key.
			_, err := introspect.NewClient(introspect.WithEndpoint("https://as.invalid/introspect"),
				introspect.WithPrivateKey("probe", c.PrivateKey, ""), introspect.WithAssertionSigningAlg(alg))
			if err != nil {
				l.bad("%s: %s", lb("assertion-alg"), libText(err))
			}
		} else if !slices.Contains([]string{"HS256", "HS384", "HS512"}, alg) {
			l.bad("%s: %s is not HS256, HS384 or HS512, the algorithms of client_secret_jwt (a key's need %s)", lb("assertion-alg"), quote(alg), lb("private-key"))
		}
	}
}

// checkIssuer checks -issuer, and -eager-discovery, which needs an issuer.
func (l *loader) checkIssuer() {
	c, lb := l.c, l.c.Label
	if c.Issuer != "" {
		if problem := serverURLProblem(c.Issuer, c.InsecureAllowHTTP, true); problem != "" {
			l.bad("%s: %s", lb("issuer"), problem)
		}
	} else if c.EagerDiscovery && len(c.JWTIssuers) == 0 {
		l.bad("%s needs %s or %s: it works on the servers' metadata", lb("eager-discovery"), lb("issuer"), lb("jwt-issuers"))
	}
}

// introspectionSettings are the settings of the calls to the introspection
// endpoint: the endpoint, the proxy's client there and signed answers.
var introspectionSettings = []string{"endpoint", "client-id", "client-secret-file", "auth-method", "private-key",
	"assertion-alg", "assertion-audience", "client-cert", "client-key", "bearer-token-file", "raw-basic-auth",
	"jwt-response", "jwt-response-algs"}

// checkNoIntrospection refuses, under -validate jwt, which never
// introspects, the settings of introspection, as the library does: a
// forgotten client secret or endpoint is a mistake, not something to ignore.
func (l *loader) checkNoIntrospection() {
	c, lb := l.c, l.c.Label
	for _, name := range introspectionSettings {
		if !l.given(name) {
			continue
		}
		if s, _ := lookup(name); s.kind == kindBool {
			if b, err := strconv.ParseBool(l.value(name)); err == nil && !b {
				continue // set to false: nothing asked for
			}
		}
		l.bad("%s: %s %s never introspects: no endpoint or client credential applies", lb(name), lb("validate"), c.Validation)
	}
	if _, ok := l.env[EnvClientSecret]; ok {
		l.bad("%s: %s %s never introspects: no client secret applies", EnvClientSecret, lb("validate"), c.Validation)
	}
	l.checkIssuer()
}

// checkJWT checks the settings of local JWT validation: they need a
// -validate mode that validates JWTs, which needs an audience and an issuer.
func (l *loader) checkJWT() {
	c, lb := l.c, l.c.Label
	if c.Validation == introspect.ValidateIntrospect {
		for _, name := range []string{"jwt-audience", "jwt-issuers", "jwt-algs", "plain-jwt", "max-jwt-size"} {
			if l.given(name) && !(name == "plain-jwt" && !c.PlainJWT) {
				l.bad("%s needs %s jwt, hybrid or jwt+introspect: tokens are only introspected", lb(name), lb("validate"))
			}
		}
		return
	}
	switch a := c.JWTAudience; {
	case a == "":
		l.bad("%s %s needs %s: the identifier of this service, which a JWT access token must name in its aud", lb("validate"), c.Validation, lb("jwt-audience"))
	case !printable(a):
		l.bad("%s: must be printable ASCII", lb("jwt-audience"))
	}
	switch {
	case c.Validation == introspect.ValidateJWTAndIntrospect && len(c.JWTIssuers) > 0:
		l.bad("%s: %s %s introspects each token at its issuer, %s: more issuers do not apply (they do with jwt or hybrid)", lb("jwt-issuers"), lb("validate"), c.Validation, lb("issuer"))
	case c.Validation == introspect.ValidateJWTAndIntrospect && c.Issuer == "":
		l.bad("%s %s needs %s: the issuer whose JWT access tokens are accepted, its keys found by discovery", lb("validate"), c.Validation, lb("issuer"))
	case c.Issuer == "" && len(c.JWTIssuers) == 0:
		l.bad("%s %s needs %s or %s: the issuers whose JWT access tokens are accepted, their keys found by discovery", lb("validate"), c.Validation, lb("issuer"), lb("jwt-issuers"))
	}
	for _, iss := range c.JWTIssuers {
		if problem := serverURLProblem(iss, c.InsecureAllowHTTP, true); problem != "" {
			l.bad("%s: %s %s", lb("jwt-issuers"), quote(redactURL(iss)), problem)
		}
	}
	for _, a := range c.JWTAlgs {
		switch {
		case strings.EqualFold(a, "none") || len(a) == 5 && strings.EqualFold(a[:2], "HS"):
			l.bad("%s: %s is never accepted: none and HMAC prove nothing about the issuer", lb("jwt-algs"), quote(a))
		case !slices.Contains(jwtAlgs, a):
			l.bad("%s: %s is not one of %s", lb("jwt-algs"), quote(a), strings.Join(jwtAlgs, ", "))
		}
	}
}

// checkUserinfo checks the userinfo settings.
func (l *loader) checkUserinfo() {
	c, lb := l.c, l.c.Label
	if !c.Userinfo {
		if c.UserinfoBestEffort {
			l.bad("%s needs %s", lb("userinfo-best-effort"), lb("userinfo"))
		}
		if l.given("userinfo-endpoint") {
			l.bad("%s needs %s", lb("userinfo-endpoint"), lb("userinfo"))
		}
		return
	}
	switch e := c.UserinfoEndpoint; {
	case e != "" && len(c.JWTIssuers) > 0:
		l.bad("%s and %s: one userinfo endpoint would get the tokens of every issuer: leave %s out, each issuer's userinfo_endpoint is discovered",
			lb("userinfo-endpoint"), lb("jwt-issuers"), lb("userinfo-endpoint"))
	case e != "":
		if problem := serverURLProblem(e, c.InsecureAllowHTTP, false); problem != "" {
			l.bad("%s: %s", lb("userinfo-endpoint"), problem)
		}
	case c.Issuer == "" && len(c.JWTIssuers) == 0:
		l.bad("%s needs %s, %s or %s: the userinfo endpoint comes from the issuer's metadata", lb("userinfo"), lb("issuer"), lb("jwt-issuers"), lb("userinfo-endpoint"))
	}
}

// checkCache checks the cache and Redis settings.
func (l *loader) checkCache() {
	c, lb := l.c, l.c.Label
	addrs := l.values["redis-addr"]
	if len(addrs) == 0 {
		for _, name := range []string{"redis-username", "redis-password-file", "redis-db", "redis-tls", "redis-prefix",
			"redis-timeout", "redis-local-ttl", "redis-secret-file", "redis-encryption-key-file"} {
			if l.given(name) {
				l.bad("%s needs %s", lb(name), lb("redis-addr"))
			}
		}
		for _, env := range []string{EnvRedisPassword, EnvRedisSecret, EnvRedisEncryptionKey} {
			if _, ok := l.env[env]; ok {
				l.bad("%s needs %s", env, lb("redis-addr"))
			}
		}
		if c.CacheSize == 0 {
			for _, name := range []string{"max-ttl", "negative-ttl", "stale-if-error", "refresh-ahead"} {
				if l.given(name) {
					l.bad("%s needs a cache: %s is 0 and there is no %s", lb(name), lb("cache-size"), lb("redis-addr"))
				}
			}
		}
	} else {
		r := c.redis
		for _, a := range addrs {
			if strings.Contains(a, "@") || strings.Contains(a, "://") {
				// Not repeated: it may hold a password.
				l.bad("%s: an address is host:port, not a URL or user information: the password goes in %s or %s",
					lb("redis-addr"), EnvRedisPassword, lb("redis-password-file"))
			} else if _, _, err := net.SplitHostPort(a); err != nil {
				l.bad("%s: %s is not host:port", lb("redis-addr"), quote(a))
			}
		}
		if c.CacheSize == 0 && r.LocalTTL > 0 {
			if l.given("redis-local-ttl") {
				l.bad("%s needs an in-memory tier: %s is 0", lb("redis-local-ttl"), lb("cache-size"))
			}
			r.LocalTTL = 0
		}
		if r.Prefix == "" {
			r.Prefix = introspectredis.DefaultPrefix
		}
		r.Password = l.secret("the Redis password", EnvRedisPassword, "redis-password-file")
		r.Secret = l.secret("the Redis cache secret", EnvRedisSecret, "redis-secret-file")
		switch n := len(r.Secret.Value()); {
		case n == 0:
			if !l.given("redis-secret-file") {
				l.bad("%s needs the cache secret, at least %d random bytes shared by the replicas: %s or %s", lb("redis-addr"), minSecretSize, EnvRedisSecret, lb("redis-secret-file"))
			}
		case n < minSecretSize:
			l.bad("%s: the Redis cache secret has %d bytes, fewer than %d", l.secretLabel(EnvRedisSecret, "redis-secret-file"), n, minSecretSize)
		}
		if k := l.secret("the Redis encryption key", EnvRedisEncryptionKey, "redis-encryption-key-file"); k.IsSet() {
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k.Value()))
			switch {
			case err != nil:
				l.bad("%s: the encryption key is not base64", l.secretLabel(EnvRedisEncryptionKey, "redis-encryption-key-file"))
			case len(key) != 16 && len(key) != 24 && len(key) != 32:
				l.bad("%s: the encryption key has %d bytes; want 16, 24 or 32", l.secretLabel(EnvRedisEncryptionKey, "redis-encryption-key-file"), len(key))
			default:
				r.EncryptionKey = NewSecret(string(key))
			}
		}
		c.Redis = &r
	}
	if (c.CacheSize > 0 || c.Redis != nil) && c.RefreshAhead > 0 && c.RefreshAhead >= c.MaxTTL {
		l.bad("%s: %v must be shorter than %s (%v)", lb("refresh-ahead"), c.RefreshAhead, lb("max-ttl"), c.MaxTTL)
	}
}

// warnInsecure warns of the settings that weaken the checks, naming where
// each was set: they are allowed, but never silently.
func (l *loader) warnInsecure() {
	c, lb := l.c, l.c.Label
	warn := func(format string, args ...any) { c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...)) }
	if c.InsecureAllowHTTP {
		warn("%s: tokens and client credentials may cross the network in clear", lb("insecure-allow-http"))
	}
	if c.InsecureSkipTokenBinding {
		warn("%s: certificate- and DPoP-bound tokens are not checked against the client: only where a proxy in front checks them", lb("insecure-skip-token-binding"))
	}
	for _, p := range c.TrustedProxies {
		if p.Addr().Is4() && p.Bits() < 8 || !p.Addr().Is4() && p.Bits() < 7 {
			warn("%s: %s is a large share of all addresses: every client in it is believed about the original request, its address and its certificate", lb("trusted-proxies"), p)
		}
	}
}

// checkBinding checks DPoP and the client certificate header.
func (l *loader) checkBinding() {
	c, lb := l.c, l.c.Label
	if c.DPoP == introspect.DPoPOff {
		for _, name := range []string{"dpop-external-url", "dpop-algs", "dpop-nonce-period", "dpop-nonce-secret-file"} {
			if l.given(name) {
				l.bad("%s: DPoP is off (%s)", lb(name), lb("dpop"))
			}
		}
		if _, ok := l.env[EnvDPoPNonceSecret]; ok {
			l.bad("%s: DPoP is off (%s)", EnvDPoPNonceSecret, lb("dpop"))
		}
	} else {
		if urls := DPoPExternalURLs(c.DPoPExternalURL); len(urls) > 0 {
			if _, err := introspect.NewDPoPVerifier(introspect.WithDPoPExternalURL(urls[0], urls[1:]...)); err != nil {
				l.bad("%s: %s", lb("dpop-external-url"), libText(err))
			}
		}
		if len(c.DPoPAlgs) > 0 {
			if _, err := introspect.NewDPoPVerifier(introspect.WithDPoPAlgorithms(c.DPoPAlgs...)); err != nil {
				l.bad("%s: %s", lb("dpop-algs"), libText(err))
			}
		}
		c.DPoPNonceSecret = l.secret("the DPoP nonce secret", EnvDPoPNonceSecret, "dpop-nonce-secret-file")
		switch {
		case c.DPoPNoncePeriod > 0 && !c.DPoPNonceSecret.IsSet():
			if !l.given("dpop-nonce-secret-file") {
				l.bad("%s needs the nonce secret, at least %d random bytes shared by the replicas: %s or %s", lb("dpop-nonce-period"), minSecretSize, EnvDPoPNonceSecret, lb("dpop-nonce-secret-file"))
			}
		case c.DPoPNoncePeriod > 0:
			if n := len(c.DPoPNonceSecret.Value()); n < minSecretSize {
				l.bad("%s: the DPoP nonce secret has %d bytes, fewer than %d", l.secretLabel(EnvDPoPNonceSecret, "dpop-nonce-secret-file"), n, minSecretSize)
			} else if _, err := introspect.NewDPoPVerifier(introspect.WithDPoPNonces([]byte(c.DPoPNonceSecret.Value()), c.DPoPNoncePeriod)); err != nil {
				l.bad("%s: %s", lb("dpop-nonce-period"), libText(err))
			}
		case c.DPoPNonceSecret.IsSet():
			l.bad("%s needs %s", l.secretLabel(EnvDPoPNonceSecret, "dpop-nonce-secret-file"), lb("dpop-nonce-period"))
		}
	}
	if h := c.ClientCertHeader; h != "" {
		if !isToken(h) {
			l.bad("%s: %s is not a header name", lb("client-cert-header"), quote(h))
		}
		if len(c.TrustedProxies) == 0 && !c.TrustUnixSocket {
			l.bad("%s needs %s: the header is believed only from the proxies that set it", lb("client-cert-header"), lb("trusted-proxies"))
		}
	} else if l.given("client-cert-header-format") {
		l.bad("%s needs %s", lb("client-cert-header-format"), lb("client-cert-header"))
	}
}

// checkIdentity checks the identity headers.
func (l *loader) checkIdentity() {
	c, lb := l.c, l.c.Label
	p := c.IdentityHeaderPrefix
	switch {
	case p == "":
		l.bad("%s: empty: every header would be removed", lb("identity-header-prefix"))
	case !isToken(p):
		l.bad("%s: %s is not the start of a header name", lb("identity-header-prefix"), quote(p))
	default:
		covered := slices.Clone(protectedHeaders)
		for _, h := range []string{c.ClientCertHeader, c.UpstreamClientCertHeader} {
			if h != "" {
				covered = append(covered, h)
			}
		}
		for _, h := range covered {
			if HasPrefixFold(h, p) {
				l.bad("%s: %s would remove the %s header: choose a longer prefix, such as X-Auth-", lb("identity-header-prefix"), quote(p), h)
				break
			}
		}
	}
	seen := make(map[string]string)
	for _, name := range l.values["identity-claims"] {
		member, userinfo := strings.CutPrefix(name, UserinfoClaimPrefix)
		if !validClaimName(member) {
			l.bad("%s: %s cannot name a header (letters, digits, '-', '_' and '.')", lb("identity-claims"), quote(name))
			continue
		}
		h := ClaimHeader(p, member)
		if userinfo {
			h = UserinfoHeader(p, member)
			if !c.Userinfo {
				l.bad("%s: %s is a userinfo claim: it needs %s", lb("identity-claims"), quote(name), lb("userinfo"))
			}
		}
		if other, dup := seen[headerFold(h)]; dup {
			l.bad("%s: %s and %s give the same header, %s", lb("identity-claims"), quote(other), quote(name), h)
			continue
		}
		seen[headerFold(h)] = name
		c.IdentityClaims = append(c.IdentityClaims, IdentityClaim{Name: member, Userinfo: userinfo, Header: h})
	}
	if h := c.UpstreamClientCertHeader; h != "" {
		switch {
		case !isToken(h):
			l.bad("%s: %s is not a header name", lb("upstream-client-cert-header"), quote(h))
		case c.TLSClientAuth == tls.NoClientCert:
			l.bad("%s needs %s: without it no client presents a certificate", lb("upstream-client-cert-header"), lb("tls-client-auth"))
		}
	}
}

// secret returns the secret of the environment variable env or of the
// file of the setting fileSetting; giving both is an error.
func (l *loader) secret(what, env, fileSetting string) Secret {
	v, inEnv := l.env[env]
	file := l.value(fileSetting)
	switch {
	case inEnv && file != "":
		l.bad("%s and %s: %s is given twice: keep one", env, l.c.Label(fileSetting), what)
		return Secret{}
	case file != "":
		data, err := ReadFile(file, MaxSecretFileSize)
		if err != nil {
			l.bad("%s: %v", l.c.Label(fileSetting), err)
			return Secret{}
		}
		s := strings.TrimRight(string(data), "\r\n")
		if s == "" {
			l.bad("%s: the file %s is empty", l.c.Label(fileSetting), quote(file))
		}
		return NewSecret(s)
	}
	return NewSecret(v)
}

// secretLabel names where a secret came from.
func (l *loader) secretLabel(env, fileSetting string) string {
	if l.value(fileSetting) != "" {
		return l.c.Label(fileSetting)
	}
	return env
}

// serverURLProblem checks the URL of the authorization server: absolute,
// https (or http to loopback, or anywhere with -insecure-allow-http),
// without user information or fragment, and for an issuer without query.
func serverURLProblem(raw string, insecure, issuer bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		// Not repeated: a value that does not parse may hold user
		// information with a password.
		return "is not an absolute URL"
	case u.User != nil:
		return "must not hold user information: the credentials go in their own settings"
	case u.Fragment != "":
		return "must not have a fragment"
	case issuer && (u.RawQuery != "" || u.ForceQuery):
		return "an issuer has no query (RFC 8414)"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http":
		if insecure || isLoopback(u.Hostname()) {
			return ""
		}
		return "is not https: tokens and the client secret would cross the network in clear (-insecure-allow-http allows it)"
	}
	return fmt.Sprintf("scheme %s: want https", quote(u.Scheme))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// loadKeyPair reads a PEM certificate chain and its key, as
// tls.LoadX509KeyPair does, through ReadFile.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := ReadFile(certFile, MaxFileSize)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := ReadFile(keyFile, MaxFileSize)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// loadPool reads PEM certificates: the pool of the CAs in file.
func loadPool(file string) (*x509.CertPool, error) {
	data, err := ReadFile(file, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return ParsePool(data, file)
}

// ParsePool is the pool of the PEM certificates in data, read from file.
func ParsePool(data []byte, file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", quote(file))
	}
	return pool, nil
}

// libText is a library error's text without its package prefix.
func libText(err error) string {
	s := err.Error()
	for _, p := range []string{"introspect: ", "introspectredis: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}
