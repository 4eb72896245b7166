package config_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// base is a valid reverse-proxy configuration.
var base = []string{"-upstream", "http://127.0.0.1:3000", "-endpoint", "https://as.example.com/introspect", "-client-id", "api"}

// secretEnv holds the client secret.
var secretEnv = []string{config.EnvClientSecret + "=s3cret"}

// writeFile writes content to a file of its own and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func load(t *testing.T, args, env []string) (*config.Config, error) {
	t.Helper()
	return config.Load(args, env, io.Discard)
}

// TestPrecedence gives settings in the file, the environment and the
// flags: a flag wins over the environment, which wins over the file, which
// wins over the default; Label names where the value came from.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "proxy.yaml", `
listen: "127.0.0.1:7001"
max-ttl: 1m
negative-ttl: 20s
cache-size: 10
trusted-proxies:
  - 10.0.0.0/8
  - 10.1.2.3
require-scope:
  - /file=file
forward-authorization: false
identity-header-prefix: X-File-
`)
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "file over defaults", check: func(t *testing.T, c *config.Config) {
			assert.Equal(t, "127.0.0.1:7001", c.Listen)
			assert.Equal(t, time.Minute, c.MaxTTL)
			assert.Equal(t, 10, c.CacheSize)
			assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.2.3/32")}, c.TrustedProxies)
			assert.False(t, c.TrustUnixSocket, "not in the file's list")
			assert.Equal(t, []config.ScopeRule{{Prefix: "/file", Scopes: []string{"file"}}}, c.ScopeRules)
			assert.False(t, c.ForwardAuthorization)
			assert.Equal(t, "X-File-", c.IdentityHeaderPrefix)
			assert.Equal(t, config.DefaultOpsListen, c.OpsListen, "a default")
			assert.Equal(t, introspect.DPoPAllowed, c.DPoP, "a default")
			assert.Contains(t, c.Label("listen"), "proxy.yaml:2: listen")
			assert.Equal(t, "-ops-listen", c.Label("ops-listen"))
		}},
		{name: "environment over file", env: []string{
			"INTROSPECT_LISTEN=127.0.0.1:7002", "INTROSPECT_MAX_TTL=2m", "INTROSPECT_TRUSTED_PROXIES=192.0.2.0/24, 198.51.100.1",
			"INTROSPECT_REQUIRE_SCOPE=/env=env\nPOST /env/w=env:write,audit\n", "INTROSPECT_FORWARD_AUTHORIZATION=true",
			"INTROSPECT_NEGATIVE_TTL=", // empty: not set
		}, check: func(t *testing.T, c *config.Config) {
			assert.Equal(t, "127.0.0.1:7002", c.Listen)
			assert.Equal(t, 2*time.Minute, c.MaxTTL)
			assert.Equal(t, 20*time.Second, c.NegativeTTL, "an empty variable leaves the file's value")
			assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.1/32")}, c.TrustedProxies)
			assert.Equal(t, []config.ScopeRule{
				{Prefix: "/env", Scopes: []string{"env"}},
				{Method: "POST", Prefix: "/env/w", Scopes: []string{"env:write", "audit"}},
			}, c.ScopeRules)
			assert.True(t, c.ForwardAuthorization)
			assert.Equal(t, "INTROSPECT_LISTEN", c.Label("listen"))
		}},
		{name: "flags over environment", args: []string{
			"-listen", "127.0.0.1:7003", "-max-ttl", "3m", "-trusted-proxies", "", "-require-scope", "/flag=a",
			"-require-scope", "GET /flag/r=b", "-forward-authorization=false",
		}, env: []string{
			"INTROSPECT_LISTEN=127.0.0.1:7002", "INTROSPECT_MAX_TTL=2m", "INTROSPECT_TRUSTED_PROXIES=192.0.2.0/24",
			"INTROSPECT_REQUIRE_SCOPE=/env=env", "INTROSPECT_FORWARD_AUTHORIZATION=true",
		}, check: func(t *testing.T, c *config.Config) {
			assert.Equal(t, "127.0.0.1:7003", c.Listen)
			assert.Equal(t, 3*time.Minute, c.MaxTTL)
			assert.Empty(t, c.TrustedProxies, "an empty flag is an empty list")
			assert.False(t, c.TrustUnixSocket, "an empty flag is an empty list")
			assert.Equal(t, []config.ScopeRule{
				{Prefix: "/flag", Scopes: []string{"a"}},
				{Method: "GET", Prefix: "/flag/r", Scopes: []string{"b"}},
			}, c.ScopeRules)
			assert.False(t, c.ForwardAuthorization)
			assert.Equal(t, "-listen", c.Label("listen"))
		}},
		{name: "config file named in the environment", env: []string{"INTROSPECT_CONFIG=" + file}, check: func(t *testing.T, c *config.Config) {
			assert.Equal(t, "127.0.0.1:7001", c.Listen)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(slicesClone(base), tc.args...)
			env := append(slicesClone(secretEnv), tc.env...)
			if !strings.Contains(tc.name, "named in the environment") {
				args = append(args, "-config", file)
			}
			c, err := load(t, args, env)
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TestDefaults checks the configuration a minimal command line gives.
func TestDefaults(t *testing.T) {
	c, err := load(t, base, secretEnv)
	require.NoError(t, err)
	assert.Equal(t, ":8080", c.Listen)
	assert.Equal(t, "127.0.0.1:9090", c.OpsListen)
	assert.Equal(t, "reverse-proxy", c.Mode())
	assert.Equal(t, "http://127.0.0.1:3000", c.Upstream.String())
	assert.Equal(t, "s3cret", c.ClientSecret.Value())
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, c.TrustedProxies)
	assert.True(t, c.TrustUnixSocket, "the peers of a unix socket are local, like loopback's")
	assert.Equal(t, os.FileMode(0o660), c.SocketMode)
	assert.Equal(t, "X-Auth-", c.IdentityHeaderPrefix)
	assert.True(t, c.ForwardAuthorization)
	assert.True(t, c.PassHostHeader)
	assert.True(t, c.AccessLog)
	assert.Equal(t, 100_000, c.CacheSize)
	assert.Equal(t, introspect.DefaultMaxTTL, c.MaxTTL)
	assert.Equal(t, introspect.DefaultNegativeTTL, c.NegativeTTL)
	assert.Equal(t, 10*time.Second, c.ReadHeaderTimeout)
	assert.Equal(t, 64<<10, c.MaxHeaderBytes)
	assert.Equal(t, 25*time.Second, c.ShutdownTimeout)
	assert.Equal(t, time.Minute, c.UpstreamResponseHeaderTimeout)
	assert.Equal(t, introspect.DPoPAllowed, c.DPoP)
	assert.Equal(t, introspect.ValidateIntrospect, c.Validation)
	assert.Equal(t, introspect.DefaultMaxJWTSize, c.MaxJWTSize)
	assert.False(t, c.Userinfo)
	assert.Equal(t, config.IngressAuto, c.ForwardAuthIngress)
	assert.Equal(t, tls.NoClientCert, c.TLSClientAuth)
	assert.Nil(t, c.Redis)
	assert.Empty(t, c.Warnings)

	// Introspection takes no token larger than 4 KiB: a header bound below
	// -max-jwt-size is no mistake there.
	c, err = load(t, append(slicesClone(base), "-max-header-bytes", "4096"), secretEnv)
	require.NoError(t, err)
	assert.Equal(t, 4096, c.MaxHeaderBytes)
}

// TestValidation gives one mistake at a time: each is an error from Load
// that names the setting as it was given.
func TestValidation(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	emptyFile := file("empty", "\n")
	notPEM := file("not.pem", "hello")
	ecKey := file("ec.pem", ecKeyPEM(t))
	certFile, keyFile := certPair(t, dir)
	fwd := []string{"-forward-auth", "-endpoint", "https://as.example.com/introspect", "-client-id", "api"}
	withBase := func(extra ...string) []string { return append(slicesClone(base), extra...) }

	for _, tc := range []struct {
		name string
		args []string // nil: base
		env  []string // added to secretEnv
		yaml string   // the content of a -config file, when not empty
		want []string // parts of the error
	}{
		// The mode.
		{name: "no mode", args: []string{"-endpoint", "https://as.example.com/i", "-client-id", "api"}, want: []string{"-upstream or -forward-auth: choose the mode"}},
		{name: "two modes", args: withBase("-forward-auth"), want: []string{"-upstream and -forward-auth: choose one mode"}},
		{name: "upstream not absolute", args: withBase("-upstream", "/relative"), want: []string{"-upstream: not an absolute http or https URL"}},
		{name: "upstream scheme", args: withBase("-upstream", "ftp://h/"), want: []string{`-upstream: scheme "ftp"`}},
		{name: "upstream user info", env: []string{"INTROSPECT_UPSTREAM=http://u:p@h/"}, args: []string{"-endpoint", "https://as.example.com/i", "-client-id", "api"}, want: []string{"INTROSPECT_UPSTREAM: must not hold user information"}},
		{name: "upstream query", args: withBase("-upstream", "http://h/?a=b"), want: []string{"-upstream: must not have a query"}},
		{name: "upstream fragment", args: withBase("-upstream", "http://h/#f"), want: []string{"-upstream: must not have a fragment"}},
		{name: "reverse setting in forward-auth", args: append(slicesClone(fwd), "-pass-host-header=false"), want: []string{"-pass-host-header: applies to the reverse proxy"}},
		{name: "upstream timeout in forward-auth", args: fwd, env: []string{"INTROSPECT_UPSTREAM_DIAL_TIMEOUT=1s"}, want: []string{"INTROSPECT_UPSTREAM_DIAL_TIMEOUT: applies to the reverse proxy"}},
		{name: "forward-auth setting in reverse", args: withBase("-forward-auth-ingress", "nginx"), want: []string{"-forward-auth-ingress: applies to -forward-auth"}},
		{name: "unknown ingress", args: append(slicesClone(fwd), "-forward-auth-ingress", "haproxy"), want: []string{`-forward-auth-ingress: "haproxy" is not auto, nginx, caddy, traefik or envoy`}},
		{name: "path prefix", args: append(slicesClone(fwd), "-forward-auth-path-prefix", "check"), want: []string{`-forward-auth-path-prefix: "check" must be a path starting with /`}},
		{name: "upstream CA", args: withBase("-upstream-ca", notPEM), want: []string{"-upstream-ca:", "holds no PEM certificate"}},
		{name: "positional argument", args: withBase("extra"), want: []string{`unexpected arguments: "extra"`}},

		// Addresses.
		{name: "empty listen", args: withBase("-listen", ""), want: []string{"-listen: empty"}},
		{name: "ops on the proxy's address", args: withBase("-listen", "127.0.0.1:1", "-ops-listen", "127.0.0.1:1"), want: []string{"-ops-listen and -listen: the same address"}},
		{name: "empty ops-listen", args: withBase("-ops-listen", ""), want: []string{"-ops-listen: empty: give an address, or off"}},
		{name: "unix socket without a path", args: withBase("-listen", "unix:", "-ops-listen", "unix:"), want: []string{"-listen: unix: with no path", "-ops-listen: unix: with no path"}},
		{name: "ops on the proxy's socket", args: withBase("-listen", "unix:/run/p.sock", "-ops-listen", "unix:/run/p.sock"), want: []string{"-ops-listen and -listen: the same address"}},
		{name: "socket mode not octal", args: withBase("-listen", "unix:/run/p.sock", "-socket-mode", "0689"), want: []string{`-socket-mode: "0689" is not an octal file mode`}},
		{name: "socket mode too large", env: []string{"INTROSPECT_SOCKET_MODE=01777"}, args: withBase("-listen", "unix:/run/p.sock"), want: []string{`INTROSPECT_SOCKET_MODE: "01777" is not an octal file mode`}},
		{name: "abstract socket", args: withBase("-listen", "unix:@introspect"), want: []string{`-listen: "@introspect" is an abstract socket, which has no file mode`}},
		{name: "socket mode the owner cannot use", args: withBase("-listen", "unix:/run/p.sock", "-socket-mode", "0460"), want: []string{"-socket-mode: 0460 does not let the proxy's own user read and write the socket"}},
		{name: "socket mode without a socket", args: withBase("-socket-mode", "0600"), want: []string{"-socket-mode needs -listen or -ops-listen of the form unix:PATH"}},
		{name: "trusted proxy", args: withBase("-trusted-proxies", "10.0.0.1/8,nope,0.0.0.0/0,::ffff:10.0.0.1"), want: []string{
			`-trusted-proxies: "10.0.0.1/8" has host bits set (the network is 10.0.0.0/8)`, `"nope" is not an IP prefix`,
			`"0.0.0.0/0" holds every address`, `"::ffff:10.0.0.1" is IPv4-mapped IPv6`}},

		// TLS.
		{name: "tls-cert without key", args: withBase("-tls-cert", certFile), want: []string{"-tls-cert needs -tls-key"}},
		{name: "tls-key without cert", args: withBase("-tls-key", keyFile), want: []string{"-tls-key needs -tls-cert"}},
		{name: "tls pair", args: withBase("-tls-cert", notPEM, "-tls-key", keyFile), want: []string{"-tls-cert, -tls-key:"}},
		{name: "client CA without TLS", args: withBase("-tls-client-ca", certFile), want: []string{"-tls-client-ca needs -tls-cert"}},
		{name: "client CA file", args: withBase("-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-ca", notPEM), want: []string{"-tls-client-ca:", "holds no PEM certificate"}},
		{name: "client auth without TLS", args: withBase("-tls-client-auth", "request"), want: []string{"-tls-client-auth: request needs -tls-cert"}},
		{name: "verify without CA", args: withBase("-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-auth", "require"), want: []string{"-tls-client-auth: require needs -tls-client-ca"}},
		{name: "unknown client auth", args: withBase("-tls-client-auth", "maybe"), want: []string{`-tls-client-auth: "maybe" is not none, request, verify-if-given or require`}},
		{name: "header bound too small", args: withBase("-max-header-bytes", "4095"), want: []string{"-max-header-bytes: 4095 is less than 4096"}},
		{name: "reload without TLS", env: []string{"INTROSPECT_TLS_RELOAD_INTERVAL=0"}, args: withBase(), want: []string{"INTROSPECT_TLS_RELOAD_INTERVAL needs -tls-cert"}},
		{name: "reload too often", args: withBase("-tls-cert", certFile, "-tls-key", keyFile, "-tls-reload-interval", "500ms"), want: []string{"-tls-reload-interval: 500ms is less than 1s"}},
		{name: "reload interval negative", args: withBase("-tls-cert", certFile, "-tls-key", keyFile, "-tls-reload-interval", "-1m"), want: []string{"-tls-reload-interval: -1m0s is negative"}},

		// The authorization server.
		{name: "no server", args: []string{"-upstream", "http://h", "-client-id", "api"}, want: []string{"-endpoint or -issuer: name the authorization server"}},
		{name: "endpoint over http", args: withBase("-endpoint", "http://as.example.com/i"), want: []string{"-endpoint: is not https", "-insecure-allow-http"}},
		{name: "endpoint not absolute", args: withBase("-endpoint", "as.example.com"), want: []string{`-endpoint: is not an absolute URL`}},
		{name: "endpoint user info", args: withBase("-endpoint", "https://u:p@as/i"), want: []string{"-endpoint: must not hold user information"}},
		{name: "endpoint fragment", args: withBase("-endpoint", "https://as/i#x"), want: []string{"-endpoint: must not have a fragment"}},
		{name: "endpoint scheme", args: withBase("-endpoint", "ftp://as/i"), want: []string{`-endpoint: scheme "ftp": want https`}},
		{name: "issuer query", args: withBase("-issuer", "https://as/?x=1"), want: []string{"-issuer: an issuer has no query"}},
		{name: "jwt-response without issuer", args: withBase("-jwt-response"), want: []string{"-jwt-response needs -issuer"}},
		{name: "eager discovery without issuer", args: withBase("-eager-discovery"), want: []string{"-eager-discovery needs -issuer"}},
		{name: "jwt algs without jwt-response", args: withBase("-issuer", "https://as", "-jwt-response-algs", "PS256"), want: []string{"-jwt-response-algs needs -jwt-response"}},
		{name: "jwt algs", args: withBase("-issuer", "https://as", "-jwt-response", "-jwt-response-algs", "HS256"), want: []string{`-jwt-response-algs: "HS256" is not one of`}},
		{name: "no client id", args: []string{"-upstream", "http://h", "-endpoint", "https://as/i"}, want: []string{"-client-id: the proxy's client ID"}},

		// Credentials.
		{name: "no credential", args: base, env: []string{config.EnvClientSecret + "="}, want: []string{"no client credential: give a client secret (INTROSPECT_CLIENT_SECRET or -client-secret-file)"}},
		{name: "secret twice", args: withBase("-client-secret-file", file("secret", "from-file\n")), want: []string{"INTROSPECT_CLIENT_SECRET and -client-secret-file: the client secret is given twice"}},
		{name: "secret file missing", args: withBase("-client-secret-file", filepath.Join(dir, "missing")), env: []string{config.EnvClientSecret + "="}, want: []string{"-client-secret-file: open"}},
		{name: "secret file empty", args: withBase("-client-secret-file", emptyFile), env: []string{config.EnvClientSecret + "="}, want: []string{"-client-secret-file: the file", "is empty"}},
		{name: "private key", args: withBase("-private-key", notPEM), want: []string{"-private-key: private key is neither PEM nor a JWK"}},
		{name: "client-key without client-cert", args: withBase("-client-key", keyFile), want: []string{"-client-key needs -client-cert"}},
		{name: "client certificate", args: withBase("-client-cert", notPEM), want: []string{"-client-cert:"}},
		{name: "bearer token file missing", args: withBase("-bearer-token-file", filepath.Join(dir, "missing")), want: []string{"-bearer-token-file: open"}},
		{name: "bearer token file empty", args: withBase("-bearer-token-file", emptyFile), want: []string{"-bearer-token-file: the file", "is empty"}},
		{name: "unknown auth method", args: withBase("-auth-method", "magic"), want: []string{`-auth-method: "magic" is not a client authentication method`}},
		{name: "secret method without secret", args: withBase("-auth-method", "client_secret_post", "-private-key", ecKey), env: []string{config.EnvClientSecret + "="}, want: []string{"-auth-method: client_secret_post needs a client secret"}},
		{name: "private_key_jwt without key", args: withBase("-auth-method", "private_key_jwt"), want: []string{"-auth-method: private_key_jwt needs -private-key"}},
		{name: "tls_client_auth without certificate", args: withBase("-auth-method", "tls_client_auth"), want: []string{"-auth-method: tls_client_auth needs -client-cert"}},
		{name: "bearer_token without file", args: withBase("-auth-method", "bearer_token"), want: []string{"-auth-method: bearer_token needs -bearer-token-file"}},
		{name: "none with a secret", args: withBase("-auth-method", "none"), want: []string{"-auth-method: none sends the client ID alone, yet a credential is given"}},
		{name: "raw basic with colon", args: withBase("-client-id", "a:b", "-raw-basic-auth"), want: []string{`-raw-basic-auth: the client ID "a:b" holds ':'`}},
		{name: "raw basic with another method", args: withBase("-raw-basic-auth", "-auth-method", "client_secret_post"), want: []string{`-raw-basic-auth applies to client_secret_basic, and -auth-method is client_secret_post`}},
		{name: "assertion alg for the key", args: withBase("-private-key", ecKey, "-assertion-alg", "RS256"), want: []string{"-assertion-alg: private_key_jwt: algorithm \"RS256\" does not suit a EC key"}},
		{name: "assertion alg for a secret", args: withBase("-assertion-alg", "RS256"), want: []string{`-assertion-alg: "RS256" is not HS256, HS384 or HS512`}},

		// The cache.
		{name: "negative cache size", args: withBase("-cache-size", "-1"), want: []string{"-cache-size: -1 is less than 0"}},
		{name: "cache policy without a cache", args: withBase("-cache-size", "0", "-max-ttl", "1m"), want: []string{"-max-ttl needs a cache: -cache-size is 0 and there is no -redis-addr"}},
		{name: "zero max-ttl", args: withBase("-max-ttl", "0s"), want: []string{"-max-ttl: must be more than 0"}},
		{name: "negative duration", args: withBase("-negative-ttl", "-1s"), want: []string{"-negative-ttl: -1s is negative"}},
		{name: "not a duration", args: withBase("-stale-if-error", "5"), want: []string{`-stale-if-error: "5" is not a duration`}},
		{name: "refresh-ahead beyond max-ttl", args: withBase("-refresh-ahead", "5m"), want: []string{"-refresh-ahead: 5m0s must be shorter than -max-ttl (5m0s)"}},
		{name: "redis setting without redis", args: withBase("-redis-prefix", "p:"), want: []string{"-redis-prefix needs -redis-addr"}},
		{name: "redis address", args: withBase("-redis-addr", "localhost"), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, want: []string{`-redis-addr: "localhost" is not host:port`}},
		{name: "redis address, a URL", args: withBase("-redis-addr", "redis://:hunter2@redis.internal:6379"), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, want: []string{"-redis-addr: an address is host:port, not a URL or user information"}},
		{name: "redis address, user information", args: withBase("-redis-addr", "hunter2@redis.internal:6379"), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, want: []string{"-redis-addr: an address is host:port, not a URL or user information"}},
		{name: "redis password without redis", env: []string{config.EnvRedisPassword + "=pw"}, want: []string{"INTROSPECT_REDIS_PASSWORD needs -redis-addr"}},
		{name: "redis secret without redis", env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, want: []string{"INTROSPECT_REDIS_SECRET needs -redis-addr"}},
		{name: "DPoP nonce secret without period", env: []string{config.EnvDPoPNonceSecret + "=" + strings.Repeat("x", 32)}, want: []string{"INTROSPECT_DPOP_NONCE_SECRET needs -dpop-nonce-period"}},
		{name: "DPoP nonce secret with DPoP off", args: withBase("-dpop", "off"), env: []string{config.EnvDPoPNonceSecret + "=" + strings.Repeat("x", 32)}, want: []string{"INTROSPECT_DPOP_NONCE_SECRET: DPoP is off"}},
		{name: "trusted proxies, an empty variable", env: []string{"INTROSPECT_TRUSTED_PROXIES="}, want: []string{`INTROSPECT_TRUSTED_PROXIES: empty, which leaves the default 127.0.0.0/8,::1,unix: unset it for the default, or give the empty list as -trusted-proxies="" or trusted-proxies: [] in the file`}},
		{name: "file key without value", yaml: "trusted-proxies:\n", want: []string{"trusted-proxies: no value: give one (an empty list is []), or leave the key out for the default"}},
		{name: "redis without secret", args: withBase("-redis-addr", "127.0.0.1:6379"), want: []string{"-redis-addr needs the cache secret, at least 32 random bytes"}},
		{name: "redis short secret", args: withBase("-redis-addr", "127.0.0.1:6379"), env: []string{config.EnvRedisSecret + "=short"}, want: []string{"INTROSPECT_REDIS_SECRET: the Redis cache secret has 5 bytes, fewer than 32"}},
		{name: "redis secret twice", args: withBase("-redis-addr", "127.0.0.1:6379", "-redis-secret-file", file("rs", strings.Repeat("y", 32))), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, want: []string{"INTROSPECT_REDIS_SECRET and -redis-secret-file: the Redis cache secret is given twice"}},
		{name: "redis encryption key", args: withBase("-redis-addr", "127.0.0.1:6379"), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32), config.EnvRedisEncryptionKey + "=not base64!"}, want: []string{"INTROSPECT_REDIS_ENCRYPTION_KEY: the encryption key is not base64"}},
		{name: "redis encryption key size", args: withBase("-redis-addr", "127.0.0.1:6379"), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32), config.EnvRedisEncryptionKey + "=c2hvcnQ="}, want: []string{"the encryption key has 5 bytes; want 16, 24 or 32"}},
		{name: "redis local tier without cache", args: withBase("-redis-addr", "127.0.0.1:6379", "-cache-size", "0", "-redis-local-ttl", "1s"), env: []string{config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, want: []string{"-redis-local-ttl needs an in-memory tier: -cache-size is 0"}},
		{name: "max concurrent", args: withBase("-max-concurrent-introspections", "0"), want: []string{"-max-concurrent-introspections: 0 is less than 1"}},
		{name: "not an integer", args: withBase("-redis-db", "x"), want: []string{`-redis-db: "x" is not an integer`}},

		// DPoP and certificates.
		{name: "dpop mode", args: withBase("-dpop", "sometimes"), want: []string{`-dpop: "sometimes" is not off, allowed or required`}},
		{name: "dpop setting with dpop off", args: withBase("-dpop", "off", "-dpop-algs", "ES256"), want: []string{"-dpop-algs: DPoP is off (-dpop)"}},
		{name: "dpop external URL", args: withBase("-dpop-external-url", "https://h/?q"), want: []string{"-dpop-external-url:"}},
		{name: "dpop external URLs, the second bad", args: withBase("-dpop-external-url", "https://h,https://i/?q"), want: []string{"-dpop-external-url: WithDPoPExternalURL: the URL has a query"}},
		{name: "dpop algs", args: withBase("-dpop-algs", "HS256"), want: []string{"-dpop-algs: WithDPoPAlgorithms: HS256 is never accepted"}},
		{name: "dpop nonces without secret", args: withBase("-dpop-nonce-period", "1m"), want: []string{"-dpop-nonce-period needs the nonce secret"}},
		{name: "dpop nonce secret short", args: withBase("-dpop-nonce-period", "1m"), env: []string{config.EnvDPoPNonceSecret + "=short"}, want: []string{"INTROSPECT_DPOP_NONCE_SECRET: the DPoP nonce secret has 5 bytes"}},
		{name: "dpop nonce period", args: withBase("-dpop-nonce-period", "48h"), env: []string{config.EnvDPoPNonceSecret + "=" + strings.Repeat("n", 32)}, want: []string{"-dpop-nonce-period: WithDPoPNonces: period 48h0m0s is not between"}},
		{name: "dpop nonce secret without period", args: withBase("-dpop-nonce-secret-file", file("ns", strings.Repeat("n", 32))), want: []string{"-dpop-nonce-secret-file needs -dpop-nonce-period"}},
		{name: "cert header name", args: withBase("-client-cert-header", "X Cert"), want: []string{`-client-cert-header: "X Cert" is not a header name`}},
		{name: "cert header without trusted proxies", args: withBase("-client-cert-header", "X-Cert", "-trusted-proxies", ""), want: []string{"-client-cert-header needs -trusted-proxies"}},
		{name: "unix and a bad prefix", args: withBase("-trusted-proxies", "unix,unix:/run/p.sock"), want: []string{`-trusted-proxies: "unix:/run/p.sock" is not an IP prefix`}},
		{name: "cert header format without header", args: withBase("-client-cert-header-format", "xfcc"), want: []string{"-client-cert-header-format needs -client-cert-header"}},
		{name: "cert header format", args: withBase("-client-cert-header", "X-Cert", "-client-cert-header-format", "pem"), want: []string{`-client-cert-header-format: "pem" is not escaped-pem, xfcc or base64-der`}},

		// Answers, rules and identity.
		{name: "realm", args: withBase("-realm", "é"), want: []string{"-realm: must be printable ASCII"}},
		{name: "client CA with no client certificates", args: withBase("-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-ca", certFile, "-tls-client-auth", "none"), want: []string{"-tls-client-ca: -tls-client-auth none asks no client for a certificate"}},
		{name: "upstream CA with a plain http upstream", args: withBase("-upstream-ca", certFile), want: []string{"-upstream-ca: -upstream is plain http"}},
		{name: "resource metadata", args: withBase("-resource-metadata", "/md"), want: []string{`-resource-metadata: not an absolute http or https URL`}},
		{name: "resource metadata with user information", args: withBase("-resource-metadata", "https://u:hunter2@rs.example/md"), want: []string{"-resource-metadata: must not hold user information"}},
		{name: "rule without scopes", args: withBase("-require-scope", "/admin"), want: []string{`-require-scope: "/admin": want [METHOD ]PREFIX=SCOPE[,SCOPE...]`}},
		{name: "rule prefix", args: withBase("-require-scope", "admin=admin"), want: []string{"the path prefix must start with /"}},
		{name: "rule method", args: withBase("-require-scope", "G(T /a=b"), want: []string{`"G(T" is not an HTTP method`}},
		{name: "rule prefix escaped", args: withBase("-require-scope", "/files/a%2Fb=admin"), want: []string{`the path prefix is matched against the decoded path: write it decoded, "/files/a/b"`}},
		{name: "rule prefix escaped space", args: withBase("-require-scope", "/files/a%20b=admin"), want: []string{`the path prefix is matched against the decoded path, where it holds a space or a control character`}},
		{name: "rule empty scope", args: withBase("-require-scope", "/a=b,,c"), want: []string{`"" is not a scope token`}},
		{name: "rule scope with quote", args: withBase("-require-scope", `/a=b"c`), want: []string{"is not a scope token"}},
		{name: "two rules for a path", args: withBase("-require-scope", "/a=b", "-require-scope", "/a=c"), want: []string{`-require-scope: two rules for "/a"`}},
		{name: "empty identity prefix", args: withBase("-identity-header-prefix", ""), want: []string{"-identity-header-prefix: empty"}},
		{name: "identity prefix not a header", args: withBase("-identity-header-prefix", "X Auth"), want: []string{`-identity-header-prefix: "X Auth" is not the start of a header name`}},
		{name: "identity prefix covering a header", args: withBase("-identity-header-prefix", "X-"), want: []string{`-identity-header-prefix: "X-" would remove the X-Forwarded-For header`}},
		{name: "identity prefix covering Authorization", args: withBase("-identity-header-prefix", "auth"), want: []string{"would remove the Authorization header"}},
		{name: "identity claim name", args: withBase("-identity-claims", "a/b"), want: []string{`-identity-claims: "a/b" cannot name a header`}},
		{name: "identity claims colliding", args: withBase("-identity-claims", "given_name,Given-Name"), want: []string{`-identity-claims: "given_name" and "Given-Name" give the same header, X-Auth-Claim-Given-Name`}},
		{name: "JWT size over the largest", args: withBase("-max-jwt-size", "100000"), want: []string{"-max-jwt-size: 100000 is more than 65536"}},
		{name: "leeway over the largest", args: withBase("-leeway", "1h"), want: []string{"-leeway: 1h0m0s is more than 5m0s"}},
		{name: "upstream cert header without client certificates", args: withBase("-upstream-client-cert-header", "X-Client-Cert"), want: []string{"-upstream-client-cert-header needs -tls-client-auth"}},
		{name: "upstream cert header name", args: withBase("-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-auth", "request", "-upstream-client-cert-header", "X:C"), want: []string{`-upstream-client-cert-header: "X:C" is not a header name`}},
		{name: "bool", args: withBase("-access-log=maybe"), want: []string{`-access-log: "maybe" is not true or false`}},
		{name: "bool in the environment", env: []string{"INTROSPECT_ACCESS_LOG=yes"}, want: []string{`INTROSPECT_ACCESS_LOG: "yes" is not true or false`}},
		{name: "log level", args: withBase("-log-level", "loud"), want: []string{`-log-level: "loud" is not debug, info, warn or error`}},

		// The configuration file.
		{name: "file missing", args: withBase("-config", filepath.Join(dir, "missing.yaml")), want: []string{"-config: open"}},
		{name: "file syntax", yaml: "listen: [", want: []string{"yaml:"}},
		{name: "file not a mapping", yaml: "- a\n- b\n", want: []string{"want a mapping of settings"}},
		{name: "file unknown key", yaml: "listen: :1\nlisten_addr: :2\n", want: []string{`:2: "listen_addr" is not a setting of the configuration file`}},
		{name: "file flag-only key", yaml: "check-config: true\n", want: []string{`"check-config" is not a setting of the configuration file`}},
		{name: "file secret", yaml: "client-secret: s\n", want: []string{":1: client-secret: secrets are not read from the configuration file: use client-secret-file or INTROSPECT_CLIENT_SECRET"}},
		{name: "file duplicate key", yaml: "listen: :1\nlisten: :2\n", want: []string{":2: listen: given twice"}},
		{name: "file list for a scalar", yaml: "listen: [a, b]\n", want: []string{"listen: takes one value, not a list"}},
		{name: "file mapping value", yaml: "listen: {a: b}\n", want: []string{"listen: want a plain value"}},
		{name: "file two documents", yaml: "listen: :1\n---\nlisten: :2\n", want: []string{"more than one YAML document"}},
		{name: "file value", yaml: "max-ttl: soon\n", want: []string{`:1: max-ttl: "soon" is not a duration`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = base
			}
			if tc.yaml != "" {
				args = append(slicesClone(args), "-config", file(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml))
			}
			c, err := load(t, args, append(slicesClone(secretEnv), tc.env...))
			require.Error(t, err, "config: %v", c)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestAllProblemsAtOnce checks that Load reports every problem, not the
// first.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := load(t, []string{"-upstream", "ftp://h", "-max-ttl", "x", "-dpop", "no"}, nil)
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	assert.GreaterOrEqual(t, len(ce.Problems), 5, err.Error())
	for _, w := range []string{"-upstream", "-max-ttl", "-dpop", "-endpoint or -issuer", "-client-id"} {
		assert.Contains(t, err.Error(), w)
	}
}

