package introspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
// "tenantid" next to "tenantId") is an error, where encoding/json would
// fill the field from either while this package reads names exactly. A
// nil ti is an error.
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

// decodeExact unmarshals the JSON object b into v, unless v is a struct
// (or a pointer to one) with a field that one of b's members names but for
// case: encoding/json matches names to fields regardless of case. Other
// types (maps, raw JSON) match names exactly.
func decodeExact(b []byte, v any) error {
	if fields := jsonFieldNames(reflect.TypeOf(v)); len(fields) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for name := range m {
			if f, ok := fields[foldKey(name)]; ok && f != name {
				return errCaseOnly
			}
		}
	}
	return json.Unmarshal(b, v)
}

// jsonFieldNames returns the JSON names of the fields of the struct t
// points to (through pointers), promoted ones of embedded structs
// included, by their fold key; nil for any other type.
func jsonFieldNames(t reflect.Type) map[string]string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]string{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous && name == "" && ft.Kind() == reflect.Struct && depth < 8 {
				walk(ft, depth+1)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			names[foldKey(name)] = name
		}
	}
	walk(t, 0)
	return names
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
