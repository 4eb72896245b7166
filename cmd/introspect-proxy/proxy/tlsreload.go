package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// tlsFiles is the TLS configuration of the proxy's listener: the
// certificate of -tls-cert and -tls-key and the CAs of -tls-client-ca,
// read again when one of their files changes (a certificate renewed in
// place, by cert-manager or a script). Every handshake takes the
// configuration current when it starts; a configuration read again is
// new, session tickets included (see build).
type tlsFiles struct {
	cfg    *config.Config
	log    *slog.Logger
	protos []string // the ALPN protocols the server speaks
	cur    atomic.Pointer[tls.Config]
	// What the files were when last read in full; a zero stamp never
	// matches, so the first check reads them all. Only check touches it.
	stamps  [3]os.FileInfo // -tls-cert, -tls-key, -tls-client-ca
	lastErr string         // the last failure logged, not logged again
}

// newTLSFiles is the TLS configuration of cfg, which has a certificate,
// for a server speaking protos.
func newTLSFiles(cfg *config.Config, logger *slog.Logger, protos []string) *tlsFiles {
	t := &tlsFiles{cfg: cfg, log: logger, protos: protos}
	t.cur.Store(t.build(cfg.TLSCertificate, cfg.TLSClientCAs))
	return t
}

// build is the configuration of one certificate and one pool of client CAs.
// Its session tickets are sealed with keys of its own (which crypto/tls
// makes and rotates), so a handshake resumes only a session of the same
// configuration: after a renewal every client sees the new certificate,
// and no session of the old configuration stands in for a handshake under
// the new CAs. Without the two callbacks, tickets would be sealed with the
// keys of the server's tls.Config, which every configuration shares.
func (t *tlsFiles) build(cert *tls.Certificate, cas *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   t.cfg.TLSClientAuth,
		ClientCAs:    cas,
		NextProtos:   t.protos,
	}
	c.WrapSession = c.EncryptTicket
	c.UnwrapSession = c.DecryptTicket
	return c
}

// config is the server's tls.Config: it hands each handshake the current
// configuration.
func (t *tlsFiles) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: t.protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load(), nil
		},
	}
}

// watch checks the files every -tls-reload-interval until ctx ends; it
// returns at once when the interval is 0.
func (t *tlsFiles) watch(ctx context.Context) {
	if t.cfg.TLSReloadInterval <= 0 || t.cfg.TLSCertFile == "" {
		return
	}
	tick := time.NewTicker(t.cfg.TLSReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.check()
		}
	}
}

// check reads the files again when one of them changed since they were
// last read in full (another file, size or modification time), and puts
// what they hold in use when the certificate and its key make a pair and
// the CA file holds certificates. Otherwise the configuration in use stays,
// the failure is logged once, and the next check tries again: a
// certificate and its key written one after the other load at the check
// after the second.
func (t *tlsFiles) check() {
	cfg := t.cfg
	files := [3]string{cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile}
	var now [3]os.FileInfo
	changed := false
	for i, f := range files {
		if f == "" {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.fail(err.Error())
			return
		}
		now[i] = fi
		old := t.stamps[i]
		if old == nil || !os.SameFile(old, fi) || !old.ModTime().Equal(fi.ModTime()) || old.Size() != fi.Size() {
			changed = true
		}
	}
	if !changed {
		return
	}
	cert, err := config.LoadKeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		t.fail(cfg.Label("tls-cert") + ", " + cfg.Label("tls-key") + ": " + err.Error())
		return
	}
	var cas *x509.CertPool
	if cfg.TLSClientCAFile != "" {
		if cas, err = config.LoadPool(cfg.TLSClientCAFile); err != nil {
			t.fail(cfg.Label("tls-client-ca") + ": " + err.Error())
			return
		}
	}
	t.stamps, t.lastErr = now, ""
	prev := t.cur.Load()
	if sameChain(prev.Certificates[0].Certificate, cert.Certificate) && (cas == nil || prev.ClientCAs.Equal(cas)) {
		return // touched, not changed: the sessions of the configuration in use go on
	}
	t.cur.Store(t.build(&cert, cas))
	var attrs []any
	if cert.Leaf != nil {
		attrs = append(attrs, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if cas != nil {
		attrs = append(attrs, "client_cas_changed", !prev.ClientCAs.Equal(cas))
	}
	t.log.Info("TLS certificate files read again: new handshakes use them", attrs...)
}

// fail logs why the files could not be read again, unless it was the last
// failure logged.
func (t *tlsFiles) fail(msg string) {
	if msg == t.lastErr {
		return
	}
	t.lastErr = msg
	t.log.Warn("TLS certificate files not read again: the certificate in use stays", "error", msg)
}

// sameChain reports whether two certificate chains hold the same
// certificates.
func sameChain(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// serverProtocols are the protocols the proxy serves over TLS: HTTP/1.1
// and HTTP/2, as net/http does by default, HTTP/2 left out under
// GODEBUG=http2server=0; and the ALPN names that announce them.
func serverProtocols() (*http.Protocols, []string) {
	var p http.Protocols
	p.SetHTTP1(true)
	h2 := true
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "http2server="); ok {
			h2 = v != "0"
		}
	}
	if !h2 {
		return &p, []string{"http/1.1"}
	}
	p.SetHTTP2(true)
	return &p, []string{"h2", "http/1.1"}
}