// TestSecretsNotFromFlags refuses a secret on the command line without
// repeating it.
func TestSecretsNotFromFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-client-secret", "hunter2"}, {"--client-secret=hunter2"}, {"-redis-secret", "hunter2"},
		{"-redis-password=hunter2"}, {"-redis-encryption-key", "hunter2"}, {"-dpop-nonce-secret", "hunter2"},
	} {
		t.Run(args[0], func(t *testing.T) {
			var out bytes.Buffer
			_, err := config.Load(append(slicesClone(base), args...), nil, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "a secret on the command line shows in the process list")
			assert.NotContains(t, err.Error()+out.String(), "hunter2")
		})
	}
}

// TestSecretsFromFiles reads every secret from its file.
func TestSecretsFromFiles(t *testing.T) {
	secret := writeFile(t, "client", "from-file\r\n")
	redisSecret := writeFile(t, "redis", strings.Repeat("r", 40)+"\n")
	password := writeFile(t, "password", "pw\n")
	key := writeFile(t, "key", "MDEyMzQ1Njc4OWFiY2RlZg==\n") // 16 bytes
	nonce := writeFile(t, "nonce", strings.Repeat("n", 32))
	c, err := load(t, append(slicesClone(base), "-client-secret-file", secret, "-redis-addr", "127.0.0.1:6379,127.0.0.1:6380",
		"-redis-secret-file", redisSecret, "-redis-password-file", password, "-redis-encryption-key-file", key,
		"-dpop-nonce-period", "1m", "-dpop-nonce-secret-file", nonce), nil)
	require.NoError(t, err)
	assert.Equal(t, "from-file", c.ClientSecret.Value())
	require.NotNil(t, c.Redis)
	assert.Equal(t, []string{"127.0.0.1:6379", "127.0.0.1:6380"}, c.Redis.Addrs)
	assert.Equal(t, strings.Repeat("r", 40), c.Redis.Secret.Value())
	assert.Equal(t, "pw", c.Redis.Password.Value())
	assert.Equal(t, "0123456789abcdef", c.Redis.EncryptionKey.Value())
	assert.Equal(t, "introspect:", c.Redis.Prefix)
	assert.Equal(t, config.DefaultRedisLocalTTL, c.Redis.LocalTTL)
	assert.Equal(t, strings.Repeat("n", 32), c.DPoPNonceSecret.Value())
}

