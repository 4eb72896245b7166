// Command quickstart runs a protected API in front of an authorization
// server. With no flags it embeds a test authorization server
// (introspecttest), so nothing needs installing:
//
//	go run ./examples/quickstart
//
// It prints a curl command with a live token. -demo makes a set of requests
// against itself and exits 0 only if every answer was as expected. To use a
// real authorization server instead, name its introspection endpoint
// (-endpoint) or its issuer (-issuer, configured by discovery), the API's
// client ID, and a credential:
//
//	export INTROSPECT_CLIENT_SECRET=...   # or -client-secret-file FILE
//	go run ./examples/quickstart -endpoint https://as.example.com/introspect -client-id ID
//
// or, by discovery, with a private key and signed answers (RFC 9701):
//
//	go run ./examples/quickstart -issuer https://as.example.com -client-id ID -private-key key.pem -jwt-response
//
// # Where the credential comes from
//
// The client secret is read from the environment variable
// INTROSPECT_CLIENT_SECRET, or from the file named by -client-secret-file
// (one line; its line ending is dropped), or from -client-secret. Prefer the
// first two: a flag's value shows in the process list (ps) to every user of
// the machine and stays in the shell's history. A flag or a file wins over
// the environment. Instead of a secret, or besides it:
//
//   - -private-key FILE: a private key (PEM or JWK) for private_key_jwt;
//   - -client-cert FILE and -client-key FILE: a client certificate and its
//     key (PEM; one file may hold both) for tls_client_auth or
//     self_signed_tls_client_auth (RFC 8705);
//   - -bearer-token-file FILE: an access token of the API's own, sent as a
//     bearer credential; the file is read again on every call to the server,
//     so a process that refreshes it is picked up;
//   - -auth-method none: a public client, the client ID alone.
//
// Without -auth-method the method is chosen from the credentials and the
// server's metadata (see introspect.AuthMethod). The other
// client-authentication flags:
//
//   - -assertion-audience: the "aud" of client_secret_jwt and
//     private_key_jwt assertions; default the issuer with -issuer and the
//     endpoint URL with -endpoint (some servers accept only their endpoint
//     URL, or their token endpoint URL);
//   - -assertion-alg: the "alg" of those assertions (HS256 for a secret,
//     RS256, PS256, ES256, EdDSA ... for a key);
//   - -raw-basic-auth: send the client_secret_basic credentials without the
//     RFC 6749 form-encoding, for servers that do not form-decode them (a
//     secret with '+', '/', '=', '%' or ':' is refused otherwise);
//   - -jwt-response-algs: with -jwt-response, the signature algorithms
//     accepted for signed answers, for a server whose metadata does not list
//     them (comma-separated, such as PS256,ES256; none and HMAC are refused).
//
// With the embedded server (no -endpoint nor -issuer) the client ID and
// secret are its own: INTROSPECT_CLIENT_SECRET is ignored, and -client-id,
// -client-secret, -client-secret-file and -bearer-token-file are refused.
// -private-key and -client-cert register the key or certificate there
// (-client-cert makes it serve https), -raw-basic-auth makes it a server
// that does not form-decode, and -demo ends by naming the method the
// embedded server saw.
//
// # JWT access tokens
//
// -validate chooses how tokens are validated: introspect (the default: the
// server is asked about every token, through the cache), jwt (JWT access
// tokens, RFC 9068, validated locally against the issuer's keys; the server
// is never asked, and no client credentials are needed), hybrid (JWTs of
// the issuer locally, every other token by introspection) or
// jwt+introspect (both, to see a revocation at once). Every mode but
// introspect needs -issuer (or the embedded server) and -jwt-audience, the
// identifier of this API that a JWT must name in its "aud" (default with
// the embedded server: https://api.quickstart.example). With the embedded
// server the tokens of -demo and of the sample curl are then JWTs (hybrid
// adds JWTs to its opaque tokens), and -demo also sends JWTs for another
// audience, expired and unsigned.
//
// # Userinfo
//
// -userinfo loads the OpenID Connect userinfo claims of each accepted token
// from the issuer's userinfo_endpoint (introspect.WithUserinfo) and adds
// them to the answer of /api/me under "userinfo". It needs -issuer or the
// embedded server, which answers sub, name and email for its tokens. A
// token bound to a DPoP key is not sent there: its /api/me answer has no
// userinfo. A revoked JWT access token, which local validation alone would
// accept until its exp, is then refused by the userinfo endpoint.
package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
)

