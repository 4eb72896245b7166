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
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/introspect-go/introspect"
	introspectecho "github.com/introspect-go/introspect/adapters/echo"
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

	clientID, secret := "echo-api", randomSecret()
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

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: routes(mw), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	if *demoMode {
		return demo(ctx, base, as, stdout)
	}
	sample := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	fmt.Fprintf(stdout, "API on %s. A token with scope \"read\" (valid for one hour):\n\n"+
		"  curl -H 'Authorization: Bearer %s' %s/api/me\n\n"+
		"/api/admin/users needs scope \"admin\": the same token gets 403 there. Ctrl-C stops.\n", base, sample, base)
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-served:
		return err
	}
}

// demo makes requests against the API and prints each outcome, never a token.
func demo(ctx context.Context, base string, as *introspecttest.Server, out io.Writer) error {
	reader := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	admin := as.Issue(introspecttest.Claims{Subject: "root", Scope: "read admin"})
	steps := []struct {
		name, method, path, token string
		want                      int
	}{
		{"public, no token", http.MethodGet, "/", "", 200},
		{"valid token", http.MethodGet, "/api/me", reader, 200},
		{"missing token", http.MethodGet, "/api/me", "", 401},
		{"unknown token", http.MethodGet, "/api/me", "never-issued", 401},
		{"insufficient scope", http.MethodGet, "/api/admin/users", reader, 403},
		{"admin scope", http.MethodGet, "/api/admin/users", admin, 200},
		{"admin scope, delete", http.MethodDelete, "/api/admin/users/7", admin, 204},
	}
	failed := 0
	for _, s := range steps {
		got, challenge, err := do(ctx, s.method, base+s.path, s.token)
		verdict := "ok  "
		if err != nil || got != s.want {
			verdict = "FAIL"
			failed++
		}
		line := fmt.Sprintf("%s %-20s %-6s %-19s -> %d", verdict, s.name, s.method, s.path, got)
		if challenge != "" {
			line += "  WWW-Authenticate: " + challenge
		}
		if err != nil {
			line += "  error: " + err.Error()
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(steps)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d demo requests were not answered as expected", failed, len(steps))
	}
	return nil
}

func do(ctx context.Context, method, url, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
