package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// jwtBase is a valid configuration that validates JWT access tokens
// locally and never introspects: no endpoint, no client credentials.
var jwtBase = []string{"-upstream", "http://127.0.0.1:3000", "-validate", "jwt", "-issuer", "https://as.example.com", "-jwt-audience", "https://api.example.com"}

// TestLocalValidationSettings reads the settings of local JWT validation
// and of userinfo from flags, variables and the file.
func TestLocalValidationSettings(t *testing.T) {
	file := writeFile(t, "proxy.yaml", `
validate: jwt+introspect
issuer: https://as.example.com
jwt-audience: api-from-file
jwt-algs:
  - ES256
  - EdDSA
plain-jwt: true
userinfo: true
identity-claims:
  - userinfo.email
`)
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "jwt from flags", args: append(slicesClone(jwtBase),
			"-jwt-algs", "ES256,PS256", "-plain-jwt",
			"-max-jwt-size", "4096", "-userinfo", "-userinfo-best-effort", "-userinfo-endpoint", "https://as.example.com/userinfo",
			"-identity-claims", "tenant,userinfo.email,userinfo.email_verified"),
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, introspect.ValidateJWT, c.Validation)
				assert.Equal(t, "https://api.example.com", c.JWTAudience)
				assert.Equal(t, []string{"ES256", "PS256"}, c.JWTAlgs)
				assert.True(t, c.PlainJWT)
				assert.Equal(t, 4096, c.MaxJWTSize)
				assert.Equal(t, config.DefaultMaxHeaderBytes, c.MaxHeaderBytes, "room enough for the token")
				assert.True(t, c.Userinfo)
				assert.True(t, c.UserinfoBestEffort)
				assert.Equal(t, "https://as.example.com/userinfo", c.UserinfoEndpoint)
				assert.Equal(t, []config.IdentityClaim{
					{Name: "tenant", Header: "X-Auth-Claim-Tenant"},
					{Name: "email", Userinfo: true, Header: "X-Auth-Userinfo-Email"},
					{Name: "email_verified", Userinfo: true, Header: "X-Auth-Userinfo-Email-Verified"},
				}, c.IdentityClaims)
				assert.Empty(t, c.ClientID)
				assert.False(t, c.ClientSecret.IsSet())
				assert.Empty(t, c.Endpoint)
			}},
		{name: "the largest tokens", args: append(slicesClone(jwtBase), "-max-jwt-size", "65536"),
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, 65536+config.HeaderRoom, c.MaxHeaderBytes, "the default header bound makes room for the token")
			}},
		{name: "jwt with other issuers alone", args: []string{"-forward-auth", "-validate", "jwt", "-jwt-issuers", "https://a.example.com, https://b.example.com/tenant",
			"-jwt-audience", "api", "-eager-discovery", "-userinfo"},
			check: func(t *testing.T, c *config.Config) {
				assert.Empty(t, c.Issuer)
				assert.Equal(t, []string{"https://a.example.com", "https://b.example.com/tenant"}, c.JWTIssuers)
				assert.True(t, c.EagerDiscovery)
			}},
		{name: "hybrid from the environment", args: base, env: []string{
			config.EnvClientSecret + "=s3cret", "INTROSPECT_VALIDATE=hybrid", "INTROSPECT_ISSUER=https://as.example.com",
			"INTROSPECT_JWT_AUDIENCE=api", "INTROSPECT_MAX_JWT_SIZE=100",
			"INTROSPECT_USERINFO=true", "INTROSPECT_USERINFO_ENDPOINT=http://127.0.0.1:9/userinfo",
		}, check: func(t *testing.T, c *config.Config) {
			assert.Equal(t, introspect.ValidateHybrid, c.Validation)
			assert.Equal(t, "https://as.example.com/introspect", c.Endpoint, "hybrid introspects the other tokens")
			assert.Equal(t, "s3cret", c.ClientSecret.Value())
			assert.Equal(t, "api", c.JWTAudience)
			assert.Equal(t, 100, c.MaxJWTSize)
			assert.Equal(t, "http://127.0.0.1:9/userinfo", c.UserinfoEndpoint, "http to loopback")
			assert.Equal(t, "INTROSPECT_VALIDATE", c.Label("validate"))
		}},
		{name: "jwt+introspect from the file", args: append(slicesClone(base), "-config", file), env: secretEnv,
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, introspect.ValidateJWTAndIntrospect, c.Validation)
				assert.Equal(t, "api-from-file", c.JWTAudience)
				assert.Equal(t, []string{"ES256", "EdDSA"}, c.JWTAlgs)
				assert.True(t, c.PlainJWT)
				assert.Equal(t, introspect.DefaultMaxJWTSize, c.MaxJWTSize)
				assert.True(t, c.Userinfo)
				assert.Equal(t, []config.IdentityClaim{{Name: "email", Userinfo: true, Header: "X-Auth-Userinfo-Email"}}, c.IdentityClaims)
				assert.Contains(t, c.Label("validate"), "proxy.yaml:2: validate")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args, tc.env)
			require.NoError(t, err)
			tc.check(t, c)
			assert.Contains(t, c.String(), `"validation":"`+c.Validation.String()+`"`)
		})
	}
}

