package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// writePair writes a new self-signed certificate named cn and its key to
// certFile and keyFile.
func writePair(t *testing.T, cn, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	tmpl.Subject.CommonName = cn
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A check finds nothing to do when no file changed, keeps the
// configuration (and so its sessions) when a file was rewritten with the
// same content, keeps it when a file is gone (logging that once), and
// puts a new pair in use once it is there.
func TestTLSFilesCheck(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, "one", certFile, keyFile)
	cfg, err := config.Load([]string{"-upstream", "http://127.0.0.1:1", "-endpoint", "https://as.example/introspect", "-client-id", "api",
		"-tls-cert", certFile, "-tls-key", keyFile}, []string{config.EnvClientSecret + "=s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	files := newTLSFiles(cfg, slog.New(slog.NewTextHandler(&logs, nil)), []string{"http/1.1"})
	name := func() string { return files.cur.Load().Certificates[0].Leaf.Subject.CommonName }
	first := files.cur.Load()

	files.check() // the first check reads the files: the same pair
	files.check()
	if files.cur.Load() != first || logs.Len() != 0 {
		t.Fatalf("the same files made a new configuration, or a log line: %q", logs.String())
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(certFile+".tmp", certFile); err != nil { // another file, the same certificate
		t.Fatal(err)
	}
	files.check()
	if files.cur.Load() != first || logs.Len() != 0 {
		t.Fatalf("a certificate written again made a new configuration, or a log line: %q", logs.String())
	}

	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	files.check()
	files.check()
	if files.cur.Load() != first || strings.Count(logs.String(), "not read again") != 1 || !strings.Contains(logs.String(), "tls.key: no such file") {
		t.Fatalf("a missing key: the configuration changed, or the log is not one line naming it: %q", logs.String())
	}

	writePair(t, "two", certFile, keyFile)
	files.check()
	if name() != "two" || !strings.Contains(logs.String(), "read again: new handshakes use them") {
		t.Fatalf("the new pair: serving %q, log %q", name(), logs.String())
	}
	if files.lastErr != "" {
		t.Errorf("a failure still remembered after a read: %q", files.lastErr)
	}
}

// The protocols served over TLS are net/http's default, and what the
// handshake announces agrees with them, HTTP/2 left out under
// GODEBUG=http2server=0 as net/http leaves it out.
func TestServerProtocols(t *testing.T) {
	for _, tc := range []struct {
		godebug string
		h2      bool
	}{{"", true}, {"http2client=0", true}, {"http2server=0", false}, {"http2server=0,http2server=1", true}, {"x=1, http2server=0", false}} {
		t.Setenv("GODEBUG", tc.godebug)
		p, alpn := serverProtocols()
		want := []string{"h2", "http/1.1"}
		if !tc.h2 {
			want = want[1:]
		}
		if !p.HTTP1() || p.HTTP2() != tc.h2 || strings.Join(alpn, ",") != strings.Join(want, ",") {
			t.Errorf("GODEBUG=%q: HTTP/1 %v, HTTP/2 %v, ALPN %q; want HTTP/2 %v, ALPN %q", tc.godebug, p.HTTP1(), p.HTTP2(), alpn, tc.h2, want)
		}
	}
}
