package proxy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// tlsPair is a TLS connection over net.Pipe, its handshake done: srv the
// proxy's side, peer the raw end of the client's side. A pipe holds no
// data: a write on srv waits for a read of peer.
func tlsPair(t *testing.T) (srv *tls.Conn, srvRaw, peer net.Conn) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	srvRaw, peer = net.Pipe()
	t.Cleanup(func() { srvRaw.Close(); peer.Close() })
	srv = tls.Server(srvRaw, &tls.Config{
		Certificates:           []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		SessionTicketsDisabled: true, // no ticket written after the handshake
	})
	cli := tls.Client(peer, &tls.Config{InsecureSkipVerify: true})
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, srvRaw, peer
}

// TestUpgradesCloseTLS checks that the shutdown closes a TLS connection
// taken over without writing to its peer: a TLS connection's own Close
// writes a close_notify first, under the lock of its writes, which a client
// reading nothing can hold for good (the replies to its TLS 1.3 key
// updates): closeAll, and so the shutdown, would wait for it.
func TestUpgradesCloseTLS(t *testing.T) {
	var u upgrades
	srv, _, peer := tlsPair(t)
	u.add()
	u.hold(srv)
	got := make(chan int, 1)
	go func() {
		n, _ := io.Copy(io.Discard, peer) // to the connection's end
		got <- int(n)
	}()
	u.closeAll()
	if n := <-got; n != 0 {
		t.Errorf("closeAll wrote %d bytes to the peer: it waits for a peer that reads nothing", n)
	}

	// A connection taken over after closeAll is closed at once, by hold.
	late, lateRaw, _ := tlsPair(t)
	u.add()
	u.hold(late)
	if err := lateRaw.SetDeadline(time.Now().Add(time.Hour)); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("a connection held after closeAll is still open when hold returns (%v)", err)
	}
	u.done(srv)
	u.done(late)
	select {
	case <-u.idle():
	default:
		t.Error("upgrades not idle after every request ended")
	}
}
