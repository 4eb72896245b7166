package introspect

import (
	"encoding/json"
	"errors"
	"fmt"
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
// A nil ti is an error, and so is an answer with two members whose names
// differ only in case ("tenantId" and "tenantid"), or a member named like a
// registered one but for case ("SUB"): encoding/json matches names
// regardless of case, so such an answer could fill a field from either,
// while this package reads names exactly.
func DecodeClaims[T any](ti *Introspection) (T, error) {
	var v T
	if ti == nil {
		return v, fmt.Errorf("introspect: DecodeClaims: no verdict")
	}
	// A member named like a registered one but for case ("SUB") would fill
	// a field tagged "sub" that the verdict's Subject leaves empty.
	for name := range ti.Extra {
		if k := foldKey(name); registeredFolds[k] != "" && registeredFolds[k] != name {
			return v, fmt.Errorf("introspect: DecodeClaims: %w", errCaseOnly)
		}
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

// errCaseOnly: two members of an object differ only in case.
var errCaseOnly = errors.New("two members' names differ only in case")

// registeredFolds maps the fold key of each registered member that
// Introspection keeps in a typed field to its name.
var registeredFolds = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"active", "scope", "client_id", "username", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "cnf"} {
		m[foldKey(n)] = n
	}
	return m
}()

// decodeExact unmarshals the JSON object b into v, unless two of its
// members' names are equal under Unicode case folding (encoding/json's
// matching of names to fields).
func decodeExact(b []byte, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	seen := make(map[string]struct{}, len(m))
	for name := range m {
		k := foldKey(name)
		if _, dup := seen[k]; dup {
			return errCaseOnly
		}
		seen[k] = struct{}{}
	}
	return json.Unmarshal(b, v)
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
