package introspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// DecodeClaims decodes the members of the authorization server's answer
// into a value of the caller's type T, with encoding/json's rules (struct
// tags, unknown members ignored), without asking the server again: the
// registered members in their RFC 7662 form ("scope" one space-separated
// string, "aud" a string or an array, dates in seconds) and every other
// member as it came. For example:
//
//	type claims struct {
//		Subject string   `json:"sub"`
//		Tenant  string   `json:"tenant"`
//		Roles   []string `json:"roles"`
//	}
//	c, err := introspect.DecodeClaims[claims](ti)
//
// Names match fields exactly: an answer with a member whose name differs
// only in case from a field's ("SUB" for a field tagged "sub", a second
// "tenantid" next to "tenantId"), at the top or in a nested object, is an
// error, where encoding/json would fill the field from either while this
// package reads names exactly. A nil ti is an error.
func DecodeClaims[T any](ti *Introspection) (T, error) {
	var v T
	if ti == nil {
		return v, fmt.Errorf("introspect: DecodeClaims: no verdict")
	}
	b, err := ti.MarshalJSON()
	if err != nil {
		return v, fmt.Errorf("introspect: DecodeClaims: %w", err)
	}
	if err := decodeExact(b, &v); err != nil {
		return v, fmt.Errorf("introspect: DecodeClaims: %w", err)
	}
	return v, nil
}

// errCaseOnly: a member's name differs only in case from a field's.
var errCaseOnly = errors.New("a member's name differs only in case from a field's")

// decodeExact unmarshals b into v, unless a member of b, or of an object
// nested in it, names a field of the struct it would fill but for case:
// encoding/json matches names to fields regardless of case. Maps and raw
// JSON match names exactly and are not checked.
func decodeExact(b []byte, v any) error {
	if err := checkNames(b, reflect.TypeOf(v), 0); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// maxNameDepth bounds how deep checkNames follows nested values; deeper
// ones are refused (errTooDeep) rather than left unchecked.
const maxNameDepth = 32

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	errTooDeep      = errors.New("the value is nested too deep to check its names")
)

// checkNames checks raw, a value to be decoded into a t, and what it
// holds, against the JSON names of t's fields (see decodeExact): every
// member of every object, a name given twice included. A value that does
// not have the shape of t is left to json.Unmarshal.
func checkNames(raw []byte, t reflect.Type, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	if depth > maxNameDepth {
		return errTooDeep
	}
	switch t.Kind() {
	case reflect.Struct:
		fs := fieldsOf(t)
		return eachMember(raw, func(name string, v json.RawMessage) error {
			f, ok := fs[foldKey(name)]
			if !ok {
				return nil
			}
			types, exact := f[name]
			if !exact {
				return errCaseOnly
			}
			for _, ft := range types {
				if err := checkNames(v, ft, depth+1); err != nil {
					return err
				}
			}
			return nil
		})
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var vs []json.RawMessage
		if json.Unmarshal(raw, &vs) != nil {
			return nil
		}
		for _, v := range vs {
			if err := checkNames(v, t.Elem(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		return eachMember(raw, func(_ string, v json.RawMessage) error { return checkNames(v, t.Elem(), depth+1) })
	}
	return nil
}

// eachMember calls f with each member of the JSON object raw, in order,
// every one of a name given twice; nothing when raw is not an object.
func eachMember(raw []byte, f func(name string, v json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil // left to json.Unmarshal
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return nil
		}
		if err := f(name, v); err != nil {
			return err
		}
	}
	return nil
}

// fieldsByFold are the JSON names of a struct's fields, by fold key: for
// each name spelt so, the types of the fields of that name (every one: the
// check is then as strict as the strictest).
type fieldsByFold map[string]map[string][]reflect.Type

var fieldCache sync.Map // reflect.Type → fieldsByFold

// fieldsOf returns the JSON names of the struct type t's fields as
// encoding/json names them: the tag's name when valid, else the Go name;
// promoted fields of embedded structs without a tag name included (each
// embedded type walked once); unexported fields left out (but embedded
// structs of unexported types).
func fieldsOf(t reflect.Type) fieldsByFold {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(fieldsByFold)
	}
	fs := fieldsByFold{}
	walked := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		if walked[t] {
			return
		}
		walked[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous {
				if !f.IsExported() && ft.Kind() != reflect.Struct {
					continue
				}
			} else if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if !validTagName(name) {
				name = ""
			}
			if name == "" && f.Anonymous && ft.Kind() == reflect.Struct {
				walk(ft)
				continue
			}
			if name == "" {
				name = f.Name
			}
			k := foldKey(name)
			if fs[k] == nil {
				fs[k] = map[string][]reflect.Type{}
			}
			fs[k][name] = append(fs[k][name], f.Type)
		}
	}
	walk(t)
	fieldCache.Store(t, fs)
	return fs
}

// validTagName reports whether encoding/json takes name from a struct tag:
// letters, digits and the punctuation it allows.
func validTagName(name string) bool {
	for _, c := range name {
		if !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}

// foldKey maps s to one representative of the strings equal to it under
// Unicode simple case folding (strings.EqualFold): each rune becomes the
// least rune of its folding orbit.
func foldKey(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		out = utf8.AppendRune(out, least)
	}
	return string(out)
}