// TestCredentialFiles reads a private key and a client certificate.
func TestCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := certPair(t, dir)
	key := writeFile(t, "ec.pem", ecKeyPEM(t))
	c, err := load(t, append(slicesClone(base), "-private-key", key, "-client-cert", certFile, "-client-key", keyFile,
		"-auth-method", "private_key_jwt", "-assertion-alg", "ES256"), []string{config.EnvClientSecret + "="})
	require.NoError(t, err)
	assert.NotNil(t, c.PrivateKey)
	assert.NotNil(t, c.ClientCertificate)
	assert.Equal(t, introspect.PrivateKeyJWT, c.AuthMethod)

	c, err = load(t, append(slicesClone(base), "-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-ca", certFile), secretEnv)
	require.NoError(t, err)
	assert.Equal(t, tls.VerifyClientCertIfGiven, c.TLSClientAuth, "the default with a client CA")
	assert.NotNil(t, c.TLSCertificate)
	assert.Equal(t, [3]string{certFile, keyFile, certFile}, [3]string{c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile}, "the files read again")
	assert.Equal(t, time.Minute, c.TLSReloadInterval, "the default")

	c, err = load(t, append(slicesClone(base), "-tls-cert", certFile, "-tls-key", keyFile, "-tls-reload-interval", "0"), secretEnv)
	require.NoError(t, err)
	assert.Zero(t, c.TLSReloadInterval)
	assert.Empty(t, c.TLSClientCAFile)
}

