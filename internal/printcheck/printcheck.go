// Package printcheck checks that the exported types of a package never print
// a secret, a private key, a token or a cache key: a test gives [Check] a
// table with an [Entry] per exported type and the values ([Leak]) no printed
// form may contain, built with [StringForms], [BytesForms] and [KeyForms].
// Check prints every sample with every fmt verb, with both log/slog handlers
// and with encoding/json, as is, in a struct and in a slice.
//
// The package is for tests only: it imports go/parser and testing, and no
// non-test code of the library may import it.
package printcheck

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
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
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Entry is what the printing test knows of one exported type: sample
// values built through the package's constructors, or the reason the type
// holds nothing to hide (an interface or a function type, say). An entry
// may have both.
type Entry struct {
	Samples []any
	Reason  string
}

// Leak is a value no printed form may contain. Fold compares without
// regard to case (for hex, which %X prints in upper case).
type Leak struct {
	Name, Value string
	Fold        bool
}

// StringForms are the ways a secret string may show: as is, in hex (%x of
// a string) and in base64.
func StringForms(name, s string) []Leak {
	return []Leak{
		{Name: name, Value: s},
		{Name: name + " in hex", Value: hex.EncodeToString([]byte(s)), Fold: true},
		{Name: name + " in base64", Value: base64.StdEncoding.EncodeToString([]byte(s))},
	}
}

// BytesForms are the ways a byte string may show: hex, base64 (standard
// and URL alphabets), and the decimal, Go-syntax and JSON forms fmt and
// encoding/json give an array of bytes.
func BytesForms(name string, b []byte) []Leak {
	arr := reflect.New(reflect.ArrayOf(len(b), reflect.TypeFor[byte]())).Elem()
	reflect.Copy(arr, reflect.ValueOf(b))
	goSyntax := fmt.Sprintf("%#v", arr.Interface()) // [32]uint8{0x1, 0x2, ...}
	js, _ := json.Marshal(arr.Interface())
	return []Leak{
		{Name: name + " in hex", Value: hex.EncodeToString(b), Fold: true},
		{Name: name + " in base64", Value: base64.StdEncoding.EncodeToString(b)},
		{Name: name + " in base64url", Value: base64.RawURLEncoding.EncodeToString(b)},
		{Name: name + " in decimal", Value: strings.Trim(fmt.Sprint(arr.Interface()), "[]")},
		{Name: name + " in Go syntax", Value: strings.TrimSuffix(goSyntax[strings.Index(goSyntax, "{")+1:], "}"), Fold: true},
		{Name: name + " in JSON", Value: strings.Trim(string(js), "[]")},
	}
}

// KeyForms are the ways a private key may show: its scalar in decimal and
// hex, its JWK "d", its PKCS #8 DER in hex and base64 (the body of its PEM).
func KeyForms(t testing.TB, name string, k *ecdsa.PrivateKey) []Leak {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.StdEncoding.EncodeToString(der)
	if !strings.Contains(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), body[:48]) {
		t.Fatal("the PEM body is not the base64 of the DER")
	}
	ek, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	d := ek.Bytes() // the scalar, big-endian, as long as the order of the curve
	scalar := new(big.Int).SetBytes(d)
	out := []Leak{
		{Name: name + " scalar", Value: scalar.String()},
		{Name: name + " scalar in hex", Value: scalar.Text(16), Fold: true},
		{Name: name + " JWK d", Value: base64.RawURLEncoding.EncodeToString(d)},
		{Name: name + " PEM body", Value: body[:48]},
		{Name: name + " DER in hex", Value: hex.EncodeToString(der)[:64], Fold: true},
	}
	return append(out, BytesForms(name+" scalar bytes", d)...)
}

// Check requires an entry for every exported type declared by the non-test
// Go files of the package in dir, and no entry for a type that does not
// exist, then prints every sample as is, as the exported field of a struct
// and as the element of a slice, where fmt walks it from the outside, and
// fails if a printed form contains a value of bad or reports a panic. Each
// sample runs as a subtest named after its type, its index and its dynamic
// type.
func Check(t *testing.T, dir string, entries map[string]Entry, bad []Leak) {
	t.Helper()
	checkTable(t, exportedTypeNames(t, dir), entries, bad)
}

// exportedTypeNames lists the exported types declared by the non-test Go
// files of the package in dir.
func exportedTypeNames(t testing.TB, dir string) []string {
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

// checkTable requires an entry for every name and no entry for a type that
// is not among names, then prints every sample as is, as the exported field
// of a struct and as the element of a slice.
func checkTable(t *testing.T, names []string, entries map[string]Entry, bad []Leak) {
	t.Helper()
	for _, name := range names {
		e, ok := entries[name]
		switch {
		case !ok:
			t.Errorf("exported type %s has no entry in the printing table: add samples, or the reason it holds nothing to hide", name)
		case len(e.Samples) == 0 && e.Reason == "":
			t.Errorf("the entry of %s has neither samples nor a reason", name)
		}
	}
	for name := range entries {
		if !slices.Contains(names, name) {
			t.Errorf("the printing table has an entry for %s, which is not an exported type of the package", name)
		}
	}
	for _, name := range names {
		for i, v := range entries[name].Samples {
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
func checkPrinted(t *testing.T, form, out string, bad []Leak) {
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
		if strings.Contains(out, b.Value) || b.Fold && strings.Contains(lower, strings.ToLower(b.Value)) {
			t.Errorf("%s: the %s shows: %s", form, b.Name, short)
		}
	}
}
