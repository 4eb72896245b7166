// Command quickstart runs a protected API in front of an authorization
// server. With no flags it embeds a test authorization server
// (introspecttest), so nothing needs installing:
//
//	go run ./examples/quickstart
//
// It prints a curl command with a live token. -demo makes a set of requests
// against itself and exits 0 only if every answer was as expected. To use a
// real authorization server instead:
//
//	go run ./examples/quickstart -endpoint https://as.example.com/introspect -client-id ID -client-secret SECRET
//
// or, by discovery, with a private key and signed answers (RFC 9701):
//
//	go run ./examples/quickstart -issuer https://as.example.com -client-id ID -private-key key.pem -jwt-response
package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

type options struct {
	addr         string
	endpoint     string
	clientID     string
	clientSecret string
	demo         bool
	cache        bool
	maxTTL       time.Duration
	negativeTTL  time.Duration
	issuer       string
	authMethod   string
	privateKey   string
	jwtResponse  bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address of the protected API")
	fs.StringVar(&o.endpoint, "endpoint", "", "introspection endpoint of a real authorization server (default: an embedded test server)")
	fs.StringVar(&o.clientID, "client-id", "", "client ID at the authorization server (with -endpoint)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "client secret at the authorization server (with -endpoint)")
	fs.BoolVar(&o.demo, "demo", false, "make a set of requests against the API, print the outcomes and exit")
	fs.BoolVar(&o.cache, "cache", true, "cache verdicts in memory")
	fs.DurationVar(&o.maxTTL, "max-ttl", introspect.DefaultMaxTTL, "longest time an active verdict is cached (bounds how long a revoked token keeps working)")
	fs.DurationVar(&o.negativeTTL, "negative-ttl", introspect.DefaultNegativeTTL, "how long an inactive verdict is cached (0: never)")
	fs.StringVar(&o.issuer, "issuer", "", "issuer of a real authorization server, configured by discovery (instead of -endpoint)")
	fs.StringVar(&o.authMethod, "auth-method", "", "client authentication method, e.g. client_secret_post, client_secret_jwt, private_key_jwt (default: chosen from the credentials and the server's metadata)")
	fs.StringVar(&o.privateKey, "private-key", "", "file with the client's private key, PEM or JWK, for private_key_jwt")
	fs.BoolVar(&o.jwtResponse, "jwt-response", false, "ask for signed introspection answers (RFC 9701); needs -issuer or the embedded server")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	external := o.endpoint != "" || o.issuer != ""
	if external && (o.clientID == "" || o.clientSecret == "" && o.privateKey == "" && o.authMethod != string(introspect.None)) {
		return o, errors.New("-endpoint and -issuer need -client-id and -client-secret or -private-key")
	}
	if !external && (o.clientID != "" || o.clientSecret != "") {
		return o, errors.New("-client-id and -client-secret need -endpoint or -issuer")
	}
	if o.demo && external {
		return o, errors.New("-demo needs the embedded authorization server: leave out -endpoint and -issuer")
	}
	if o.jwtResponse && o.endpoint != "" && o.issuer == "" {
		return o, errors.New("-jwt-response needs -issuer: the keys come from discovery")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var key crypto.Signer
	var keyID string
	if o.privateKey != "" {
		data, err := os.ReadFile(o.privateKey)
		if err != nil {
			return err
		}
		if key, keyID, err = introspect.ParsePrivateKey(data); err != nil {
			return err
		}
	}

	var as *introspecttest.Server
	if o.endpoint == "" && o.issuer == "" {
		o.clientID, o.clientSecret = "quickstart-api", exampledemo.Secret()
		cl := introspecttest.Client{ID: o.clientID, Secret: o.clientSecret}
		if key != nil {
			cl.PublicKey = key.Public()
		}
		as = introspecttest.NewServer(introspecttest.WithRegisteredClient(cl))
		defer as.Close()
		if o.jwtResponse {
			o.issuer = as.Issuer // signed answers need the keys from discovery
		} else {
			o.endpoint = as.IntrospectionURL()
		}
		logger.Info("embedded authorization server started", "issuer", as.Issuer, "introspection_endpoint", as.IntrospectionURL())
	}

	opts := []introspect.Option{
		introspect.WithRealm("quickstart"),
		introspect.WithLogger(logger),
	}
	if o.issuer != "" {
		opts = append(opts, introspect.WithIssuer(o.issuer))
	}
	if o.endpoint != "" {
		opts = append(opts, introspect.WithEndpoint(o.endpoint))
	}
	if o.clientSecret != "" || key == nil {
		opts = append(opts, introspect.WithClientCredentials(o.clientID, o.clientSecret))
	}
	if key != nil {
		opts = append(opts, introspect.WithPrivateKey(o.clientID, key, keyID))
	}
	if o.authMethod != "" {
		opts = append(opts, introspect.WithAuthMethod(introspect.AuthMethod(o.authMethod)))
	}
	if o.jwtResponse {
		opts = append(opts, introspect.WithJWTResponse())
	}
	if o.cache {
		cache, err := introspect.NewLRUCache(100_000)
		if err != nil {
			return err
		}
		opts = append(opts, introspect.WithCache(cache),
			introspect.WithMaxTTL(o.maxTTL), introspect.WithNegativeTTL(o.negativeTTL))
	}
	mw, err := introspect.New(opts...)
	if err != nil {
		return err
	}
	defer mw.Close()

	return exampledemo.Serve(ctx, o.addr, routes(mw), func(base string) (bool, error) {
		logger.Info("protected API listening", "url", base, "cache", o.cache)
		if o.demo {
			return true, demo(ctx, base, as, mw, stdout)
		}
		if as != nil {
			sample := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "quickstart-app", Username: "alice", Scope: "read"})
			fmt.Fprintf(stdout, "\nA token with scope \"read\" (valid for one hour):\n\n"+
				"  curl -H 'Authorization: Bearer %s' %s/api/me\n\n"+
				"/api/admin needs scope \"admin\": the same token gets 403 there. Ctrl-C stops.\n", sample, base)
		}
		return false, nil
	})
}

