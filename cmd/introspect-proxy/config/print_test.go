package config_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
	"github.com/introspect-go/introspect/internal/printcheck"
)

// TestPrinting prints every exported type of the package, holding every
// secret the configuration can hold, under every fmt verb, log/slog and
// encoding/json: no printed form shows a secret or the private key.
func TestPrinting(t *testing.T) {
	const (
		clientSecret  = "cs9f3Kq7Lm2Xw4Rt"
		redisSecret   = "rsZ8vN1bQ6yH3kP0wE5tU7iO9aS2dF4g"
		redisPassword = "rpM3nB8vC1xZ6lK"
		nonceSecret   = "nsJ7hG2fD9sA4qW6eR1tY8uI3oP5zX0c"
		querySecret   = "qsT5rE2wQ9yU4iO"
	)
	dir := t.TempDir()
	keyPEM := ecKeyPEM(t)
	keyFile := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(keyFile, []byte(keyPEM), 0o600))
	block, _ := pem.Decode([]byte(keyPEM))
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	encKey := "MDEyMzQ1Njc4OWFiY2RlZg==" // 0123456789abcdef

	c, err := config.Load(append(slicesClone(base),
		"-endpoint", "https://as.example.com/introspect?key="+querySecret,
		"-private-key", keyFile, "-redis-addr", "127.0.0.1:6379", "-dpop-nonce-period", "1m",
		"-require-scope", "/admin=admin", "-identity-claims", "tenant"),
		[]string{
			config.EnvClientSecret + "=" + clientSecret, config.EnvRedisSecret + "=" + redisSecret,
			config.EnvRedisPassword + "=" + redisPassword, config.EnvRedisEncryptionKey + "=" + encKey,
			config.EnvDPoPNonceSecret + "=" + nonceSecret,
		}, nil)
	require.NoError(t, err)
	require.NotNil(t, c.Redis)
	_, loadErr := config.Load(append(slicesClone(base), "-redis-addr", "127.0.0.1:6379"),
		[]string{config.EnvRedisSecret + "=" + redisSecret[:10]}, nil)
	var ce *config.Error
	require.ErrorAs(t, loadErr, &ce)

	entries := map[string]printcheck.Entry{
		"Config":        {Samples: []any{c, *c}},
		"Redis":         {Samples: []any{c.Redis, *c.Redis}},
		"Secret":        {Samples: []any{c.ClientSecret, config.NewSecret(clientSecret), config.Secret{}}},
		"Error":         {Samples: []any{ce}},
		"ScopeRule":     {Samples: []any{c.ScopeRules[0]}},
		"IdentityClaim": {Samples: []any{c.IdentityClaims[0]}},
		"Ingress":       {Reason: "a name: auto, nginx, caddy, traefik or envoy"},
	}
	var bad []printcheck.Leak
	for name, v := range map[string]string{
		"client secret": clientSecret, "Redis secret": redisSecret, "Redis password": redisPassword,
		"nonce secret": nonceSecret, "secret in the endpoint's query": querySecret, "Redis secret prefix": redisSecret[:10],
	} {
		bad = append(bad, printcheck.StringForms(name, v)...)
	}
	bad = append(bad, printcheck.StringForms("encryption key", "0123456789abcdef")...)
	bad = append(bad, printcheck.KeyForms(t, "private key", parsed.(*ecdsa.PrivateKey))...)
	printcheck.Check(t, ".", entries, bad)
}