// secretEnv is the environment variable holding the client secret.
const secretEnv = "INTROSPECT_CLIENT_SECRET"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

type options struct {
	addr              string
	endpoint          string
	clientID          string
	clientSecret      string
	clientSecretFile  string
	demo              bool
	cache             bool
	maxTTL            time.Duration
	negativeTTL       time.Duration
	issuer            string
	authMethod        string
	privateKey        string
	assertionAudience string
	assertionAlg      string
	clientCert        string
	clientKey         string
	bearerTokenFile   string
	rawBasicAuth      bool
	jwtResponse       bool
	jwtResponseAlgs   string
	dpop              introspect.DPoPMode
	validate          introspect.ValidationMode
	jwtAudience       string
	userinfo          bool
}

// embeddedResource is the API's identifier with the embedded server.
const embeddedResource = "https://api.quickstart.example"

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address of the protected API")
	fs.StringVar(&o.endpoint, "endpoint", "", "introspection endpoint of a real authorization server (default: an embedded test server)")
	fs.StringVar(&o.issuer, "issuer", "", "issuer of a real authorization server, configured by discovery (instead of -endpoint)")
	fs.StringVar(&o.clientID, "client-id", "", "client ID at the authorization server (with -endpoint or -issuer)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "client secret (visible in ps and the shell history: prefer $"+secretEnv+" or -client-secret-file)")
	fs.StringVar(&o.clientSecretFile, "client-secret-file", "", "file holding the client secret (default: $"+secretEnv+")")
	fs.StringVar(&o.authMethod, "auth-method", "", "client authentication method, e.g. client_secret_post, client_secret_jwt, private_key_jwt, tls_client_auth, none (default: chosen from the credentials and the server's metadata)")
	fs.StringVar(&o.privateKey, "private-key", "", "file with the client's private key, PEM or JWK, for private_key_jwt")
	fs.StringVar(&o.assertionAudience, "assertion-audience", "", "\"aud\" of client assertions (default: the issuer with -issuer, the endpoint URL with -endpoint)")
	fs.StringVar(&o.assertionAlg, "assertion-alg", "", "\"alg\" of client assertions (default: HS256 for a secret, RS256 for RSA, ES256/384/512 by curve, EdDSA)")
	fs.StringVar(&o.clientCert, "client-cert", "", "file with the client certificate (PEM) for tls_client_auth or self_signed_tls_client_auth")
	fs.StringVar(&o.clientKey, "client-key", "", "file with the private key of -client-cert (PEM; default: the -client-cert file)")
	fs.StringVar(&o.bearerTokenFile, "bearer-token-file", "", "file holding an access token of the API's own, sent as a bearer credential; read on every call")
	fs.BoolVar(&o.rawBasicAuth, "raw-basic-auth", false, "send client_secret_basic credentials without form-encoding, for servers that do not form-decode them")
	fs.BoolVar(&o.jwtResponse, "jwt-response", false, "ask for signed introspection answers (RFC 9701); needs -issuer or the embedded server")
	fs.StringVar(&o.jwtResponseAlgs, "jwt-response-algs", "", "with -jwt-response, comma-separated signature algorithms to accept, for a server that does not list them (default: the server's list, else RS256)")
	fs.Func("dpop", "DPoP-bound tokens (RFC 9449): off, allowed (Bearer and DPoP) or required (DPoP only) (default allowed)", func(s string) error {
		m, err := introspect.ParseDPoPMode(s)
		o.dpop = m
		return err
	})
	fs.Func("validate", "how tokens are validated: introspect, jwt (JWT access tokens validated locally), hybrid (JWTs of the issuer locally, others by introspection) or jwt+introspect (default introspect)", func(s string) error {
		m, err := introspect.ParseValidationMode(s)
		o.validate = m
		return err
	})
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "with -validate other than introspect, the identifier of this API, which a JWT access token must name in its \"aud\" (default with the embedded server: "+embeddedResource+")")
	fs.BoolVar(&o.userinfo, "userinfo", false, "load the OpenID Connect userinfo claims of each token into /api/me's answer (the issuer's userinfo_endpoint); needs -issuer or the embedded server")
	fs.BoolVar(&o.demo, "demo", false, "make a set of requests against the API, print the outcomes and exit")
	fs.BoolVar(&o.cache, "cache", true, "cache verdicts in memory")
	fs.DurationVar(&o.maxTTL, "max-ttl", introspect.DefaultMaxTTL, "longest time an active verdict is cached (bounds how long a revoked token keeps working)")
	fs.DurationVar(&o.negativeTTL, "negative-ttl", introspect.DefaultNegativeTTL, "how long an inactive verdict is cached (0: never)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	external := o.endpoint != "" || o.issuer != ""
	localOnly := o.validate == introspect.ValidateJWT
	switch {
	case o.jwtAudience != "" && o.validate == introspect.ValidateIntrospect:
		return o, errors.New("-jwt-audience needs -validate jwt, hybrid or jwt+introspect")
	case o.validate != introspect.ValidateIntrospect && o.endpoint != "":
		return o, errors.New("-validate " + o.validate.String() + " needs -issuer (the keys come from discovery), not -endpoint")
	case o.validate != introspect.ValidateIntrospect && external && o.jwtAudience == "":
		return o, errors.New("-validate " + o.validate.String() + " needs -jwt-audience: the identifier a JWT access token must name in its \"aud\"")
	case localOnly && (o.clientID != "" || o.clientSecret != "" || o.clientSecretFile != "" || o.privateKey != "" ||
		o.clientCert != "" || o.bearerTokenFile != "" || o.authMethod != "" || o.jwtResponse):
		return o, errors.New("-validate jwt never introspects: leave out -client-id, the credentials, -auth-method and -jwt-response")
	}
	if o.jwtAudience == "" && o.validate != introspect.ValidateIntrospect {
		o.jwtAudience = embeddedResource
	}
	if o.clientSecret != "" && o.clientSecretFile != "" {
		return o, errors.New("give the client secret once: -client-secret or -client-secret-file")
	}
	if !external && (o.clientID != "" || o.clientSecret != "" || o.clientSecretFile != "") {
		return o, errors.New("-client-id, -client-secret and -client-secret-file need -endpoint or -issuer")
	}
	if !external && o.bearerTokenFile != "" {
		return o, errors.New("-bearer-token-file needs -endpoint or -issuer: the token must come from that server")
	}
	if o.clientKey != "" && o.clientCert == "" {
		return o, errors.New("-client-key needs -client-cert")
	}
	if o.clientSecretFile != "" {
		data, err := os.ReadFile(o.clientSecretFile)
		if err != nil {
			return o, fmt.Errorf("-client-secret-file: %w", err)
		}
		o.clientSecret = strings.TrimRight(string(data), "\r\n")
		if o.clientSecret == "" {
			return o, errors.New("-client-secret-file: the file is empty")
		}
	} else if o.clientSecret == "" && external && !localOnly {
		o.clientSecret = os.Getenv(secretEnv)
	}
	hasCredential := o.clientSecret != "" || o.privateKey != "" || o.clientCert != "" || o.bearerTokenFile != "" ||
		o.authMethod == string(introspect.None)
	if external && !localOnly && (o.clientID == "" || !hasCredential) {
		return o, errors.New("-endpoint and -issuer need -client-id and a credential: a client secret ($" + secretEnv +
			", -client-secret-file or -client-secret), -private-key, -client-cert, -bearer-token-file, or -auth-method none")
	}
	if o.demo && external {
		return o, errors.New("-demo needs the embedded authorization server: leave out -endpoint and -issuer")
	}
	if o.jwtResponse && o.endpoint != "" && o.issuer == "" {
		return o, errors.New("-jwt-response needs -issuer: the keys come from discovery")
	}
	if o.userinfo && o.endpoint != "" && o.issuer == "" {
		return o, errors.New("-userinfo needs -issuer: the userinfo_endpoint comes from discovery")
	}
	if o.jwtResponseAlgs != "" && !o.jwtResponse {
		return o, errors.New("-jwt-response-algs needs -jwt-response")
	}
	return o, nil
}

