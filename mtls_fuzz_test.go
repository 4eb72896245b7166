package introspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fuzzCertDER returns a fresh self-signed certificate.
func fuzzCertDER(f *testing.F) []byte {
	f.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Unix(1e9, 0), NotAfter: time.Unix(2e9, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		f.Fatal(err)
	}
	return der
}

// certHeaderEncodings are the ways a proxy writes der, per format.
func certHeaderEncodings(der []byte) map[CertHeaderFormat][]string {
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	sum := sha256.Sum256(der)
	h := hex.EncodeToString(sum[:])
	escaped := strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(p)
	return map[CertHeaderFormat][]string{
		CertHeaderEscapedPEM: {escaped, url.QueryEscape(p), url.PathEscape(p)},
		CertHeaderXFCC:       {"Hash=" + h, `Cert="` + escaped + `"`, "By=spiffe://p;Hash=" + h + `;Cert="` + escaped + `";Subject="CN=a\,b";URI=`},
		CertHeaderBase64DER: {base64.StdEncoding.EncodeToString(der), base64.RawURLEncoding.EncodeToString(der),
			url.QueryEscape(base64.StdEncoding.EncodeToString(der))},
	}
}

// FuzzClientCertHeader feeds the header parsers arbitrary values in every
// format. They never panic; a thumbprint is always 32 bytes in base64url;
// nothing is read from a value over the limit, from a value given twice, or
// from a list where the format takes one certificate; and when the input is
// itself a DER certificate, every encoding of it a proxy writes gives its
// thumbprint.
func FuzzClientCertHeader(f *testing.F) {
	der := fuzzCertDER(f)
	for _, values := range certHeaderEncodings(der) {
		for _, v := range values {
			f.Add(v)
		}
	}
	f.Add(string(der))
	for _, s := range []string{
		"", ",", ";", "=", `"`, `\`, "Hash=", "Hash=;Hash=", `Cert=""`, `Subject="a\"`, `a="b"c`, "a=b,c=d",
		"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "%", "%zz", "====", "-_+/",
		strings.Repeat("A", maxCertHeaderSize+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for fm := range CertHeaderFormat(4) { // the three formats and an unknown one
			thumb, ok := parseCertHeader(fm, v)
			if !ok {
				if thumb != "" {
					t.Fatalf("%v: no certificate, but thumbprint %q", fm, thumb)
				}
				continue
			}
			if b, err := base64.RawURLEncoding.DecodeString(thumb); err != nil || len(b) != sha256.Size {
				t.Fatalf("%v: thumbprint %q is not 32 bytes in base64url", fm, thumb)
			}
			if len(v) > maxCertHeaderSize {
				t.Fatalf("%v: a value of %d bytes was read", fm, len(v))
			}
			if fm != CertHeaderXFCC && strings.Contains(v, ",") {
				t.Fatalf("%v: a list was read", fm)
			}
			h := &certHeader{name: "X-Cert", format: fm}
			if _, ok := h.thumbprint(http.Header{"X-Cert": {v, v}}); ok {
				t.Fatalf("%v: a header given twice was read", fm)
			}
			if again, _ := h.thumbprint(http.Header{"X-Cert": {v}}); again != thumb {
				t.Fatalf("%v: the header gives %q, the value %q", fm, again, thumb)
			}
		}
		cand := []byte(v)
		if _, err := x509.ParseCertificate(cand); err != nil {
			return
		}
		want := thumbprintOf(cand)
		for fm, values := range certHeaderEncodings(cand) {
			for _, e := range values {
				if len(e) > maxCertHeaderSize {
					continue
				}
				if got, ok := parseCertHeader(fm, e); !ok || got != want {
					t.Fatalf("%v: a certificate written as %q gives %q, %v; want %q", fm, e, got, ok, want)
				}
			}
		}
	})
}
