package introspect

import (
	"crypto/subtle"
	"net/http"
)

// checkBinding enforces the token's proof-of-possession binding (cnf) for a
// request (nil: no request, so no binding can be satisfied).
func (m *Middleware) checkBinding(r *http.Request, tok Token, ti *Introspection) error {
	if isDPoP(tok) {
		return m.checkDPoP(r, tok, ti)
	}
	cnf := ti.Confirmation
	if cnf == nil {
		return nil
	}
	// A token bound to a DPoP key presented as Bearer is refused (RFC 9449
	// §7.2: its proof is not looked for); a binding method this package does not know,
	// or one given as null, empty or not a string (kept in Extra), cannot be
	// enforced; nor can a "cnf" that names no method at all: each fails
	// closed. What is left is a certificate binding alone.
	if cnf.JKT != "" || len(cnf.Extra) > 0 || cnf.X5TS256 == "" {
		return ErrTokenBinding
	}
	thumb, ok := m.certThumbprint(r)
	if !ok || subtle.ConstantTimeCompare([]byte(thumb), []byte(cnf.X5TS256)) != 1 {
		return ErrTokenBinding
	}
	return nil
}
