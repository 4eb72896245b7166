package introspect

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// maxCertHeaderSize bounds the value of the client certificate header: a
// longer one is not read, and there is no certificate.
const maxCertHeaderSize = 16 << 10 // 16 KiB

// CertHeaderFormat is how a TLS-terminating proxy writes the client
// certificate into the header named in [WithClientCertificateHeader].
type CertHeaderFormat uint8

const (
	// CertHeaderEscapedPEM is a URL-encoded (percent-encoded) PEM
	// certificate: nginx's $ssl_client_escaped_cert. The value must hold
	// exactly one CERTIFICATE block and nothing else.
	CertHeaderEscapedPEM CertHeaderFormat = iota + 1

	// CertHeaderXFCC is Envoy's x-forwarded-client-cert: elements
	// separated by commas, each a list of Key=Value pairs separated by
	// semicolons, a value double-quoted when it holds a separator. Hash=
	// (the hex SHA-256 of the DER certificate) and Cert= (the URL-encoded
	// PEM certificate) are read, and must agree when both are present;
	// the other keys are skipped. The header must hold exactly one element:
	// see [WithClientCertificateHeader] for the Envoy settings that give
	// one, and why more than one is refused.
	CertHeaderXFCC

	// CertHeaderBase64DER is one DER certificate in base64, standard or
	// URL alphabet, padded or not, optionally percent-encoded: HAProxy's
	// ssl_c_der,base64 and Traefik's X-Forwarded-Tls-Client-Cert (the
	// PEM body on one line). A comma-separated list is refused: Traefik
	// lists every certificate the client presented, so a client that sends
	// its chain gives no certificate.
	CertHeaderBase64DER
)

// String returns the name of the format.
func (f CertHeaderFormat) String() string {
	switch f {
	case CertHeaderEscapedPEM:
		return "escaped-pem"
	case CertHeaderXFCC:
		return "xfcc"
	case CertHeaderBase64DER:
		return "base64-der"
	}
	return "unknown"
}

// certHeader is the configuration of [WithClientCertificateHeader].
type certHeader struct {
	name    string // canonical form
	format  CertHeaderFormat
	proxies []netip.Prefix
	unix    bool // "unix" is trusted: every peer of a unix-socket listener
}

// WithClientCertificateHeader takes the client certificate of the RFC 8705
// binding check (a token whose answer carries cnf "x5t#S256") from the
// request header named header, written by a TLS-terminating proxy in the
// given format, for requests that come from one of trustedProxies. Each
// trusted proxy is an IP prefix in CIDR notation ("10.0.0.0/8",
// "fd00:1::/64") or a single address ("10.1.2.3").
//
// Anyone can send any header. A client that reaches the server directly, or
// through a proxy that passes the header on, could name any certificate,
// such as the one a stolen token is bound to: the header is worth believing
// only from the proxies that set it themselves. So the header is read only
// when the request's peer address (r.RemoteAddr) is in trustedProxies, and
// an empty list is an error from [New], as are a prefix with host bits set
// and a prefix that holds every address. Name the proxies alone, never a
// range clients connect from. The entry "unix" trusts every peer of a
// unix-socket listener (net/http's [http.LocalAddrContextKey] names a unix
// address; the gRPC adapter sets it too): whoever may open the socket file,
// which its mode, owner and directory decide, root included. Over a unix
// socket the prefixes never apply: RemoteAddr is then the path the peer
// bound its end to, its own choice. r.RemoteAddr must be the peer of the
// connection: a middleware in front that rewrites it from X-Forwarded-For
// or Forwarded, or a listener that takes it from the PROXY protocol, would
// let a client pass for a proxy. Each
// trusted proxy must set the header itself, replacing any the client sent,
// and must request a client certificate of the client (it need not check
// it against a CA: the TLS handshake proves the client holds the key, which
// is what the binding needs).
//
// For a request from a trusted proxy the header alone counts:
//   - without the header (the client presented no certificate), there is
//     no certificate; the proxy's own connection, and any client
//     certificate the proxy presents on it, is never taken for the
//     client's;
//   - the header given more than once, or a value that is a
//     comma-separated list (for [CertHeaderXFCC]: more than one element),
//     longer than 16 KiB, malformed, not a certificate or, for XFCC, with a
//     Hash and a Cert that disagree, gives no certificate.
//
// With no certificate a certificate-bound token is refused (401
// invalid_token); tokens without a binding are not affected. A request from
// any other address is checked against the client certificate of its own
// TLS connection, if any, as without this option, and the header is
// ignored. The header's value is never logged nor put in an error.
//
// nginx, with ssl_verify_client optional_no_ca (or on, or optional) in the
// server block, and trustedProxies the address of the nginx hosts:
//
//	proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
//
//	introspect.WithClientCertificateHeader("X-SSL-Client-Cert", introspect.CertHeaderEscapedPEM, "10.0.0.0/24")
//
// Envoy, in the http_connection_manager of the listener that terminates the
// clients' TLS:
//
//	forward_client_cert_details: SANITIZE_SET
//	set_current_client_cert_details: { cert: true }
//
//	introspect.WithClientCertificateHeader("X-Forwarded-Client-Cert", introspect.CertHeaderXFCC, "10.0.0.0/24")
//
// Envoy always writes Hash=; cert: true adds Cert=, which is then checked
// against it. SANITIZE_SET replaces whatever XFCC the client sent with the
// one element of the current client. APPEND_FORWARD appends that element to
// the client's header, so it works for clients that send none, while one
// that does sends a header of several elements, which gives no certificate:
// the server cannot tell the proxy's element from elements the client or an
// earlier hop wrote (nor from ones a crafted URI or DNS name of a
// certificate may form, since Envoy writes those unquoted). Behind more than
// one Envoy, the hops after the first forward the header unchanged
// (FORWARD_ONLY) and trustedProxies names the last hop. Never configure
// FORWARD_ONLY or ALWAYS_FORWARD_ONLY on the listener that faces the
// clients: the header would then be the client's own.
//
// [NewClient] refuses the option, which is the middleware's. Default: no
// header is read.
func WithClientCertificateHeader(header string, format CertHeaderFormat, trustedProxies ...string) Option {
	return func(c *config) {
		c.middlewareOnly("WithClientCertificateHeader")
		const name = "WithClientCertificateHeader"
		ok := true
		switch {
		case header == "":
			c.fail("%s: empty header name", name)
			ok = false
		case !isToken(header):
			c.fail("%s: %q is not a valid header name", name, header)
			ok = false
		}
		switch format {
		case CertHeaderEscapedPEM, CertHeaderXFCC, CertHeaderBase64DER:
		default:
			c.fail("%s: unknown format %d", name, uint8(format))
			ok = false
		}
		if len(trustedProxies) == 0 {
			c.fail("%s: no trusted proxies: the header would be believed from every client", name)
			ok = false
		}
		proxies := make([]netip.Prefix, 0, len(trustedProxies))
		unix := false
		for _, s := range trustedProxies {
			if s == trustUnixSocket {
				unix = true
				continue
			}
			p, err := parseTrustedProxy(s)
			if err != "" {
				c.fail("%s: trusted proxy %q %s", name, s, err)
				ok = false
				continue
			}
			proxies = append(proxies, p)
		}
		if ok {
			c.certHeader = &certHeader{name: http.CanonicalHeaderKey(header), format: format, proxies: proxies, unix: unix}
		}
	}
}