// TestWarnings warns about an INTROSPECT_ variable that names no setting.
func TestWarnings(t *testing.T) {
	c, err := load(t, base, append(slicesClone(secretEnv), "INTROSPECT_UPSTREM=http://typo", "INTROSPECT_CHECK_CONFIG=true", "OTHER=x"))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"INTROSPECT_CHECK_CONFIG names no setting of introspect-proxy: ignored",
		"INTROSPECT_UPSTREM names no setting of introspect-proxy: ignored",
	}, c.Warnings)

	// A socket every user may open, whose peers are trusted proxies.
	c, err = load(t, append(slicesClone(base), "-listen", "unix:/run/p.sock", "-socket-mode", "0666"), secretEnv)
	require.NoError(t, err)
	assert.Equal(t, []string{"-socket-mode 0666 lets every user of the host connect, and -trusted-proxies holds unix: each of them is a trusted proxy, whose forwarding headers are believed"}, c.Warnings)
	c, err = load(t, append(slicesClone(base), "-listen", "unix:/run/p.sock", "-socket-mode", "0666", "-trusted-proxies", "127.0.0.1"), secretEnv)
	require.NoError(t, err)
	assert.Empty(t, c.Warnings, "unix peers are not trusted")

	// What weakens the checks is allowed, never silently.
	c, err = load(t, append(slicesClone(base), "-insecure-allow-http", "-trusted-proxies", "10.0.0.0/8,0.0.0.0/1,128.0.0.0/1,fc00::/7,::/1"),
		append(slicesClone(secretEnv), "INTROSPECT_INSECURE_SKIP_TOKEN_BINDING=true"))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-insecure-allow-http: tokens and client credentials may cross the network in clear",
		"INTROSPECT_INSECURE_SKIP_TOKEN_BINDING: certificate- and DPoP-bound tokens are not checked against the client: only where a proxy in front checks them",
		"-trusted-proxies: 0.0.0.0/1 is a large share of all addresses: every client in it is believed about the original request, its address and its certificate",
		"-trusted-proxies: 128.0.0.0/1 is a large share of all addresses: every client in it is believed about the original request, its address and its certificate",
		"-trusted-proxies: ::/1 is a large share of all addresses: every client in it is believed about the original request, its address and its certificate",
	}, c.Warnings)

	// CAs that only name themselves to clients.
	dir := t.TempDir()
	certFile, keyFile := certPair(t, dir)
	c, err = load(t, append(slicesClone(base), "-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-ca", certFile, "-tls-client-auth", "request"), secretEnv)
	require.NoError(t, err)
	assert.Equal(t, []string{"-tls-client-ca: with -tls-client-auth request its CAs only help clients choose a certificate: none is verified against them (verify-if-given verifies)"}, c.Warnings)

	// A variable hides the file's value, as documented: said, since an
	// image's variable may hide the operator's file.
	file := writeFile(t, "proxy.yaml", "ops-listen: off\nmax-ttl: 1m\n")
	c, err = load(t, append(slicesClone(base), "-config", file, "-max-ttl", "2m"), append(slicesClone(secretEnv), "INTROSPECT_OPS_LISTEN=:9090"))
	require.NoError(t, err)
	assert.Equal(t, ":9090", c.OpsListen)
	assert.Equal(t, []string{"INTROSPECT_OPS_LISTEN overrides " + file + ":1: ops-listen"}, c.Warnings, "a flag over the file is no surprise")
}

