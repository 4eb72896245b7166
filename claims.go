package introspect

import (
	"encoding/json"
	"fmt"
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
// A nil ti is an error.
func DecodeClaims[T any](ti *Introspection) (T, error) {
	var v T
	if ti == nil {
		return v, fmt.Errorf("introspect: DecodeClaims: no verdict")
	}
	b, err := ti.MarshalJSON()
	if err != nil {
		return v, fmt.Errorf("introspect: DecodeClaims: %w", err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("introspect: DecodeClaims: %w", err)
	}
	return v, nil
}
