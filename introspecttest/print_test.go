package introspecttest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// Values the printing test plants in the server; no printed form may
// contain them.
const (
	printSecret     = "s3cr3t-Qz7WkPn4Xc"
	printHMACSecret = "s3cr3t-hmac-Lp5Nw"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if a client secret, a private
// key or an issued token shows, or if printing panics. A new exported type
// fails the test until it has an entry.
func TestPrintExportedTypes(t *testing.T) {
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	answerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs-cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, clientKey.Public(), clientKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	registered := introspecttest.Client{ID: "rs-all", Secret: printSecret, Methods: []string{"client_secret_post", "private_key_jwt"},
		PublicKey: clientKey.Public(), Certificate: cert}
	srv := introspecttest.NewServer(introspecttest.WithClient("rs", printSecret), introspecttest.WithRegisteredClient(registered))
	t.Cleanup(srv.Close)
	tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "read", Confirmation: map[string]string{"jkt": "abc"}})
	resp, err := http.PostForm(srv.IntrospectionURL(), url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {printSecret}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	last := srv.LastRequest()
	signer, _ := srv.SigningKey()
	serverKey, ok := signer.(*ecdsa.PrivateKey)
	require.True(t, ok, "the server signs with an EC key")

	claims := introspecttest.Claims{Subject: "alice", Scope: "read", Extra: map[string]any{"tenant": "t1"}}
	withKey := &introspecttest.SignedAnswer{Header: map[string]any{"typ": "token-introspection+jwt"},
		Claims: map[string]any{"iss": srv.Issuer, "token_introspection": map[string]any{"active": true}}, Alg: "ES256", Key: answerKey}
	withHMAC := introspecttest.SignedAnswer{Alg: "HS256", Key: []byte(printHMACSecret), Body: "x.y.z"}
	fault := introspecttest.Latency(time.Millisecond)

	entries := map[string]printEntry{
		"AssertionInfo": {samples: []any{last.Assertion, introspecttest.AssertionInfo{Alg: "ES256", KeyID: "k", JWTID: "j"}},
			reason: "what an assertion said, without its signature"},
		"Claims":       {samples: []any{claims, &claims}, reason: "the claims of a token to issue, not the token"},
		"Client":       {samples: []any{registered, &registered, introspecttest.Client{ID: "rs", Secret: printSecret}}},
		"Fault":        {samples: []any{fault, &fault}, reason: "a name and functions"},
		"Option":       {reason: "a function type"},
		"Request":      {samples: []any{last, &last}, reason: "the last request, without the token or the secret"},
		"Server":       {samples: []any{srv, (*introspecttest.Server)(nil)}},
		"SignedAnswer": {samples: []any{withKey, *withKey, withHMAC, &withHMAC}},
	}
	bad := stringForms("client secret", printSecret)
	bad = append(bad, stringForms("HMAC key", printHMACSecret)...)
	bad = append(bad, stringForms("token", tok)...)
	bad = append(bad, keyForms(t, "client key", clientKey)...)
	bad = append(bad, keyForms(t, "signed answer key", answerKey)...)
	bad = append(bad, keyForms(t, "server signing key", serverKey)...)
	checkPrintTable(t, exportedTypeNames(t, "."), entries, bad)
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
