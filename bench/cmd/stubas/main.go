// Command stubas runs the benchmark stub authorization server (package stub)
// on loopback: introspection over https (self-signed certificate, written to
// -cert-out so clients can trust it) and over http, and the counters on an
// admin address.
//
//	stubas -https 127.0.0.1:9443 -http 127.0.0.1:9080 -admin 127.0.0.1:9090 -cert-out ca.pem -latency 5ms
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/introspect-go/introspect/bench/internal/benchutil"
	"github.com/introspect-go/introspect/bench/stub"
)

func main() {
	httpsAddr := flag.String("https", "127.0.0.1:0", "https listen address (loopback)")
	httpAddr := flag.String("http", "", "plain http listen address (loopback), empty for none")
	adminAddr := flag.String("admin", "127.0.0.1:0", "admin listen address: GET /stats, POST /reset")
	certOut := flag.String("cert-out", "", "file to write the PEM certificate to")
	clientID := flag.String("client-id", "rs", "accepted client ID")
	secret := flag.String("client-secret", "rs-secret", "accepted client secret")
	latency := flag.Duration("latency", 0, "delay before each introspection answer")
	failRate := flag.Float64("fail-rate", 0, "fraction of introspection calls answered 503")
	issuer := flag.String("issuer", "https://as.bench.test", "iss of active answers")
	flag.Parse()
	log.SetPrefix("stubas: ")
	log.SetFlags(0)

	as := stub.New(stub.Config{
		ClientID: *clientID, ClientSecret: *secret, Issuer: *issuer,
		Latency: *latency, FailRate: *failRate,
	})
	cert, certPEM, err := stub.SelfSigned()
	if err != nil {
		log.Fatal(err)
	}
	if *certOut != "" {
		if err := os.WriteFile(*certOut, certPEM, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	var servers []*http.Server
	serve := func(addr, name string, h http.Handler, tlsCfg *tls.Config) {
		ln, err := benchutil.ListenLoopback(addr)
		if err != nil {
			log.Fatal(err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsCfg}
		if h == as {
			srv.ConnState = as.ConnState
		}
		servers = append(servers, srv)
		log.Printf("%s listening on %s", name, ln.Addr())
		go func() {
			if tlsCfg != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatal(err)
			}
		}()
	}
	serve(*httpsAddr, "https", as, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if *httpAddr != "" {
		serve(*httpAddr, "http", as, nil)
	}
	serve(*adminAddr, "admin", as.AdminHandler(), nil)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
}
