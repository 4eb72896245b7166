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
// certFile and keyFile, padded with new lines to 1 KiB each: every pair it
// writes has files of the same sizes.
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
		b := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		b = append(b, strings.Repeat("\n", 1024-len(b))...)
		if err := os.WriteFile(f.path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsFilesOf is the reloader of a reverse-proxy configuration serving TLS
// with the files of tlsArgs (-tls-cert and the like), its log written as
// text to logs at level, with settle 0 until the test ends: two checks in
// a row put new contents in use.
func tlsFilesOf(t *testing.T, logs io.Writer, level slog.Level, tlsArgs ...string) *tlsFiles {
	t.Helper()
	args := append([]string{"-upstream", "http://127.0.0.1:1", "-endpoint", "https://as.example/introspect", "-client-id", "api"}, tlsArgs...)
	cfg, err := config.Load(args, []string{config.EnvClientSecret + "=s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	was := settle
	settle = 0
	t.Cleanup(func() { settle = was })
	return newTLSFiles(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})))
}

// serving is the common name of the certificate files serves.
func (t *tlsFiles) serving() string { return t.cur.Load().h1.Certificates[0].Leaf.Subject.CommonName }

// readBytes, writeBytes (in place), renameBytes (written aside and renamed
// over path, as a secret volume swaps its files) and removeFile are the
// test's file operations, failing it on an error.
func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func renameBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	writeBytes(t, path+".tmp", b)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// growWhileRead makes every read of path by the reloader meet the file
// growing by a new line between its read and its second look, until the
// returned function (also run when the test ends) stops it.
func growWhileRead(t *testing.T, path string) (stop func()) {
	afterRead = func(p string) {
		if p != path {
			return
		}
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = f.WriteString("\n")
		_ = f.Close()
	}
	stop = func() { afterRead = nil }
	t.Cleanup(stop)
	return stop
}