// parseTrustedProxy parses a prefix or a single address; on failure it
// returns what is wrong with s.
func parseTrustedProxy(s string) (netip.Prefix, string) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, "is not an IP prefix (CIDR), an IP address or unix"
		}
		if m := p.Masked(); m != p {
			return p, "has host bits set (the network is " + m.String() + ")"
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, "is not an IP prefix (CIDR), an IP address or unix"
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Addr().Is4In6():
		return p, "is IPv4-mapped IPv6: write it in IPv4"
	case p.Bits() == 0:
		return p, "holds every address"
	}
	return p, ""
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the syntax
// of a header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}

// certThumbprint returns the RFC 8705 SHA-256 thumbprint (base64url, no
// padding) of the request's client certificate, and false when there is
// none: the one the header of [WithClientCertificateHeader] carries when
// the request comes from a trusted proxy, otherwise the one of r's TLS
// connection.
func (m *Middleware) certThumbprint(r *http.Request) (string, bool) {
	if r == nil {
		return "", false
	}
	if h := m.cfg.certHeader; h != nil && h.trusts(r) {
		return h.thumbprint(r.Header)
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", false
	}
	return thumbprintOf(r.TLS.PeerCertificates[0].Raw), true
}

func thumbprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// trusts reports whether r comes from a trusted proxy: it came over a unix
// socket and "unix" is trusted, or over anything else from a peer address
// (r.RemoteAddr, "ip:port") in one of the trusted prefixes. An address with
// an IPv6 zone, or that does not parse, is not in a prefix.
func (h *certHeader) trusts(r *http.Request) bool {
	// The listener first: over a unix socket, RemoteAddr is the path the
	// peer bound its end to, which it chooses ("127.0.0.1:1" included).
	if overUnixSocket(r) {
		return h.unix
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range h.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trustUnixSocket is the trusted-proxy entry of [WithClientCertificateHeader]
// that trusts the peers of a unix-socket listener.
const trustUnixSocket = "unix"

// overUnixSocket reports whether r came to a net/http server over a unix
// socket: the listener's address, which the server puts in r's context
// under [http.LocalAddrContextKey], is a unix one. Such a request has no
// peer IP address; its peer is whoever may open the socket file.
func overUnixSocket(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && a != nil && a.Network() == "unix"
}

// thumbprint returns the thumbprint of the certificate in the header, which
// must be given exactly once.
func (h *certHeader) thumbprint(hdr http.Header) (string, bool) {
	v := hdr[h.name]
	if len(v) != 1 {
		return "", false
	}
	return parseCertHeader(h.format, v[0])
}

// parseCertHeader returns the thumbprint of the certificate a header value
// in format f carries, and false when there is none or the value is
// malformed or too long.
func parseCertHeader(f CertHeaderFormat, v string) (string, bool) {
	if v == "" || len(v) > maxCertHeaderSize {
		return "", false
	}
	switch f {
	case CertHeaderXFCC:
		return xfccThumbprint(v)
	case CertHeaderEscapedPEM, CertHeaderBase64DER:
		if strings.IndexByte(v, ',') >= 0 {
			return "", false // a list: several certificates or header lines
		}
		var der []byte
		var ok bool
		if f == CertHeaderEscapedPEM {
			der, ok = escapedPEM(v)
		} else {
			der, ok = base64DER(v)
		}
		if !ok {
			return "", false
		}
		return thumbprintOf(der), true
	}
	return "", false
}

// escapedPEM decodes a URL-encoded PEM certificate into its DER, which it
// checks is a certificate.
func escapedPEM(v string) ([]byte, bool) {
	s, err := url.PathUnescape(v) // a '+' of the base64 body stays a '+'
	if err != nil {
		return nil, false
	}
	// An encoder for query strings writes the space of the boundary lines
	// as '+', which PathUnescape keeps.
	s = strings.Replace(s, "-----BEGIN+CERTIFICATE-----", "-----BEGIN CERTIFICATE-----", 1)
	s = strings.Replace(s, "-----END+CERTIFICATE-----", "-----END CERTIFICATE-----", 1)
	b := bytes.TrimSpace([]byte(s))
	if !bytes.HasPrefix(b, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, false // pem.Decode would skip what comes before
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" || len(block.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, false
	}
	return certificateDER(block.Bytes)
}

// base64DER decodes a base64 DER certificate, perhaps percent-encoded, in
// either alphabet, padded or not.
func base64DER(v string) ([]byte, bool) {
	if strings.IndexByte(v, '%') >= 0 {
		var err error
		if v, err = url.PathUnescape(v); err != nil {
			return nil, false
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if der, err := enc.Strict().DecodeString(v); err == nil {
			return certificateDER(der)
		}
	}
	return nil, false
}

// certificateDER returns der when it is exactly one X.509 certificate.
func certificateDER(der []byte) ([]byte, bool) {
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, false
	}
	return der, true
}

// xfccThumbprint reads an x-forwarded-client-cert value of exactly one
// element: the thumbprint is that of its Cert, or its Hash when there is no
// Cert; when both are present they must agree. A key given twice (Hash or
// Cert, in any case), a quote in the middle of a value, anything but a
// separator after a closing quote, an unterminated quote, an empty key or a
// second element make the value malformed.
func xfccThumbprint(v string) (string, bool) {
	var hash, cert string
	var haveHash, haveCert bool
	for i := 0; ; {
		j := i
		for j < len(v) && v[j] != '=' && v[j] != ';' && v[j] != ',' && v[j] != '"' {
			j++
		}
		if j == len(v) || v[j] != '=' {
			return "", false
		}
		key := strings.Trim(v[i:j], " \t")
		if key == "" {
			return "", false
		}
		j++ // past '='
		var val string
		if j < len(v) && v[j] == '"' {
			k := j + 1
			for k < len(v) && v[k] != '"' {
				if v[k] == '\\' {
					k++ // an escaped character, which may be a quote
				}
				k++
			}
			if k >= len(v) {
				return "", false // unterminated
			}
			val, j = v[j+1:k], k+1
		} else {
			k := j
			for k < len(v) && v[k] != ';' && v[k] != ',' && v[k] != '"' {
				k++
			}
			val, j = strings.Trim(v[j:k], " \t"), k // a quote here is refused below
		}
		switch {
		case strings.EqualFold(key, "Hash"):
			if haveHash {
				return "", false
			}
			hash, haveHash = val, true
		case strings.EqualFold(key, "Cert"):
			if haveCert {
				return "", false
			}
			cert, haveCert = val, true
		}
		if j == len(v) {
			break
		}
		if v[j] != ';' {
			return "", false // a second element, a quote inside a value, or text after a quoted one
		}
		i = j + 1
	}
	var sum []byte
	if haveHash {
		b, err := hex.DecodeString(hash)
		if err != nil || len(b) != sha256.Size {
			return "", false
		}
		sum = b
	}
	if haveCert {
		der, ok := escapedPEM(cert)
		if !ok {
			return "", false
		}
		s := sha256.Sum256(der)
		if haveHash && !bytes.Equal(s[:], sum) {
			return "", false
		}
		sum = s[:]
	}
	if sum == nil {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(sum), true
}