// TestLocalValidationMistakes gives one mistake at a time in the settings
// of local JWT validation and userinfo: each is an error that names the
// setting as it was given, and the rules are the library's.
func TestLocalValidationMistakes(t *testing.T) {
	withJWT := func(extra ...string) []string { return append(slicesClone(jwtBase), extra...) }
	withBase := func(extra ...string) []string { return append(slicesClone(base), extra...) }
	noSecret := []string{config.EnvClientSecret + "="}
	for _, tc := range []struct {
		name string
		args []string
		env  []string // added to secretEnv
		yaml string   // the content of a -config file, when not empty
		want []string // parts of the error
	}{
		// -validate and the JWT settings.
		{name: "unknown mode", args: withBase("-validate", "local"), want: []string{`-validate: "local" is not introspect, jwt, hybrid or jwt+introspect`}},
		{name: "headers smaller than a token", args: withJWT("-max-jwt-size", "20000", "-max-header-bytes", "30000"), want: []string{"-max-header-bytes: 30000 is less than -max-jwt-size and 16384 bytes for the other headers, 36384: a token of that size could not arrive"}},
		{name: "audience without a JWT mode", args: withBase("-jwt-audience", "api"), want: []string{"-jwt-audience needs -validate jwt, hybrid or jwt+introspect"}},
		{name: "issuers without a JWT mode", args: base, env: []string{"INTROSPECT_JWT_ISSUERS=https://as.example.com"}, want: []string{"INTROSPECT_JWT_ISSUERS needs -validate jwt, hybrid or jwt+introspect"}},
		{name: "algorithms without a JWT mode", args: base, yaml: "jwt-algs: [ES256]\n", want: []string{":1: jwt-algs needs -validate jwt, hybrid or jwt+introspect"}},
		{name: "plain JWT without a JWT mode", args: withBase("-plain-jwt"), want: []string{"-plain-jwt needs -validate jwt"}},
		{name: "size without a JWT mode", args: withBase("-max-jwt-size", "100"), want: []string{"-max-jwt-size needs -validate jwt"}},
		{name: "jwt without audience", args: []string{"-upstream", "http://h", "-validate", "jwt", "-issuer", "https://as.example.com"}, env: noSecret,
			want: []string{"-validate jwt needs -jwt-audience"}},
		{name: "jwt without issuer", args: []string{"-upstream", "http://h", "-validate", "jwt", "-jwt-audience", "api"}, env: noSecret,
			want: []string{"-validate jwt needs -issuer or -jwt-issuers"}},
		{name: "hybrid without audience", args: withBase("-validate", "hybrid", "-issuer", "https://as.example.com"), want: []string{"-validate hybrid needs -jwt-audience"}},
		{name: "hybrid without issuer", args: withBase("-validate", "hybrid", "-jwt-audience", "api"), env: []string{"INTROSPECT_VALIDATE=jwt"},
			want: []string{"-validate hybrid needs -issuer or -jwt-issuers"}},
		{name: "hybrid still introspects", args: []string{"-upstream", "http://h", "-validate", "hybrid", "-issuer", "https://as.example.com", "-jwt-audience", "api"}, env: noSecret,
			want: []string{"no client credential", "-client-id: the proxy's client ID"}},
		{name: "jwt+introspect with more issuers", args: withBase("-validate", "jwt+introspect", "-issuer", "https://as.example.com", "-jwt-audience", "api", "-jwt-issuers", "https://other.example.com"),
			want: []string{"-jwt-issuers: -validate jwt+introspect introspects each token at its issuer, -issuer: more issuers do not apply"}},
		{name: "jwt+introspect without issuer", args: withBase("-validate", "jwt+introspect", "-jwt-audience", "api"),
			want: []string{"-validate jwt+introspect needs -issuer:"}},
		{name: "audience not printable", args: []string{"-upstream", "http://h", "-validate", "jwt", "-issuer", "https://as.example.com"},
			env: append(slicesClone(noSecret), "INTROSPECT_JWT_AUDIENCE=api\tv2"), want: []string{"INTROSPECT_JWT_AUDIENCE: must be printable ASCII"}},
		{name: "audience not ASCII", args: withJWT("-jwt-audience", "api-é"), env: noSecret, want: []string{"-jwt-audience: must be printable ASCII"}},
		{name: "issuer over http", args: withJWT("-jwt-issuers", "https://ok.example.com,http://as.example.com"), env: noSecret, want: []string{`-jwt-issuers: "http://as.example.com" is not https`}},
		{name: "issuer with a query", args: withJWT("-jwt-issuers", "https://as.example.com/?tenant=a"), env: noSecret, want: []string{`-jwt-issuers: "https://as.example.com/" an issuer has no query`}},
		{name: "issuer not absolute", args: withJWT("-jwt-issuers", "as.example.com"), env: noSecret, want: []string{"-jwt-issuers:", "is not an absolute URL"}},
		{name: "HMAC algorithm", args: withJWT("-jwt-algs", "ES256,hs256"), env: noSecret, want: []string{`-jwt-algs: "hs256" is never accepted: none and HMAC prove nothing about the issuer`}},
		{name: "none algorithm", args: withJWT("-jwt-algs", "none"), env: noSecret, want: []string{`-jwt-algs: "none" is never accepted`}},
		{name: "unknown algorithm", args: withJWT("-jwt-algs", "ES999"), env: noSecret, want: []string{`-jwt-algs: "ES999" is not one of RS256`}},
		{name: "size zero", args: withJWT("-max-jwt-size", "0"), env: noSecret, want: []string{"-max-jwt-size: 0 is less than 1"}},
		{name: "size not a number", args: withJWT(), env: append(slicesClone(noSecret), "INTROSPECT_MAX_JWT_SIZE=8k"), want: []string{`INTROSPECT_MAX_JWT_SIZE: "8k" is not an integer`}},

		// -validate jwt never introspects.
		{name: "jwt with an endpoint", args: withJWT("-endpoint", "https://as.example.com/introspect"), env: noSecret, want: []string{"-endpoint: -validate jwt never introspects"}},
		{name: "jwt with a client ID", args: withJWT("-client-id", "api"), env: noSecret, want: []string{"-client-id: -validate jwt never introspects"}},
		{name: "jwt with a client secret", args: jwtBase, want: []string{"INTROSPECT_CLIENT_SECRET: -validate jwt never introspects: no client secret applies"}},
		{name: "jwt with signed answers", args: withJWT("-jwt-response"), env: noSecret, want: []string{"-jwt-response: -validate jwt never introspects"}},
		{name: "jwt with an auth method", args: jwtBase, env: noSecret, yaml: "auth-method: none\n", want: []string{":1: auth-method: -validate jwt never introspects"}},
		{name: "jwt mode from the environment", args: []string{"-upstream", "http://h", "-issuer", "https://as.example.com", "-jwt-audience", "api", "-client-id", "api"},
			env: append(slicesClone(noSecret), "INTROSPECT_VALIDATE=jwt"), want: []string{"-client-id: INTROSPECT_VALIDATE jwt never introspects"}},
		{name: "eager discovery without any issuer", args: withBase("-eager-discovery"), want: []string{"-eager-discovery needs -issuer or -jwt-issuers"}},

		// Userinfo.
		{name: "userinfo without an issuer", args: withBase("-userinfo"), want: []string{"-userinfo needs -issuer, -jwt-issuers or -userinfo-endpoint"}},
		{name: "userinfo endpoint without userinfo", args: withBase("-userinfo-endpoint", "https://as.example.com/userinfo"), want: []string{"-userinfo-endpoint needs -userinfo"}},
		{name: "best effort without userinfo", args: base, env: []string{"INTROSPECT_USERINFO_BEST_EFFORT=true"}, want: []string{"INTROSPECT_USERINFO_BEST_EFFORT needs -userinfo"}},
		{name: "userinfo endpoint over http", args: withBase("-userinfo", "-userinfo-endpoint", "http://as.example.com/userinfo"), want: []string{"-userinfo-endpoint: is not https"}},
		{name: "userinfo endpoint with user info", args: withBase("-userinfo", "-userinfo-endpoint", "https://u:pw@as.example.com/userinfo"), want: []string{"-userinfo-endpoint: must not hold user information"}},
		{name: "userinfo endpoint with several issuers", args: withJWT("-jwt-issuers", "https://other.example.com", "-userinfo", "-userinfo-endpoint", "https://as.example.com/userinfo"), env: noSecret,
			want: []string{"-userinfo-endpoint and -jwt-issuers: one userinfo endpoint would get the tokens of every issuer"}},
		{name: "userinfo not a boolean", args: withBase("-userinfo=sure"), want: []string{`-userinfo: "sure" is not true or false`}},
		{name: "userinfo claim without userinfo", args: withBase("-identity-claims", "tenant,userinfo.email"), want: []string{`-identity-claims: "userinfo.email" is a userinfo claim: it needs -userinfo`}},
		{name: "userinfo claim name", args: withBase("-issuer", "https://as.example.com", "-userinfo", "-identity-claims", "userinfo.a/b"), want: []string{`-identity-claims: "userinfo.a/b" cannot name a header`}},
		{name: "userinfo claim without a name", args: withBase("-issuer", "https://as.example.com", "-userinfo", "-identity-claims", "userinfo."), want: []string{`-identity-claims: "userinfo." cannot name a header`}},
		{name: "userinfo claims colliding", args: withBase("-issuer", "https://as.example.com", "-userinfo", "-identity-claims", "userinfo.given_name,userinfo.Given-Name"),
			want: []string{`-identity-claims: "userinfo.given_name" and "userinfo.Given-Name" give the same header, X-Auth-Userinfo-Given-Name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append(slicesClone(args), "-config", writeFile(t, "proxy.yaml", tc.yaml))
			}
			c, err := load(t, args, append(slicesClone(secretEnv), tc.env...))
			require.Error(t, err, "config: %v", c)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "pw@", "a URL's user information is not repeated")
		})
	}
}