// routes is the protected API: /api/me for any valid token, /api/admin for
// tokens with scope "admin".
func routes(mw *introspect.Middleware) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "introspect quickstart: try GET /api/me and GET /api/admin with a bearer token")
	})
	api := http.NewServeMux()
	api.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		writeJSON(w, map[string]any{
			"sub":       ti.Subject,
			"client_id": ti.ClientID,
			"username":  ti.Username,
			"scope":     strings.Join(ti.Scopes, " "),
			"exp":       ti.Expiry.Unix(),
		})
	})
	api.Handle("GET /api/admin", mw.RequireScope("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		writeJSON(w, map[string]any{"admin": true, "sub": ti.Subject})
	})))
	mux.Handle("/api/", mw.Handler(api))
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// demo makes requests against the API and prints each outcome, never a token.
func demo(ctx context.Context, base string, as *introspecttest.Server, mw *introspect.Middleware, out io.Writer) error {
	reader := exampledemo.Bearer(as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "quickstart-app", Scope: "read"}))
	admin := exampledemo.Bearer(as.Issue(introspecttest.Claims{Subject: "root", ClientID: "quickstart-app", Scope: "read admin"}))
	revoked := as.Issue(introspecttest.Claims{Subject: "mallory", ClientID: "quickstart-app", Scope: "read"})
	return exampledemo.Run(ctx, base, []exampledemo.Step{
		{Name: "valid token", Path: "/api/me", Auth: reader, Want: 200},
		{Name: "missing token", Path: "/api/me", Want: 401},
		{Name: "malformed header", Path: "/api/me", Auth: "Bearer not a b64token!", Want: 400},
		{Name: "unknown token", Path: "/api/me", Auth: exampledemo.Bearer("never-issued"), Want: 401},
		{Name: "token used before revocation", Path: "/api/me", Auth: exampledemo.Bearer(revoked), Want: 200},
		{Name: "revoked token", Path: "/api/me", Auth: exampledemo.Bearer(revoked), Want: 401, Before: func() error {
			as.Revoke(revoked)
			return mw.Evict(ctx, revoked) // as a revocation event handler would
		}},
		{Name: "insufficient scope", Path: "/api/admin", Auth: reader, Want: 403},
		{Name: "admin scope", Path: "/api/admin", Auth: admin, Want: 200},
	}, out)
}