// loadClientCert reads the client certificate and its key (PEM).
func loadClientCert(certFile, keyFile string) (*tls.Certificate, error) {
	if keyFile == "" {
		keyFile = certFile
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("-client-cert: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("-client-cert: %w", err)
		}
	}
	return &cert, nil
}

// bearerToken returns the token source of -bearer-token-file: the file's
// content, read on each call so a refreshed token is picked up.
func bearerToken(file string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(data)), nil
	}
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
	var cert *tls.Certificate
	if o.clientCert != "" {
		if cert, err = loadClientCert(o.clientCert, o.clientKey); err != nil {
			return err
		}
	}
	if o.bearerTokenFile != "" {
		// Read once now, so a missing file stops the start rather than
		// failing every request.
		tok, err := bearerToken(o.bearerTokenFile)(ctx)
		if err != nil {
			return fmt.Errorf("-bearer-token-file: %w", err)
		}
		if tok == "" {
			return errors.New("-bearer-token-file: the file is empty")
		}
	}

	opts := []introspect.Option{
		introspect.WithRealm("quickstart"),
		introspect.WithLogger(logger),
	}
	var as *introspecttest.Server
	if o.endpoint == "" && o.issuer == "" {
		// The embedded server's secret holds characters that form-encoding
		// changes, so it tells whether the Basic credentials are encoded.
		o.clientID, o.clientSecret = "quickstart-api", exampledemo.Secret()+"+/=:%"
		cl := introspecttest.Client{ID: o.clientID, Secret: o.clientSecret}
		var asOpts []introspecttest.Option
		if key != nil {
			cl.PublicKey = key.Public()
		}
		if cert != nil {
			cl.Certificate = cert.Leaf
			asOpts = append(asOpts, introspecttest.WithTLS())
		}
		asOpts = append(asOpts, introspecttest.WithRegisteredClient(cl))
		if o.rawBasicAuth {
			asOpts = append(asOpts, introspecttest.WithoutBasicFormDecoding())
		}
		as = introspecttest.NewServer(asOpts...)
		defer as.Close()
		if cert != nil {
			opts = append(opts, introspect.WithHTTPClient(as.HTTPClient())) // trusts its certificate
		}
		if o.jwtResponse || o.validate != introspect.ValidateIntrospect || o.userinfo {
			// Signed answers and JWTs need the keys from discovery, userinfo
			// its endpoint.
			o.issuer = as.Issuer
		} else {
			o.endpoint = as.IntrospectionURL()
		}
		logger.Info("embedded authorization server started", "issuer", as.Issuer, "introspection_endpoint", as.IntrospectionURL())
	}

	if o.issuer != "" {
		opts = append(opts, introspect.WithIssuer(o.issuer))
	}
	if o.endpoint != "" {
		opts = append(opts, introspect.WithEndpoint(o.endpoint))
	}
	switch {
	case o.validate == introspect.ValidateJWT:
		// Nothing is introspected: no client credentials.
	case o.clientSecret != "":
		opts = append(opts, introspect.WithClientCredentials(o.clientID, o.clientSecret))
	case key == nil && cert == nil && o.bearerTokenFile == "":
		opts = append(opts, introspect.WithClientCredentials(o.clientID, "")) // a public client
	}
	if key != nil && o.validate != introspect.ValidateJWT {
		opts = append(opts, introspect.WithPrivateKey(o.clientID, key, keyID))
	}
	if cert != nil && o.validate != introspect.ValidateJWT {
		opts = append(opts, introspect.WithClientCertificate(o.clientID, *cert))
	}
	if o.bearerTokenFile != "" {
		opts = append(opts, introspect.WithBearerCredentials(o.clientID, bearerToken(o.bearerTokenFile)))
	}
	if o.authMethod != "" {
		opts = append(opts, introspect.WithAuthMethod(introspect.AuthMethod(o.authMethod)))
	}
	if o.assertionAudience != "" {
		opts = append(opts, introspect.WithAssertionAudience(o.assertionAudience))
	}
	if o.assertionAlg != "" {
		opts = append(opts, introspect.WithAssertionSigningAlg(o.assertionAlg))
	}
	if o.rawBasicAuth {
		opts = append(opts, introspect.WithRawBasicAuth())
	}
	if o.jwtResponse {
		opts = append(opts, introspect.WithJWTResponse())
	}
	if o.jwtResponseAlgs != "" {
		algs := strings.Split(o.jwtResponseAlgs, ",")
		for i := range algs {
			algs[i] = strings.TrimSpace(algs[i])
		}
		opts = append(opts, introspect.WithJWTResponseAlgorithms(algs...))
	}
	opts = append(opts, introspect.WithDPoP(o.dpop))
	if o.userinfo {
		opts = append(opts, introspect.WithUserinfo())
	}
	if o.validate != introspect.ValidateIntrospect {
		opts = append(opts, introspect.WithValidation(o.validate), introspect.WithJWTAudience(o.jwtAudience))
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
		logger.Info("protected API listening", "url", base, "cache", o.cache, "validate", o.validate.String(), "userinfo", o.userinfo)
		if o.demo {
			return true, demo(ctx, base, as, mw, o, stdout)
		}
		if as != nil {
			sample := issuer(as, o)(introspecttest.Claims{Subject: "alice", ClientID: "quickstart-app", Username: "alice", Scope: "read", Extra: profile("alice")})
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
		me := map[string]any{
			"sub":       ti.Subject,
			"client_id": ti.ClientID,
			"username":  ti.Username,
			"scope":     strings.Join(ti.Scopes, " "),
			"exp":       ti.Expiry.Unix(),
			"validated": ti.Source.String(),
		}
		if ti.Userinfo != nil { // -userinfo
			me["userinfo"] = ti.Userinfo
		}
		writeJSON(w, me)
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

// profile is what the embedded server's userinfo endpoint answers for the
// tokens of the demo and the sample, besides sub.
func profile(name string) map[string]any {
	return map[string]any{"name": strings.ToUpper(name[:1]) + name[1:], "email": name + "@quickstart.example"}
}

// issuer returns how the embedded server issues the tokens of the demo and
// the sample: JWT access tokens for the API's resource when they are
// validated locally only (jwt, jwt+introspect), opaque tokens otherwise
// (hybrid introspects them, and the demo adds JWTs).
func issuer(as *introspecttest.Server, o options) func(introspecttest.Claims) string {
	switch o.validate {
	case introspect.ValidateJWT, introspect.ValidateJWTAndIntrospect:
		return func(c introspecttest.Claims) string {
			c.Audience = []string{o.jwtAudience}
			return as.IssueJWT(c)
		}
	}
	return as.Issue
}

// demo makes requests against the API and prints each outcome, never a token.
func demo(ctx context.Context, base string, as *introspecttest.Server, mw *introspect.Middleware, o options, out io.Writer) error {
	mode := o.dpop
	issue := issuer(as, o)
	reader := exampledemo.Bearer(issue(introspecttest.Claims{Subject: "alice", ClientID: "quickstart-app", Scope: "read", Extra: profile("alice")}))
	admin := exampledemo.Bearer(issue(introspecttest.Claims{Subject: "root", ClientID: "quickstart-app", Scope: "read admin"}))
	revoked := issue(introspecttest.Claims{Subject: "mallory", ClientID: "quickstart-app", Scope: "read"})
	key, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		return err
	}
	bound := issue(key.Bind(introspecttest.Claims{Subject: "dora", ClientID: "quickstart-app", Scope: "read"}))
	proof := func(method, url string) string { return key.Proof(method, url, bound) }
	// What each mode answers: a Bearer token, and a DPoP-bound token with
	// its proof and presented as Bearer.
	bearerWant, dpopWant := 200, 200
	switch mode {
	case introspect.DPoPRequired:
		bearerWant = 401
	case introspect.DPoPOff:
		dpopWant = 401
	}
	dpopSteps := []exampledemo.Step{
		{Name: "DPoP-bound token, proof", Path: "/api/me", Auth: "DPoP " + bound, Proof: proof, Want: dpopWant},
		{Name: "DPoP-bound, bearer scheme", Path: "/api/me", Auth: exampledemo.Bearer(bound), Want: 401},
		{Name: "DPoP proof for another URL", Path: "/api/me", Auth: "DPoP " + bound,
			Proof: func(method, _ string) string { return key.Proof(method, base+"/api/admin", bound) }, Want: 401},
	}
	if mode == introspect.DPoPRequired {
		steps := append([]exampledemo.Step{{Name: "bearer scheme, DPoP required", Path: "/api/me", Auth: reader, Want: bearerWant}}, dpopSteps...)
		return exampledemo.Run(ctx, base, steps, out)
	}
	// A JWT validated locally only stays valid until its exp: revocation
	// reaches it only through introspection.
	revokedWant := 401
	revokedName := "revoked token"
	switch {
	case o.validate == introspect.ValidateJWT && o.userinfo:
		revokedName = "revoked JWT (userinfo refuses it)"
	case o.validate == introspect.ValidateJWT:
		revokedWant, revokedName = 200, "revoked JWT (local: until exp)"
	}
	steps := []exampledemo.Step{
		{Name: "valid token", Path: "/api/me", Auth: reader, Want: 200},
		{Name: "missing token", Path: "/api/me", Want: 401},
		{Name: "malformed header", Path: "/api/me", Auth: "Bearer not a b64token!", Want: 400},
		{Name: "unknown token", Path: "/api/me", Auth: exampledemo.Bearer("never-issued"), Want: 401},
		{Name: "token used before revocation", Path: "/api/me", Auth: exampledemo.Bearer(revoked), Want: 200},
		{Name: revokedName, Path: "/api/me", Auth: exampledemo.Bearer(revoked), Want: revokedWant, Before: func() error {
			as.Revoke(revoked)
			return mw.Evict(ctx, revoked) // as a revocation event handler would
		}},
		{Name: "insufficient scope", Path: "/api/admin", Auth: reader, Want: 403},
		{Name: "admin scope", Path: "/api/admin", Auth: admin, Want: 200},
	}
	if o.validate != introspect.ValidateIntrospect {
		steps = append(steps, jwtSteps(as, o.jwtAudience)...)
	}
	if err = exampledemo.Run(ctx, base, append(steps, dpopSteps...), out); err != nil {
		return err
	}
	if o.userinfo {
		if err := showUserinfo(ctx, base, reader, out); err != nil {
			return err
		}
	}
	if o.validate == introspect.ValidateJWT {
		fmt.Fprintf(out, "The API validated every token locally: the embedded server was asked %d times.\n", as.Calls())
		return nil
	}
	fmt.Fprintf(out, "The embedded server authenticated the API by %s.\n", as.LastRequest().AuthMethod)
	return nil
}

// jwtSteps are the demo's JWT access tokens: a good one, and ones the local
// validator refuses.
func jwtSteps(as *introspecttest.Server, resource string) []exampledemo.Step {
	claims := func() introspecttest.Claims {
		return introspecttest.Claims{Subject: "jay", ClientID: "quickstart-app", Scope: "read", Audience: []string{resource}}
	}
	good := as.IssueJWT(claims())
	other := claims()
	other.Audience = []string{"https://another-api.example"}
	expired := claims()
	expired.Expiry = time.Now().Add(-time.Hour)
	unsigned := as.IssueJWTFunc(claims(), func(h, _ map[string]any) { h["alg"] = "none" })
	return []exampledemo.Step{
		{Name: "JWT access token", Path: "/api/me", Auth: exampledemo.Bearer(good), Want: 200},
		{Name: "JWT for another audience", Path: "/api/me", Auth: exampledemo.Bearer(as.IssueJWT(other)), Want: 401},
		{Name: "expired JWT", Path: "/api/me", Auth: exampledemo.Bearer(as.IssueJWT(expired)), Want: 401},
		{Name: "unsigned JWT (alg none)", Path: "/api/me", Auth: exampledemo.Bearer(unsigned), Want: 401},
	}
}

// showUserinfo asks /api/me with auth and prints the names of the userinfo
// claims of its answer (never their values, nor the token).
func showUserinfo(ctx context.Context, base, auth string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/me", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var me struct {
		Userinfo map[string]json.RawMessage `json:"userinfo"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&me); err != nil {
		return fmt.Errorf("/api/me: %w", err)
	}
	if len(me.Userinfo) == 0 {
		return errors.New("/api/me: no userinfo claims")
	}
	fmt.Fprintf(out, "/api/me carried the userinfo claims %s.\n", strings.Join(slices.Sorted(maps.Keys(me.Userinfo)), ", "))
	return nil
}
