package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// tlsFiles is the TLS configuration of the proxy's listener: the
// certificate of -tls-cert and -tls-key and the CAs of -tls-client-ca,
// read again when what one of their files holds changes (a certificate
// renewed in place, by cert-manager or a script). Every handshake takes
// the configuration current when it starts; a configuration read again is
// new, session tickets included (see build).
type tlsFiles struct {
	cfg *config.Config
	log *slog.Logger
	cur atomic.Pointer[tlsGen]
	// Only check touches the fields below.
	sum            [sha256.Size]byte // of the files' contents in use; zero before the first check
	pending        [sha256.Size]byte // of other contents, read at the last check
	pendingAt      time.Time         // when pending was first read
	changingSince  time.Time         // when contents other than sum were first read
	changingWarned time.Time         // when that was last logged as lasting an hour
	inUse          bool              // the last check read the contents in use
	lastErr        string            // the last failure logged
	loggedAt       time.Time         // when it was logged
}

// tlsGen is one configuration, with and without HTTP/2 in its ALPN list:
// which one a handshake gets depends on whether net/http serves HTTP/2
// (GODEBUG=http2server=0 turns it off), known once the server runs.
type tlsGen struct{ h1, h2 *tls.Config }

// notReadAgain is the log message of a failure to read the files again.
const notReadAgain = "TLS certificate files not read again: the certificate in use stays"

// failureRepeat is how often a failure that lasts is logged again.
const failureRepeat = time.Hour

// newTLSFiles is the TLS configuration of cfg, which has a certificate.
func newTLSFiles(cfg *config.Config, logger *slog.Logger) *tlsFiles {
	t := &tlsFiles{cfg: cfg, log: logger}
	t.cur.Store(t.build(cfg.TLSCertificate, cfg.TLSClientCAs))
	return t
}

// build is the configuration of one certificate and one pool of client CAs.
// Its session tickets are sealed with keys of its own (which crypto/tls
// makes and rotates), so a handshake resumes only a session of the same
// configuration: after a renewal every client sees the new certificate,
// and no session of the old configuration stands in for a handshake under
// the new CAs. Without the callbacks, tickets would be sealed with the
// keys of the server's tls.Config, which every configuration shares.
func (t *tlsFiles) build(cert *tls.Certificate, cas *x509.CertPool) *tlsGen {
	mk := func(protos ...string) *tls.Config {
		return &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*cert},
			ClientAuth:   t.cfg.TLSClientAuth,
			ClientCAs:    cas,
			NextProtos:   protos,
		}
	}
	g := &tlsGen{h1: mk("http/1.1"), h2: mk("h2", "http/1.1")}
	for _, c := range []*tls.Config{g.h1, g.h2} {
		c.WrapSession, c.UnwrapSession = g.h1.EncryptTicket, g.h1.DecryptTicket
	}
	return g
}

