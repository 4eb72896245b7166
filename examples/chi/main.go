// Command chi serves a chi router with a public route group, a protected
// group and a scope-protected admin group, in front of an embedded test
// authorization server (introspecttest), so nothing needs installing:
//
//	cd examples/chi && go run .
//
// It prints a curl command with a live token. -demo makes a set of requests
// against itself and exits 0 only if every answer was as expected.
//
// The core middleware already has chi's shape, func(http.Handler)
// http.Handler: no adapter is needed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-chi/chi/v5"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chi:", err)
		os.Exit(1)
	}
}

// routes is the API:
//
//	GET /                     public
//	GET /api/me               any active token
//	GET /api/admin/users      scope "admin"
//	DELETE /api/admin/users/7 scope "admin"
func routes(mw *introspect.Middleware) http.Handler {
	r := chi.NewRouter()

	// Public group.
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "introspect chi example: try GET /api/me and GET /api/admin/users with a bearer token")
	})

	// Protected group: every route needs an active token.
	r.Group(func(r chi.Router) {
		r.Use(mw.Handler)
		r.Get("/api/me", func(w http.ResponseWriter, r *http.Request) {
			ti, _ := introspect.FromContext(r.Context())
			writeJSON(w, map[string]any{"sub": ti.Subject, "scope": ti.Scopes})
		})

		// Admin group: the token also needs scope "admin".
		r.With(mw.RequireScope("admin")).Route("/api/admin", func(r chi.Router) {
			r.Get("/users", func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, []string{"alice", "bob"})
			})
			r.Delete("/users/{id}", func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			})
		})
	})
	return r
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address of the API")
	demoMode := fs.Bool("demo", false, "make a set of requests against the API, print the outcomes and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}

	clientID, secret := "chi-api", exampledemo.Secret()
	as := introspecttest.NewServer(introspecttest.WithClient(clientID, secret))
	defer as.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(clientID, secret),
		introspect.WithRealm("chi-example"),
	)
	if err != nil {
		return err
	}
	defer mw.Close()

	return exampledemo.Serve(ctx, *addr, routes(mw), func(base string) (bool, error) {
		if *demoMode {
			return true, demo(ctx, base, as, stdout)
		}
		sample := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
		fmt.Fprintf(stdout, "API on %s. A token with scope \"read\" (valid for one hour):\n\n"+
			"  curl -H 'Authorization: Bearer %s' %s/api/me\n\n"+
			"/api/admin/users needs scope \"admin\": the same token gets 403 there. Ctrl-C stops.\n", base, sample, base)
		return false, nil
	})
}

// demo makes requests against the API and prints each outcome, never a token.
func demo(ctx context.Context, base string, as *introspecttest.Server, out io.Writer) error {
	reader := exampledemo.Bearer(as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"}))
	admin := exampledemo.Bearer(as.Issue(introspecttest.Claims{Subject: "root", Scope: "read admin"}))
	return exampledemo.Run(ctx, base, []exampledemo.Step{
		{Name: "public, no token", Path: "/", Want: 200},
		{Name: "valid token", Path: "/api/me", Auth: reader, Want: 200},
		{Name: "missing token", Path: "/api/me", Want: 401},
		{Name: "unknown token", Path: "/api/me", Auth: exampledemo.Bearer("never-issued"), Want: 401},
		{Name: "insufficient scope", Path: "/api/admin/users", Auth: reader, Want: 403},
		{Name: "admin scope", Path: "/api/admin/users", Auth: admin, Want: 200},
		{Name: "admin scope, delete", Method: http.MethodDelete, Path: "/api/admin/users/7", Auth: admin, Want: 204},
	}, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
