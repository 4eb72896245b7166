package introspect

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// certThumbprint returns the RFC 8705 SHA-256 thumbprint (base64url, no
// padding) of the client certificate of r's TLS connection, and false when
// there is none.
func (m *Middleware) certThumbprint(r *http.Request) (string, bool) {
	if r == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", false
	}
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:]), true
}
