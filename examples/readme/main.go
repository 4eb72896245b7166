// Command readme holds the Go code of the README, so that the build compiles
// it and a test of the root package checks that the README shows it as it is
// here. It serves the README's protected API:
//
//	INTROSPECT_ENDPOINT=https://as.example.com/oauth2/introspect INTROSPECT_CLIENT_SECRET=... go run ./examples/readme
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/introspect-go/introspect"
)

// README: usage
func main() {
	cache, err := introspect.NewLRUCache(100_000)
	if err != nil {
		log.Fatal(err)
	}
	mw, err := introspect.New(
		introspect.WithEndpoint(os.Getenv("INTROSPECT_ENDPOINT")),
		introspect.WithClientCredentials("my-api", os.Getenv("INTROSPECT_CLIENT_SECRET")),
		introspect.WithCache(cache),
		introspect.WithRealm("my-api"),
	)
	if err != nil {
		log.Fatal(err) // what New can know is reported here: see "What New checks"
	}
	defer mw.Close()

	mux := http.NewServeMux()
	mux.Handle("/api/", mw.HandlerFunc(api))
	mux.Handle("/admin/", mw.Handler(mw.RequireScope("admin")(http.HandlerFunc(admin))))
	srv := &http.Server{
		Addr:    "127.0.0.1:8080",
		Handler: mux,
		// Timeouts: a client that announces a body and never sends it, or
		// sends its header slowly, must not hold a connection for good.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Fatal(srv.ListenAndServe())
}

func api(w http.ResponseWriter, r *http.Request) {
	ti, ok := introspect.FromContext(r.Context()) // Subject, Scopes, ClientID, Expiry, Extra, ...
	if !ok {
		// Only a handler mounted outside the middleware gets here.
		http.Error(w, "no verdict", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "hello %s (%s)\n", ti.Subject, strings.Join(ti.Scopes, " "))
}

func admin(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "welcome, admin")
}

// README: end
