// Command echo serves an echo API protected by token introspection, in front
// of an embedded test authorization server (introspecttest), so nothing needs
// installing:
//
//	cd examples/echo && go run .
//
// It prints a curl command with a live token. -demo makes a set of requests
// against itself and exits 0 only if every answer was as expected.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/introspect-go/introspect"
	introspectecho "github.com/introspect-go/introspect/adapters/echo"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// routes is the API:
//
//	GET /                     public (skipped by the middleware)
//	GET /api/me               any active token
//	GET /api/admin/users      scope "admin"
//	DELETE /api/admin/users/7 scope "admin"
func routes(mw *introspect.Middleware) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true

	e.Use(introspectecho.AuthenticateWithConfig(mw, introspectecho.Config{
		Skipper: func(c echo.Context) bool { return c.Path() == "/" },
	}))

	e.GET("/", func(c echo.Context) error {
		return c.String(http.StatusOK, "introspect echo example: try GET /api/me and GET /api/admin/users with a bearer token\n")
	})
	e.GET("/api/me", func(c echo.Context) error {
		ti, _ := introspectecho.FromContext(c)
		return c.JSON(http.StatusOK, map[string]any{"sub": ti.Subject, "scope": ti.Scopes})
	})

	admin := e.Group("/api/admin", introspectecho.RequireScope(mw, "admin"))
	admin.GET("/users", func(c echo.Context) error {
		return c.JSON(http.StatusOK, []string{"alice", "bob"})
	})
	admin.DELETE("/users/:id", func(c echo.Context) error {
		return c.NoContent(http.StatusNoContent)
	})
	return e
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address of the API")
	demoMode := fs.Bool("demo", false, "make a set of requests against the API, print the outcomes and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}

	clientID, secret := "echo-api", exampledemo.Secret()
	as := introspecttest.NewServer(introspecttest.WithClient(clientID, secret))
	defer as.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(clientID, secret),
		introspect.WithRealm("echo-example"),
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