// A check finds nothing to do when no file changed, keeps the
// configuration (and so its sessions) when a file was rewritten with the
// same content, keeps it when a file is gone (logging that once however
// often it is met), and puts new contents in use once they were read the
// same at two checks settle apart: also when written in place with the
// same size and times, never when they changed while read or before they
// settled, and whatever writes the same bytes again meanwhile.
func TestTLSFilesCheck(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, "one", certFile, keyFile)
	var logs strings.Builder
	files := tlsFilesOf(t, &logs, slog.LevelDebug, "-tls-cert", certFile, "-tls-key", keyFile)
	name := files.serving
	first := files.cur.Load()

	files.check() // the first check reads the files: the same pair
	files.check()
	if files.cur.Load() != first || logs.Len() != 0 {
		t.Fatalf("the same files made a new configuration, or a log line: %q", logs.String())
	}
	renameBytes(t, certFile, readBytes(t, certFile)) // another file, the same certificate
	files.check()
	files.check()
	if files.cur.Load() != first || logs.Len() != 0 {
		t.Fatalf("a certificate written again made a new configuration, or a log line: %q", logs.String())
	}

	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	files.check()
	files.check()
	if files.cur.Load() != first || strings.Count(logs.String(), "not read again") != 1 || !strings.Contains(logs.String(), "-tls-key: ") || !strings.Contains(logs.String(), "tls.key: no such file") {
		t.Fatalf("a missing key: the configuration changed, or the log is not one line naming it: %q", logs.String())
	}
	files.loggedAt = files.loggedAt.Add(-failureRepeat)
	files.check()
	if n := strings.Count(logs.String(), "not read again"); n != 2 {
		t.Fatalf("a failure that lasts an hour: logged %d times, want 2", n)
	}

	writePair(t, "two", certFile, keyFile)
	files.check()
	if name() != "one" {
		t.Fatalf("new contents read once: serving %q", name())
	}
	files.check()
	if name() != "two" || !strings.Contains(logs.String(), "read again: new handshakes use them") {
		t.Fatalf("the new pair: serving %q, log %q", name(), logs.String())
	}
	if files.lastErr != "" {
		t.Errorf("a failure still remembered after a read: %q", files.lastErr)
	}

	// A third pair written over the second in place, the size and the
	// modification times kept.
	stats := func() (c, k os.FileInfo) {
		var err error
		if c, err = os.Stat(certFile); err == nil {
			k, err = os.Stat(keyFile)
		}
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	oldCert, oldKey := stats()
	other := t.TempDir()
	otherCert, otherKey := filepath.Join(other, "c"), filepath.Join(other, "k")
	writePair(t, "six", otherCert, otherKey)
	writeBytes(t, certFile, readBytes(t, otherCert)) // in place
	writeBytes(t, keyFile, readBytes(t, otherKey))
	if err := os.Chtimes(certFile, oldCert.ModTime(), oldCert.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(keyFile, oldKey.ModTime(), oldKey.ModTime()); err != nil {
		t.Fatal(err)
	}
	if c, k := stats(); c.Size() != oldCert.Size() || k.Size() != oldKey.Size() || !c.ModTime().Equal(oldCert.ModTime()) || !k.ModTime().Equal(oldKey.ModTime()) {
		t.Fatal("the pair written in place differs in size or time")
	}
	files.check()
	files.check()
	if name() != "six" {
		t.Fatalf("a pair written in place with the same sizes and times: serving %q", name())
	}

	// A certificate that grows while it is read.
	stopGrowing := growWhileRead(t, certFile)
	writePair(t, "seven", certFile, keyFile)
	files.check()
	files.check()
	if name() != "six" || !strings.Contains(logs.String(), "level=DEBUG msg=\"TLS certificate file changed while it was read: read at the next check\" setting=-tls-cert") {
		t.Fatalf("a file read while it changed: serving %q, log %q", name(), logs.String())
	}
	stopGrowing()
	files.check()
	files.check()
	if name() != "seven" {
		t.Fatalf("the checks after: serving %q", name())
	}

	// A chain written in two steps: its first part alone (a pair that
	// loads) is not served, only the whole chain once it settled, though
	// another writer keeps writing the same key meanwhile.
	settle = time.Hour
	writePair(t, "eight", otherCert, otherKey)
	leaf := readBytes(t, otherCert)
	third := t.TempDir()
	writePair(t, "intermediate", filepath.Join(third, "c"), filepath.Join(third, "k"))
	renameBytes(t, keyFile, readBytes(t, otherKey))
	renameBytes(t, certFile, leaf)
	files.check()
	renameBytes(t, certFile, append(append([]byte{}, leaf...), readBytes(t, filepath.Join(third, "c"))...))
	files.check()
	if name() != "seven" {
		t.Fatalf("new contents not settled: serving %q", name())
	}
	renameBytes(t, keyFile, readBytes(t, keyFile)) // the same bytes, another file and time
	files.check()
	if name() != "seven" {
		t.Fatalf("new contents read twice, less than settle apart: serving %q", name())
	}
	files.pendingAt = files.pendingAt.Add(-settle)
	renameBytes(t, keyFile, readBytes(t, keyFile))
	files.check()
	if got := files.cur.Load().h1.Certificates[0].Certificate; name() != "eight" || len(got) != 2 {
		t.Fatalf("the settled chain: serving %q with %d certificates, want eight with 2", name(), len(got))
	}

	// Contents that change at every check for an hour are worth a warning.
	files.changingSince = time.Now().Add(-failureRepeat)
	writePair(t, "nine", certFile, keyFile)
	files.check()
	if name() != "eight" || !strings.Contains(logs.String(), "the files changed at every check since ") {
		t.Fatalf("an hour of changes: serving %q, log %q", name(), logs.String())
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 3 {
		t.Errorf("%d warnings, want the 2 of the missing key and the hour of changes: a file being written is no failure", n)
	}
}

// The reloader's state through the sequences reviews found wrong: a
// failure at the first check is forgotten once the start-up contents are
// adopted; files that differ from start-up at the first check settle like
// any change, also after the files of start-up came back; contents that
// go back to those in use forget what was pending, so that the same new
// contents settle anew, and forget the last failure, so that it is logged
// again when it comes back; a read error forgets what was pending; a CA
// file that does not load is named; an hour of changes at every check is
// one warning an hour, however long it lasts; and contents that
// settled but do not load are no longer "changing".
func TestTLSFilesCheckStates(t *testing.T) {
	dir, spare := t.TempDir(), t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	writePair(t, "one", certFile, keyFile)
	writePair(t, "ca", caFile, filepath.Join(spare, "ca.key"))
	var logs strings.Builder
	files := tlsFilesOf(t, &logs, slog.LevelInfo, "-tls-cert", certFile, "-tls-key", keyFile, "-tls-client-ca", caFile)
	name := files.serving
	warnings := func() int { return strings.Count(logs.String(), "level=WARN") }
	// newWarnings is the number of warnings since the last call.
	seen := 0
	newWarnings := func() int {
		n := warnings() - seen
		seen += n
		return n
	}
	oneCert, oneKey := readBytes(t, certFile), readBytes(t, keyFile)

	// A failure at the first check, the start-up files adopted, the same
	// failure: logged twice.
	removeFile(t, keyFile)
	files.check()
	writeBytes(t, keyFile, oneKey)
	files.check()
	removeFile(t, keyFile)
	files.check()
	if n := newWarnings(); n != 2 {
		t.Fatalf("a failure at the first check, the start-up files, the failure again: %d warnings, want 2: %q", n, logs.String())
	}
	writeBytes(t, keyFile, oneKey)
	files.check()

	// Other files at the first check (of another reloader of the same
	// configuration), the start-up files at the second, the others again:
	// they settle anew.
	writePair(t, "two", certFile, keyFile)
	twoCert, twoKey := readBytes(t, certFile), readBytes(t, keyFile)
	other := newTLSFiles(files.cfg, slog.New(slog.DiscardHandler))
	other.check()
	writeBytes(t, certFile, oneCert)
	writeBytes(t, keyFile, oneKey)
	other.check()
	if !other.changingSince.IsZero() {
		t.Errorf("the start-up files adopted, still changing since %v", other.changingSince)
	}
	writeBytes(t, certFile, twoCert)
	writeBytes(t, keyFile, twoKey)
	other.check()
	if got := other.serving(); got != "one" {
		t.Fatalf("other files, read once since the start-up files were adopted: serving %q", got)
	}

	// The same here, the first check done.
	files.check()
	if name() != "one" {
		t.Fatalf("other files, read once: serving %q", name())
	}
	writeBytes(t, certFile, oneCert)
	writeBytes(t, keyFile, oneKey)
	files.check()
	writeBytes(t, certFile, twoCert)
	writeBytes(t, keyFile, twoKey)
	files.check()
	if name() != "one" {
		t.Fatalf("other files, read once since those in use came back: serving %q", name())
	}
	files.check()
	if name() != "two" {
		t.Fatalf("other files, read twice: serving %q", name())
	}

	// Three pending, then a file missing: three settles anew.
	writePair(t, "three", certFile, keyFile)
	threeCert, threeKey := readBytes(t, certFile), readBytes(t, keyFile)
	files.check()
	removeFile(t, keyFile)
	files.check()
	writeBytes(t, keyFile, threeKey)
	files.check()
	if name() != "two" {
		t.Fatalf("contents pending before a read error, read once again: serving %q", name())
	}
	files.check()
	if name() != "three" {
		t.Fatalf("the same contents at two checks: serving %q", name())
	}
	newWarnings()

	// Two while three is in use, three, two again: two settles anew.
	writeBytes(t, certFile, twoCert)
	writeBytes(t, keyFile, twoKey)
	files.check()
	writeBytes(t, certFile, threeCert)
	writeBytes(t, keyFile, threeKey)
	files.check()
	writeBytes(t, certFile, twoCert)
	writeBytes(t, keyFile, twoKey)
	files.check()
	if name() != "three" {
		t.Fatalf("contents read once since those in use came back: serving %q", name())
	}
	files.check()
	if name() != "two" {
		t.Fatalf("the same contents at two checks: serving %q", name())
	}

	// A failure, the contents in use again, the same failure: logged twice.
	removeFile(t, keyFile)
	files.check()
	writeBytes(t, keyFile, twoKey)
	files.check()
	removeFile(t, keyFile)
	files.check()
	if n := newWarnings(); n != 2 {
		t.Fatalf("a failure, a recovery, the failure again: %d warnings, want 2: %q", n, logs.String())
	}
	writeBytes(t, keyFile, twoKey)
	files.check()

	// A CA file that does not load.
	caPEM := readBytes(t, caFile)
	writeBytes(t, caFile, []byte("not PEM\n"))
	files.check()
	files.check()
	if n := newWarnings(); n != 1 || !strings.Contains(logs.String(), "error=\"-tls-client-ca: ") || !strings.Contains(logs.String(), "holds no PEM certificate") {
		t.Fatalf("a CA file that does not load: %d warnings, log %q", n, logs.String())
	}
	writeBytes(t, caFile, caPEM)
	files.check()

	// Contents that change at every check for an hour and more, the hour
	// growing between checks: one warning, and one more an hour later.
	for i, cn := range []string{"four", "five", "six", "seven", "eight"} {
		writePair(t, cn, certFile, keyFile)
		files.check()
		if i == 0 {
			files.changingSince = files.changingSince.Add(-failureRepeat)
		}
		files.changingSince = files.changingSince.Add(-time.Minute)
	}
	if n := newWarnings(); n != 1 || !strings.Contains(logs.String(), "the files changed at every check since ") {
		t.Fatalf("changes at every check for an hour, four checks on: %d warnings, want 1: %q", n, logs.String())
	}
	files.changingWarned = files.changingWarned.Add(-failureRepeat)
	writePair(t, "nine", certFile, keyFile)
	files.check()
	if n := newWarnings(); n != 1 {
		t.Fatalf("changes at every check for an hour more: %d warnings, want 1", n)
	}
	if name() != "two" {
		t.Fatalf("contents that never settled: serving %q", name())
	}

	// Settled contents that do not load: a certificate and another's key.
	writePair(t, "ten", filepath.Join(spare, "c"), filepath.Join(spare, "k"))
	writeBytes(t, certFile, readBytes(t, filepath.Join(spare, "c")))
	files.check()
	files.check()
	if n := newWarnings(); n != 1 || !strings.Contains(logs.String(), "error=\"-tls-cert, -tls-key: ") {
		t.Fatalf("a certificate and another's key: %d warnings, log %q", n, logs.String())
	}
	if !files.changingSince.IsZero() {
		t.Errorf("settled contents that do not load still count as changing since %v", files.changingSince)
	}
	writeBytes(t, keyFile, readBytes(t, filepath.Join(spare, "k")))
	files.check()
	files.check()
	if name() != "ten" {
		t.Fatalf("the pair made whole: serving %q", name())
	}
	tenCert, tenKey := readBytes(t, certFile), readBytes(t, keyFile)
	newWarnings()

	// Files switching between the contents in use and others at every
	// check (a reconciler restoring an old secret): an hour of it is a
	// warning; the contents in use at two checks in a row end it.
	writePair(t, "eleven", filepath.Join(spare, "c"), filepath.Join(spare, "k"))
	elevenCert, elevenKey := readBytes(t, filepath.Join(spare, "c")), readBytes(t, filepath.Join(spare, "k"))
	for i := range 4 {
		writeBytes(t, certFile, elevenCert)
		writeBytes(t, keyFile, elevenKey)
		files.check()
		if i == 0 {
			files.changingSince = files.changingSince.Add(-failureRepeat)
			files.changingWarned = time.Time{}
		}
		writeBytes(t, certFile, tenCert)
		writeBytes(t, keyFile, tenKey)
		files.check()
	}
	if n := newWarnings(); n != 1 || name() != "ten" {
		t.Fatalf("an hour of switching: %d warnings, want 1; serving %q", n, name())
	}
	files.check()
	if !files.changingSince.IsZero() {
		t.Errorf("the contents in use at two checks in a row: still changing since %v", files.changingSince)
	}

	// The same with a read caught mid-write between: the contents in use
	// read around it are not two checks in a row. Each round counts for
	// 20 minutes.
	files.changingWarned = time.Time{}
	for i := range 4 {
		writeBytes(t, certFile, elevenCert)
		writeBytes(t, keyFile, elevenKey)
		files.check()
		files.changingSince = files.changingSince.Add(-20 * time.Minute)
		writeBytes(t, certFile, tenCert)
		writeBytes(t, keyFile, tenKey)
		files.check()
		afterRead = func(path string) { // the same bytes, another time
			if path == keyFile {
				when := time.Now().Add(-time.Duration(i+1) * time.Hour)
				_ = os.Chtimes(path, when, when)
			}
		}
		files.check()
		afterRead = nil
		files.check()
	}
	if n := newWarnings(); n != 1 || name() != "ten" {
		t.Fatalf("an hour of switching, reads caught mid-write between: %d warnings, want 1; serving %q", n, name())
	}
	files.check()

	// A read error while contents are pending: nothing is changing any
	// more (the failure is its own warning).
	writeBytes(t, certFile, elevenCert)
	writeBytes(t, keyFile, elevenKey)
	files.check()
	removeFile(t, keyFile)
	files.check()
	if !files.changingSince.IsZero() {
		t.Errorf("after a read error: still changing since %v", files.changingSince)
	}
	writeBytes(t, keyFile, tenKey)
	writeBytes(t, certFile, tenCert)
	files.check()
	newWarnings()

	// A file that changes while it is read, at every check for an hour.
	stopGrowing := growWhileRead(t, certFile)
	files.check()
	files.changingSince = files.changingSince.Add(-failureRepeat)
	files.changingWarned = time.Time{}
	files.check()
	stopGrowing()
	if n := newWarnings(); n != 1 || !strings.Contains(logs.String(), "the files changed at every check since ") {
		t.Fatalf("a file changing while read for an hour: %d warnings, want 1", n)
	}
	if name() != "ten" {
		t.Fatalf("a file changing while read: serving %q", name())
	}
}
