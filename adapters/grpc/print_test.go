package introspectgrpc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	gotoken "go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/introspect-go/introspect"
	introspectgrpc "github.com/introspect-go/introspect/adapters/grpc"
	"github.com/introspect-go/introspect/introspecttest"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if the middleware's client
// secret, a token or a cache key shows, or if printing panics. A new
// exported type fails the test until it has an entry.
func TestPrintExportedTypes(t *testing.T) {
	const (
		secret      = "s3cr3t-grpc-Fy6Tn3Bw"
		querySecret = "s3cr3t-query-Xe4Pc"
	)
	as := introspecttest.NewServer(introspecttest.WithClient("rs", secret))
	t.Cleanup(as.Close)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	lru, err := introspect.NewLRUCache(100)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := as.IntrospectionURL() + "?tenant=" + querySecret
	mw, err := introspect.New(introspect.WithEndpoint(endpoint), introspect.WithClientCredentials("rs", secret),
		introspect.WithCache(lru))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	req := httptest.NewRequest(http.MethodPost, "/shop.v1.Orders/Cancel", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := mw.Authenticate(req); err != nil {
		t.Fatal(err)
	}
	auth, err := introspectgrpc.New(mw,
		introspectgrpc.WithMethodScopes(map[string][]string{"/shop.v1.Orders/Cancel": {"orders:write"}}),
		introspectgrpc.WithSkipper(func(context.Context, string) bool { return false }))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := introspectgrpc.New(mw)
	if err != nil {
		t.Fatal(err)
	}
	authCopy := *auth

	entries := map[string]printEntry{
		"Interceptors": {samples: []any{auth, plain, &authCopy, authCopy, (*introspectgrpc.Interceptors)(nil),
			introspectgrpc.Interceptors{}}},
		"Option": {reason: "a function type"},
	}
	bad := stringForms("client secret", secret)
	bad = append(bad, stringForms("secret in the endpoint's query", querySecret)...)
	bad = append(bad, stringForms("token", tok)...)
	key := introspect.NewCacheKey(endpoint, "rs", tok)
	bad = append(bad, bytesForms("cache key", key[:])...)
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
