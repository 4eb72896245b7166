package introspect_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	gotoken "go/token"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// Values the printing tests plant in the configuration; no printed form may
// contain them.
const (
	printSecret      = "s3cr3t-Qz7WkPn4Xc"
	printQuerySecret = "s3cr3t-query-Hv2LmB9"
	printBearer      = "s3cr3t-bearer-Ty8RdK3"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if a secret, a private key, a
// token or a cache key shows, or if printing panics. A new exported type
// fails the test until it has an entry.
func TestPrintExportedTypes(t *testing.T) {
	entries, bad := printSamples(t)
	checkPrintTable(t, exportedTypeNames(t, "."), entries, bad)
}

// printSamples builds the table of the package's exported types and the
// values their printed forms must not contain.
func printSamples(t *testing.T) (map[string]printEntry, []leak) {
	t.Helper()
	ctx := context.Background()
	jwtKey := newPrintKey(t)
	cert, certKey := newPrintCertificate(t)

	as := introspecttest.NewServer(introspecttest.WithClient("rs-secret", printSecret))
	t.Cleanup(as.Close)
	as.AddRegisteredClient(introspecttest.Client{ID: "rs-key", PublicKey: jwtKey.Public()})
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read", Audience: []string{"api"}})

	var done []introspect.IntrospectDoneInfo
	hooks := &introspect.Hooks{
		CacheMiss:      func(context.Context) {},
		IntrospectDone: func(_ context.Context, i introspect.IntrospectDoneInfo) { done = append(done, i) },
	}
	lru, err := introspect.NewLRUCache(100)
	require.NoError(t, err)
	endpoint := as.IntrospectionURL() + "?tenant=" + printQuerySecret
	newMW := func(opts ...introspect.Option) *introspect.Middleware {
		t.Helper()
		mw, err := introspect.New(opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = mw.Close() })
		return mw
	}
	newClient := func(opts ...introspect.Option) *introspect.Client {
		t.Helper()
		c, err := introspect.NewClient(opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// A middleware with a secret, a cache holding an entry, hooks and a
	// logger, after a request.
	mwSecret := newMW(introspect.WithEndpoint(endpoint), introspect.WithClientCredentials("rs-secret", printSecret),
		introspect.WithCache(lru), introspect.WithHooks(hooks), introspect.WithRealm("api"),
		introspect.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), introspect.WithStaleIfError(time.Minute))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	ti, err := mwSecret.Authenticate(req)
	require.NoError(t, err)
	key := introspect.NewCacheKey(endpoint, "rs-secret", tok)
	entry, ok, err := lru.Get(ctx, key)
	require.NoError(t, err)
	require.True(t, ok, "the cache holds the verdict")
	require.NotEmpty(t, done)

	// A middleware with a private key, discovery and signed answers, after a
	// request.
	mwKey := newMW(introspect.WithIssuer(as.Issuer), introspect.WithPrivateKey("rs-key", jwtKey, "kid-1"),
		introspect.WithJWTResponse(), introspect.WithEagerDiscovery())
	_, err = mwKey.Client().Introspect(ctx, tok)
	require.NoError(t, err)
	meta, ok := mwKey.Client().Metadata()
	require.True(t, ok)

	mwCert := newMW(introspect.WithEndpoint(endpoint), introspect.WithClientCertificate("rs-cert", cert))
	staticStore := introspect.StaticClientStore{Endpoint: endpoint,
		Credentials: introspect.Credentials{ClientID: "rs-secret", ClientSecret: printSecret}}
	mwStore := newMW(introspect.WithClientStore(staticStore), introspect.WithCache(lru), introspect.WithOptionalToken(),
		introspect.WithSkipper(func(r *http.Request) bool { return r.Method == http.MethodOptions }))
	secretFunc := func(context.Context) (string, error) { return printSecret, nil }
	clFunc := newClient(introspect.WithEndpoint(endpoint), introspect.WithClientCredentialsFunc("rs-secret", secretFunc))
	clBearer := newClient(introspect.WithEndpoint(endpoint), introspect.WithBearerCredentials("rs-bearer",
		func(context.Context) (string, error) { return printBearer, nil }))
	clJWT := newClient(introspect.WithEndpoint(endpoint), introspect.WithClientCredentials("rs-secret", printSecret),
		introspect.WithAuthMethod(introspect.ClientSecretJWT), introspect.WithAssertionSigningAlg("HS512"))

	credSecret := introspect.Credentials{ClientID: "rs-secret", ClientSecret: printSecret, AuthMethod: introspect.ClientSecretPost}
	credKey := introspect.Credentials{ClientID: "rs-key", PrivateKey: jwtKey, KeyID: "kid-1", SigningAlg: "ES256"}
	credFuncs := introspect.Credentials{ClientID: "rs-bearer", SecretFunc: secretFunc,
		AccessTokenFunc: func(context.Context) (string, error) { return printBearer, nil }}
	ccSecret := introspect.ClientContext{Endpoint: endpoint, Credentials: credSecret}
	ccKey := introspect.ClientContext{Endpoint: "https://rs:" + printSecret + "@as.example/i", Credentials: credKey}
	token := introspect.Token{Value: tok, Scheme: "Bearer", Source: introspect.SourceHeader}
	clientCopy := *mwSecret.Client()
	lruCopy := *lru
	hooksCopy := *hooks

	entries := map[string]printEntry{
		"AuthMethod": {samples: []any{introspect.PrivateKeyJWT}, reason: "a method name"},
		"BearerExtractor": {samples: []any{introspect.BearerExtractor{AllowQuery: true, MaxLength: 10}},
			reason: "limits and switches only"},
		"Cache":      {reason: "an interface: its implementations have entries of their own (LRUCache, the Redis caches)"},
		"CacheEntry": {samples: []any{entry, &entry}},
		"CacheKey":   {samples: []any{key, &key}},
		"Check":      {reason: "a function type"},
		"Client": {samples: []any{mwSecret.Client(), &clientCopy, clientCopy, mwKey.Client(), mwCert.Client(),
			mwStore.Client(), clFunc, clBearer, clJWT, (*introspect.Client)(nil), introspect.Client{}}},
		"ClientContext":   {samples: []any{ccSecret, &ccSecret, ccKey}},
		"ClientStore":     {reason: "an interface: StaticClientStore has an entry of its own"},
		"ClientStoreFunc": {reason: "a function type"},
		"Confirmation":    {samples: []any{introspect.Confirmation{X5TS256: "abc", JKT: "def"}}, reason: "thumbprints of public keys"},
		"Credentials":     {samples: []any{credSecret, &credSecret, credKey, &credKey, credFuncs}},
		"Decision": {samples: []any{introspect.Decision{Allowed: true, Status: http.StatusOK, Introspection: ti},
			introspect.Decision{Status: http.StatusUnauthorized, Err: introspect.ErrTokenExpired}},
			reason: "a status, an error and claims: no token"},
		"ErrorResponder":         {reason: "a function type"},
		"Extractor":              {reason: "an interface: BearerExtractor has an entry of its own"},
		"ExtractorFunc":          {reason: "a function type"},
		"FencedCache":            {reason: "an interface: its implementations have entries of their own"},
		"Hooks":                  {samples: []any{hooks, hooksCopy}, reason: "functions only"},
		"InactiveTokenResponder": {reason: "a function type"},
		"InsufficientScopeError": {samples: []any{&introspect.InsufficientScopeError{Scopes: []string{"admin"}}}, reason: "scope names"},
		"IntrospectDoneInfo":     {samples: []any{done[0], &done[0]}, reason: "the endpoint is redacted and errors never hold a token"},
		"Introspection":          {samples: []any{ti, *ti, entry.Introspection}, reason: "claims, meant to be logged: no token in them"},
		"LRUCache":               {samples: []any{lru, &lruCopy, lruCopy, (*introspect.LRUCache)(nil), introspect.LRUCache{}}},
		"LRUOption":              {reason: "a function type"},
		"Middleware":             {samples: []any{mwSecret, mwKey, mwCert, mwStore, (*introspect.Middleware)(nil), &introspect.Middleware{}}},
		"Option":                 {reason: "a function type"},
		"ProviderMetadata":       {samples: []any{meta, *meta}, reason: "the authorization server's public metadata"},
		"ResourceMetadata": {samples: []any{introspect.ResourceMetadata{Resource: "https://api.example",
			AuthorizationServers: []string{as.Issuer}}}, reason: "public metadata"},
		"ResponseError": {samples: []any{&introspect.ResponseError{StatusCode: 401, ErrorCode: "invalid_client",
			Description: "unknown client"}}, reason: "the authorization server's answer, sanitized"},
		"StaticClientStore": {samples: []any{staticStore, &staticStore}},
		"Token":             {samples: []any{token, &token}},
		"TokenSource":       {samples: []any{introspect.SourceQuery}, reason: "a place name"},
	}

	bad := stringForms("client secret", printSecret)
	bad = append(bad, stringForms("secret in the endpoint's query", printQuerySecret)...)
	bad = append(bad, stringForms("token", tok)...)
	bad = append(bad, stringForms("bearer credential", printBearer)...)
	bad = append(bad, keyForms(t, "client assertion key", jwtKey)...)
	bad = append(bad, keyForms(t, "client certificate key", certKey)...)
	bad = append(bad, bytesForms("cache key", key[:])...)
	return entries, bad
}

// newPrintKey returns a fresh P-256 key.
func newPrintKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// newPrintCertificate returns a self-signed client certificate and its key.
func newPrintCertificate(t *testing.T) (tls.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k := newPrintKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs-cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, k
}

// The helpers below are the same in every module's print_test.go (a module
// leaves out those it does not use).

// printEntry is what the printing test knows of one exported type: sample
// values built through the package's constructors, or the reason the type
// holds nothing to hide (an interface or a function type, say). An entry
// may have both.
type printEntry struct {
	samples []any
	reason  string
}

// leak is a value no printed form may contain. fold compares without
// regard to case (for hex, which %X prints in upper case).
type leak struct {
	name, value string
	fold        bool
}

// stringForms are the ways a secret string may show: as is, in hex (%x of
// a string) and in base64.
func stringForms(name, s string) []leak {
	return []leak{
		{name: name, value: s},
		{name: name + " in hex", value: hex.EncodeToString([]byte(s)), fold: true},
		{name: name + " in base64", value: base64.StdEncoding.EncodeToString([]byte(s))},
	}
}

// bytesForms are the ways a byte string may show: hex, base64 (standard
// and URL alphabets), and the decimal, Go-syntax and JSON forms fmt and
// encoding/json give an array of bytes.
func bytesForms(name string, b []byte) []leak {
	arr := reflect.New(reflect.ArrayOf(len(b), reflect.TypeFor[byte]())).Elem()
	reflect.Copy(arr, reflect.ValueOf(b))
	goSyntax := fmt.Sprintf("%#v", arr.Interface()) // [32]uint8{0x1, 0x2, ...}
	js, _ := json.Marshal(arr.Interface())
	return []leak{
		{name: name + " in hex", value: hex.EncodeToString(b), fold: true},
		{name: name + " in base64", value: base64.StdEncoding.EncodeToString(b)},
		{name: name + " in base64url", value: base64.RawURLEncoding.EncodeToString(b)},
		{name: name + " in decimal", value: strings.Trim(fmt.Sprint(arr.Interface()), "[]")},
		{name: name + " in Go syntax", value: strings.TrimSuffix(goSyntax[strings.Index(goSyntax, "{")+1:], "}"), fold: true},
		{name: name + " in JSON", value: strings.Trim(string(js), "[]")},
	}
}

// keyForms are the ways a private key may show: its scalar in decimal and
// hex, its JWK "d", its PKCS #8 DER in hex and base64 (the body of its PEM).
func keyForms(t *testing.T, name string, k *ecdsa.PrivateKey) []leak {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.StdEncoding.EncodeToString(der)
	if !strings.Contains(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), body[:48]) {
		t.Fatal("the PEM body is not the base64 of the DER")
	}
	d := k.D.FillBytes(make([]byte, (k.Curve.Params().BitSize+7)/8))
	out := []leak{
		{name: name + " scalar", value: k.D.String()},
		{name: name + " scalar in hex", value: k.D.Text(16), fold: true},
		{name: name + " JWK d", value: base64.RawURLEncoding.EncodeToString(d)},
		{name: name + " PEM body", value: body[:48]},
		{name: name + " DER in hex", value: hex.EncodeToString(der)[:64], fold: true},
	}
	return append(out, bytesForms(name+" scalar bytes", d)...)
}