// TestHelpAndVersion checks -help, which lists every setting with its
// variable, and -version, which skips the checks.
func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	_, err := config.Load([]string{"-help"}, nil, &out)
	assert.True(t, errors.Is(err, flag.ErrHelp))
	for _, w := range []string{"-upstream URL", "$INTROSPECT_UPSTREAM", "-require-scope [METHOD ]PREFIX=SCOPE,...", "default X-Auth-", "INTROSPECT_CLIENT_SECRET",
		"-validate MODE", "default introspect", "-jwt-audience ID", "$INTROSPECT_JWT_ISSUERS", "-userinfo\n", "userinfo.NAME"} {
		assert.Contains(t, out.String(), w)
	}
	assert.NotContains(t, out.String(), "$INTROSPECT_CHECK_CONFIG", "-check-config is a flag only")
	c, err := config.Load([]string{"-version"}, nil, io.Discard)
	require.NoError(t, err)
	assert.True(t, c.Version)
}

// TestParseScopeRule reads rules.
func TestParseScopeRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want config.ScopeRule
	}{
		{"/admin=admin", config.ScopeRule{Prefix: "/admin", Scopes: []string{"admin"}}},
		{" POST /orders = orders:write , audit ", config.ScopeRule{Method: "POST", Prefix: "/orders", Scopes: []string{"orders:write", "audit"}}},
		{"get /=read", config.ScopeRule{Method: "GET", Prefix: "/", Scopes: []string{"read"}}},
		{"/a=b=c", config.ScopeRule{Prefix: "/a", Scopes: []string{"b=c"}}},
		{"/100%=b", config.ScopeRule{Prefix: "/100%", Scopes: []string{"b"}}}, // a '%' that escapes nothing is the character
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := config.ParseScopeRule(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			round, err := config.ParseScopeRule(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, round)
		})
	}
}

