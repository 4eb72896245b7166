package proxy_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
	"github.com/introspect-go/introspect/introspecttest"
)

// With -bearer-token-file the proxy authenticates with the token in the
// file, read on each call; a file that can no longer be read fails the
// call (503), and the log says why: the path and the system's words, never
// the token.
func TestBearerTokenFile(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithRegisteredClient(introspecttest.Client{ID: "proxy-rs", Methods: []string{"bearer_token"}}))
	t.Cleanup(as.Close)
	own := as.Issue(introspecttest.Claims{Subject: "proxy-rs", ClientID: "proxy-rs"})
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(own+"\n"), 0o600))
	cfg, err := config.Load([]string{"-forward-auth", "-endpoint", as.IntrospectionURL(), "-client-id", "proxy-rs", "-bearer-token-file", file}, nil, io.Discard)
	require.NoError(t, err)
	p := serveConfig(t, cfg)

	ans := do(t, http.MethodGet, p.url+"/auth", bearer(as.Issue(introspecttest.Claims{Subject: "alice"})))
	require.Equal(t, http.StatusOK, ans.status)
	assert.Equal(t, "bearer_token", as.LastRequest().AuthMethod)

	require.NoError(t, os.Remove(file))
	require.NoError(t, os.Mkdir(file, 0o700))
	ans = do(t, http.MethodGet, p.url+"/auth", bearer(as.Issue(introspecttest.Claims{Subject: "bob"})))
	assert.Equal(t, http.StatusServiceUnavailable, ans.status)
	lines := p.logs.lines(t, "reading -bearer-token-file failed")
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0]["error"], "is not a regular file")
	assert.NotContains(t, p.logs.String(), own)
}