// exportedTypeNames lists the exported types declared by the non-test Go
// files of the package in dir.
func exportedTypeNames(t *testing.T, dir string) []string {
	t.Helper()
	pkg, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	var names []string
	for _, file := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, file), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != gotoken.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					names = append(names, ts.Name.Name)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

// checkPrintTable requires an entry for every exported type and no entry
// for a type that does not exist, then prints every sample as is, as the
// exported field of a struct and as the element of a slice, where fmt walks
// it from the outside.
func checkPrintTable(t *testing.T, names []string, entries map[string]printEntry, bad []leak) {
	t.Helper()
	for _, name := range names {
		e, ok := entries[name]
		switch {
		case !ok:
			t.Errorf("exported type %s has no entry in the printing table: add samples, or the reason it holds nothing to hide", name)
		case len(e.samples) == 0 && e.reason == "":
			t.Errorf("the entry of %s has neither samples nor a reason", name)
		}
	}
	for name := range entries {
		if !slices.Contains(names, name) {
			t.Errorf("the printing table has an entry for %s, which is not an exported type of the package", name)
		}
	}
	for _, name := range names {
		for i, v := range entries[name].samples {
			t.Run(fmt.Sprintf("%s/%d %T", name, i, v), func(t *testing.T) {
				rt := reflect.TypeOf(v)
				if rt.Kind() == reflect.Pointer {
					rt = rt.Elem()
				}
				if rt.Name() != name {
					t.Fatalf("the sample is a %T, not a %s", v, name)
				}
				rv := reflect.ValueOf(v)
				st := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: rv.Type()}})).Elem()
				st.Field(0).Set(rv)
				sl := reflect.MakeSlice(reflect.SliceOf(rv.Type()), 1, 1)
				sl.Index(0).Set(rv)
				for how, w := range map[string]any{"as is": v, "in a struct": st.Interface(), "in a slice": sl.Interface()} {
					for form, out := range printedForms(w) {
						checkPrinted(t, how+", "+form, out, bad)
					}
				}
			})
		}
	}
}