// TestHeaderFold checks the comparison used to remove identity headers.
func TestHeaderFold(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"X-Auth-Subject", true}, {"x-auth-subject", true}, {"X-Auth_Subject", true}, {"X_AUTH_SUBJECT", true},
		{"X-Authorization", false}, {"X-Aut", false}, {"Authorization", false},
	} {
		assert.Equal(t, tc.want, config.HasPrefixFold(tc.name, "X-Auth-"), tc.name)
	}
	assert.Equal(t, "X-Auth-Claim-Given-Name", config.ClaimHeader("X-Auth-", "given_name"))
}

// ecKeyPEM is a PKCS #8 P-256 key.
func ecKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// certPair writes a self-signed certificate and its key into dir.
func certPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// A URL setting that does not parse is not repeated in the error: it may
// hold user information with a password.
func TestBadURLNotRepeated(t *testing.T) {
	_, err := config.Load([]string{"-forward-auth", "-client-id", "a", "-endpoint", "https://proxy:s3cr3t%zz@as.example.com/introspect"},
		[]string{"INTROSPECT_CLIENT_SECRET=x"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-endpoint: is not an absolute URL") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v", err)
	}
	// Nor a Redis address or resource metadata URL that holds a password.
	for _, args := range [][]string{
		{"-redis-addr", "redis://:s3cr3t@redis.internal:6379"},
		{"-redis-addr", "s3cr3t@redis.internal:6379"},
		{"-resource-metadata", "https://u:s3cr3t@rs.example/md"},
		{"-resource-metadata", "https://u:s3cr3t%zz@rs.example/md"},
	} {
		_, err := config.Load(append([]string{"-forward-auth", "-client-id", "a", "-endpoint", "https://as.example.com/introspect"}, args...),
			[]string{"INTROSPECT_CLIENT_SECRET=x", config.EnvRedisSecret + "=" + strings.Repeat("x", 32)}, io.Discard)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%v: error %v", args, err)
		}
	}
}
