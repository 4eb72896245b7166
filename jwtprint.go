package introspect

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// summary shows the issuer and the audience, the algorithms, the switches
// and the size limit: configuration the validator's options set, no secret.
func (v *JWTValidator) summary() summary {
	s := summary{name: "introspect.JWTValidator"}
	if v == nil || v.c == nil {
		return s
	}
	s.str("issuer", redactURL(v.c.cfg.discoveryIssuer))
	if len(v.c.cfg.jwtIssuers) > 0 {
		s.str("jwt_issuers", redactURLs(v.c.cfg.jwtIssuers))
	}
	s.str("audience", v.audience)
	s.str("algorithms", strings.Join(v.algs, ","))
	s.flag("plain_jwt", v.plain)
	s.attrs = append(s.attrs, slog.Int("max_size", v.maxSize))
	return s
}

// Format prints the validator's issuer, audience, algorithms and limits, the
// same for every verb.
func (v *JWTValidator) Format(f fmt.State, _ rune) {
	if v == nil {
		_, _ = io.WriteString(f, "<nil>")
		return
	}
	v.summary().format(f)
}

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (v *JWTValidator) LogValue() slog.Value {
	if v == nil {
		return slog.StringValue("<nil>")
	}
	return v.summary().logValue()
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (v *JWTValidator) MarshalJSON() ([]byte, error) { return v.summary().marshalJSON() }