// config is the server's tls.Config: it hands each handshake the current
// configuration, with HTTP/2 announced when http2 reports that net/http
// serves it.
func (t *tlsFiles) config(http2 func() bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			g := t.cur.Load()
			if http2() {
				return g.h2, nil
			}
			return g.h1, nil
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

// check reads the files and, when what they hold differs from what is in
// use and has stayed the same for settle (read the same at two checks at
// least settle apart), puts it in use if the certificate and its key make a
// pair and the CA file holds certificates. Otherwise the configuration in
// use stays, a failure is logged (once, and again every hour while it
// lasts; files found changing at every check for an hour are one), and
// the next check tries again: a certificate and its key written
// one after the other load once both have settled. Waiting for the content
// to settle keeps a chain cut short by a write in progress, which still
// parses less its last certificates, from being served; a file that
// changes while it is read is read again at the next check. Settling
// looks at contents, not at the files' times: a writer that rewrites the
// same bytes (a sync loop) delays nothing.
func (t *tlsFiles) check() {
	cfg := t.cfg
	lastInUse := t.inUse
	t.inUse = false
	settings := [3]string{"tls-cert", "tls-key", "tls-client-ca"}
	var data [3][]byte
	h := sha256.New()
	for i, f := range [3]string{cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile} {
		if f == "" {
			continue
		}
		var err error
		if data[i], err = readSteady(f); errors.Is(err, errChanging) {
			t.log.Debug("TLS certificate file changed while it was read: read at the next check", "setting", cfg.Label(settings[i]))
			t.changing(time.Now())
			return
		} else if err != nil {
			// What was pending settles anew once the files read again.
			t.pending, t.changingSince = [sha256.Size]byte{}, time.Time{}
			t.fail(cfg.Label(settings[i]) + ": " + err.Error())
			return
		}
		fmt.Fprintf(h, "%d:", len(data[i]))
		h.Write(data[i])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if sum == t.sum {
		// The contents in use, at two checks in a row: nothing is changing.
		// Read between other contents (or a read caught mid-write), they
		// still are.
		if lastInUse {
			t.changingSince = time.Time{}
		}
		t.lastErr, t.pending, t.inUse = "", [sha256.Size]byte{}, true
		return
	}
	first := t.sum == [sha256.Size]byte{}
	cert, err := tls.X509KeyPair(data[0], data[1])
	var cas *x509.CertPool
	if err == nil && cfg.TLSClientCAFile != "" {
		cas, err = config.ParsePool(data[2], cfg.TLSClientCAFile)
	}
	prev := t.cur.Load().h1
	if first && err == nil && slices.EqualFunc(prev.Certificates[0].Certificate, cert.Certificate, bytes.Equal) && prev.ClientCAs.Equal(cas) {
		// What was read at start: the sessions of the configuration in use
		// go on.
		t.sum, t.lastErr, t.pending, t.changingSince, t.inUse = sum, "", [sha256.Size]byte{}, time.Time{}, true
		return
	}
	now := time.Now()
	if sum != t.pending {
		t.pending, t.pendingAt = sum, now
		t.log.Debug("TLS certificate files changed: put in use once they stay the same")
		t.changing(now)
		return
	}
	if now.Sub(t.pendingAt) < settle {
		return
	}
	t.changingSince = time.Time{} // settled, whether they load or not
	if err != nil {
		label := cfg.Label("tls-cert") + ", " + cfg.Label("tls-key")
		if cert.Certificate != nil {
			label = cfg.Label("tls-client-ca")
		}
		t.fail(label + ": " + err.Error())
		return
	}
	t.sum, t.lastErr, t.pending = sum, "", [sha256.Size]byte{}
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

// changing notes that the files were found changing at now: unsettled
// contents, or a file that changed while it was read. After an hour of
// it, that is a warning, once an hour.
func (t *tlsFiles) changing(now time.Time) {
	if t.changingSince.IsZero() {
		t.changingSince = now
	}
	if now.Sub(t.changingSince) >= failureRepeat && now.Sub(t.changingWarned) >= failureRepeat {
		t.changingWarned = now
		t.log.Warn(notReadAgain,
			"error", "the files changed at every check since "+t.changingSince.UTC().Format(time.RFC3339))
	}
}

// errChanging is a file that changed while it was read.
var errChanging = errors.New("changed while it was read")

// settle is how long new contents of the files must stay the same before
// they are put in use.
var settle = 2 * time.Second

// afterRead, when not nil, is called by readSteady between reading a file
// and checking that it did not change: tests write to it there.
var afterRead func(path string)

// readSteady reads a file the configuration names, and fails with
// errChanging when the file changed while it was read (another file, size
// or modification time).
func readSteady(path string) ([]byte, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := config.ReadFile(path, config.MaxFileSize)
	if err != nil {
		return nil, err
	}
	if afterRead != nil {
		afterRead(path)
	}
	after, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) || before.Size() != after.Size() || after.Size() != int64(len(data)) {
		return nil, errChanging
	}
	return data, nil
}

// fail logs why the files were not read again, unless it was the last
// failure logged, less than an hour ago.
func (t *tlsFiles) fail(msg string) {
	now := time.Now()
	if msg == t.lastErr && now.Sub(t.loggedAt) < failureRepeat {
		return
	}
	t.lastErr, t.loggedAt = msg, now
	t.log.Warn(notReadAgain, "error", msg)
}
