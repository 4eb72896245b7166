//go:build unix

package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// Files the configuration names are read only when they are regular files
// within their size: a FIFO (which would block start-up until someone
// writes to it), a directory or an oversized file is refused at once,
// naming the setting, before its bytes are read.
func TestFilesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := func(name string, size int) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("a", size)), 0o600))
		return p
	}
	noSecret := []string{config.EnvClientSecret + "="}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"configuration file, a FIFO", append(slicesClone(base), "-config", fifo), secretEnv, []string{"-config", "is not a regular file"}},
		{"configuration file, too large", append(slicesClone(base), "-config", big("big.yaml", config.MaxFileSize+1)), secretEnv, []string{"is larger than 1048576 bytes"}},
		{"secret file, a FIFO", append(slicesClone(base), "-client-secret-file", fifo), noSecret, []string{"-client-secret-file: ", "is not a regular file"}},
		{"secret file, a directory", append(slicesClone(base), "-client-secret-file", dir), noSecret, []string{"-client-secret-file: ", "is not a regular file"}},
		{"secret file, too large", append(slicesClone(base), "-client-secret-file", big("secret", config.MaxSecretFileSize+1)), noSecret, []string{"-client-secret-file: ", "is larger than 65536 bytes"}},
		{"bearer token file, a FIFO", append(slicesClone(base), "-bearer-token-file", fifo), secretEnv, []string{"-bearer-token-file: ", "is not a regular file"}},
		{"private key, a FIFO", append(slicesClone(base), "-private-key", fifo), secretEnv, []string{"-private-key: ", "is not a regular file"}},
		{"client certificate, a FIFO", append(slicesClone(base), "-client-cert", fifo), secretEnv, []string{"-client-cert: ", "is not a regular file"}},
		{"TLS certificate, a FIFO", append(slicesClone(base), "-tls-cert", fifo, "-tls-key", fifo), secretEnv, []string{"-tls-cert, -tls-key: ", "is not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := load(t, tc.args, tc.env)
				done <- err
			}()
			select {
			case err := <-done:
				require.Error(t, err)
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w)
				}
			case <-time.After(10 * time.Second):
				// Unblock the reader, so the test can end.
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = f.Close()
				}
				t.Fatal("Load blocked on the file")
			}
		})
	}
}
