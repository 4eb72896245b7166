package introspect

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// basicAuthorization is what http.Request.SetBasicAuth sets, for lengths
// around its buffer's 48 bytes and characters that form-encoding changes.
func TestBasicAuthorization(t *testing.T) {
	for _, id := range []string{"", "rs", "resource-server", strings.Repeat("i", 47), strings.Repeat("i", 48)} {
		for n := range 120 {
			secret := strings.Repeat("s3cret:with/reserved+chars%&= ok"[n%7:], 5)[:n]
			r, _ := http.NewRequest(http.MethodPost, "https://as.example/introspect", nil)
			r.SetBasicAuth(id, secret)
			if got, want := basicAuthorization(id, secret), r.Header.Get("Authorization"); got != want {
				t.Fatalf("id of %d bytes, secret of %d: basicAuthorization differs from SetBasicAuth", len(id), n)
			}
		}
	}
}

// BenchmarkBasicAuthorization is client_secret_basic's header, as
// authenticate builds it, against http.Request.SetBasicAuth.
func BenchmarkBasicAuthorization(b *testing.B) {
	id, secret := url.QueryEscape("resource-server"), url.QueryEscape("s3cret:with/reserved+chars%&= ok")
	b.Run("SetBasicAuth", func(b *testing.B) {
		b.ReportAllocs()
		r := &http.Request{Header: make(http.Header)}
		for b.Loop() {
			r.SetBasicAuth(id, secret)
		}
	})
	b.Run("basicAuthorization", func(b *testing.B) {
		b.ReportAllocs()
		r := &http.Request{Header: make(http.Header)}
		for b.Loop() {
			r.Header.Set("Authorization", basicAuthorization(id, secret))
		}
	})
}
