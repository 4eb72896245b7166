package proxy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
	"github.com/introspect-go/introspect/internal/printcheck"
)

// TestPrinting prints the Server under every fmt verb, log/slog and
// encoding/json: no printed form shows the client secret.
func TestPrinting(t *testing.T) {
	const secret = "cs7Yh2Kd9Lq4Wz1X"
	for _, args := range [][]string{
		{"-upstream", "http://127.0.0.1:3000/base", "-endpoint", "https://as.example.com/introspect", "-client-id", "api"},
		{"-forward-auth", "-endpoint", "https://as.example.com/introspect", "-client-id", "api"},
	} {
		cfg, err := config.Load(args, []string{config.EnvClientSecret + "=" + secret}, nil)
		require.NoError(t, err)
		srv := serveConfig(t, cfg).srv
		printcheck.Check(t, ".", map[string]printcheck.Entry{"Server": {Samples: []any{srv}}}, printcheck.StringForms("client secret", secret))
	}
}