// printedForms prints w with every fmt verb, with log/slog's text and JSON
// handlers and with encoding/json.
func printedForms(w any) map[string]string {
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs[verb] = fmt.Sprintf(verb, w)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", w)
	outs["slog text"] = buf.String()
	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "v", w)
	outs["slog JSON"] = buf.String()
	b, err := json.Marshal(w)
	outs["encoding/json"] = string(b)
	if err != nil {
		outs["encoding/json error"] = err.Error()
	}
	return outs
}

// checkPrinted fails if out contains a forbidden value or reports a panic
// (fmt prints a panic in Format as %!v(PANIC=...), log/slog one in LogValue
// as "LogValue panicked").
func checkPrinted(t *testing.T, form, out string, bad []leak) {
	t.Helper()
	short := out
	if len(short) > 400 {
		short = short[:400] + "..."
	}
	if strings.Contains(out, "PANIC") || strings.Contains(out, "panicked") {
		t.Errorf("%s: printing panicked: %s", form, short)
	}
	lower := strings.ToLower(out)
	for _, b := range bad {
		if strings.Contains(out, b.value) || b.fold && strings.Contains(lower, strings.ToLower(b.value)) {
			t.Errorf("%s: the %s shows: %s", form, b.name, short)
		}
	}
}

// A CacheKey prints as a pseudonym: never the key, but as distinct as the
// key, so code that names entries after fmt's form of a key (a mistake, but a
// common one) can never make one token's verdict answer for another.
func TestCacheKeyPseudonym(t *testing.T) {
	a := introspect.NewCacheKey("https://as/introspect", "rs", "token-a")
	b := introspect.NewCacheKey("https://as/introspect", "rs", "token-b")
	for _, verb := range []string{"%v", "%x", "%s", "%d", "%#v", "%X", "%q"} {
		pa, pb := fmt.Sprintf(verb, a), fmt.Sprintf(verb, b)
		if pa == pb {
			t.Errorf("%s: two keys print the same: %s", verb, pa)
		}
		if again := fmt.Sprintf(verb, a); again != pa {
			t.Errorf("%s: a key prints %s, then %s", verb, pa, again)
		}
		if strings.Contains(strings.ToLower(pa), hex.EncodeToString(a[:])) {
			t.Errorf("%s: the key shows: %s", verb, pa)
		}
	}
}
