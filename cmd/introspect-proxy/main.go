// Command introspect-proxy protects an HTTP service with OAuth 2.0 token
// introspection (RFC 7662), without a line of code in the service. It runs
// in one of two modes:
//
//   - reverse proxy (-upstream URL): it checks each request's token, then
//     passes the request to the service with the token's identity in
//     headers (X-Auth-Subject, X-Auth-Client-Id, X-Auth-Scope,
//     X-Auth-Username, X-Auth-Claim-*, X-Auth-Userinfo-* with -userinfo);
//     streams and websockets pass through;
//   - forward-auth (-forward-auth): it answers the auth requests of an
//     ingress (nginx auth_request, Caddy forward_auth, Traefik forwardAuth,
//     Envoy ext_authz) with 200 and the identity headers, or with the RFC
//     6750 401, 403 or 503 and its WWW-Authenticate challenge.
//
// For example, in front of a service on port 3000, against an
// authorization server found by discovery:
//
//	export INTROSPECT_CLIENT_SECRET=...
//	introspect-proxy -upstream http://127.0.0.1:3000 -issuer https://as.example.com -client-id my-api \
//		-require-scope '/admin=admin' -require-scope 'POST /orders=orders:write'
//
// A request must meet the -require-scope rules of every path the service
// may make of it (dot segments resolved both ways, servlet containers'
// ";params" dropped, '\' read as '/') and of every method it asks to be
// taken for (X-HTTP-Method-Override and its kin, a _method query key). A
// request target that is not a path is refused (400), and only websocket
// upgrades reach the service.
//
// With -validate jwt, the proxy validates JWT access tokens (RFC 9068)
// locally with the keys of their issuer, found by discovery, and never
// introspects; -validate hybrid introspects the tokens that are not JWTs of
// a configured issuer:
//
//	introspect-proxy -upstream http://127.0.0.1:3000 -validate jwt -issuer https://as.example.com \
//		-jwt-audience https://api.example.com
//
// Every flag is also the environment variable INTROSPECT_<NAME> and the key
// <name> of the YAML file of -config; a flag wins over a variable, which
// wins over the file. Secrets come only from the environment or from files.
// -check-config checks the configuration and exits 0 or 1; -help lists
// every setting.
//
// /healthz, /readyz and /metrics (Prometheus) are served on -ops-listen
// (127.0.0.1:9090 by default), apart from the proxied paths. Each request is
// logged as a line of JSON on stderr. SIGTERM or SIGINT drains the requests
// in flight, websockets included, for up to -shutdown-timeout, closes what
// is left, then the process exits.
//
// -listen unix:PATH serves on a unix socket, for an ingress on the same
// host (nginx: proxy_pass http://unix:PATH:/auth): created with
// -socket-mode (0660), under a lock on PATH.lock; its peers count as
// trusted proxies (-trusted-proxies holds unix by default). The garbage
// collector runs at GOGC=400 unless GOGC is set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/proxy"
)

// gcPercent is the proxy's GOGC unless the environment sets one: a
// proxy's live heap is small (its cache, its connections) and it allocates
// on every request, so Go's default of 100 runs the collector every few
// megabytes; at 400 a proxied request costs 4–14 % less CPU (measured in
// process), for a heap up to five times the live one.
const gcPercent = 400

func main() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "introspect-proxy:", err)
		os.Exit(1)
	}
}

// run is the program: args without the program's name, environ as
// os.Environ gives it. It returns when ctx is done and the proxy has shut
// down, at once for -check-config, -version and -help (flag.ErrHelp).
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, environ, stderr)
	if err != nil {
		return err
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "introspect-proxy", version())
		return nil
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	srv, err := proxy.New(cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	if cfg.CheckOnly {
		fmt.Fprintf(stdout, "introspect-proxy: the configuration is valid: %s mode, %s validation, scope rules: %d\n", cfg.Mode(), cfg.Validation, len(cfg.ScopeRules))
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stdout, "introspect-proxy: warning:", w)
		}
		return nil
	}

	ln, err := listen(cfg.Listen, cfg.SocketMode)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Label("listen"), err)
	}
	var ops net.Listener
	opsAddr := "off"
	if cfg.OpsListen != "" {
		if ops, err = listen(cfg.OpsListen, cfg.SocketMode); err != nil {
			ln.Close()
			return fmt.Errorf("%s: %w", cfg.Label("ops-listen"), err)
		}
		opsAddr = ops.Addr().String()
	}
	logger.Info("listening", "mode", cfg.Mode(), "addr", ln.Addr().String(), "ops_addr", opsAddr,
		"tls", cfg.TLSCertificate != nil, "version", version())
	return srv.Serve(ctx, ln, ops)
}

// listen listens on addr: host:port, or unix:PATH for a unix socket (see
// listenUnix) whose file gets mode.
func listen(addr string, mode os.FileMode) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, config.UnixPrefix); ok {
		return listenUnix(path, mode)
	}
	return net.Listen("tcp", addr)
}

// version is the module version the binary was built from, "(devel)" for a
// build in the repository.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
