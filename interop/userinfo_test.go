package interop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
)

// The provider's userinfo_endpoint is found by discovery, and its userinfo
// endpoint refuses a client_credentials token (it has no user, and no
// openid scope): the middleware answers 401 invalid_token, after the
// introspection said active. TestUserinfoOfAUser has a user's token.
func TestUserinfoRefusesClientCredentialsToken(t *testing.T) {
	o := provider(t)
	mw, err := introspect.New(
		introspect.WithIssuer(o.issuer),
		introspect.WithEagerDiscovery(),
		introspect.WithTimeout(5*time.Second),
		introspect.WithClientCredentials("rs-basic", reservedSecret),
		introspect.WithUserinfo(),
	)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	md, ok := mw.Client().Metadata()
	if !ok || md.UserinfoEndpoint == "" || !strings.HasPrefix(md.UserinfoEndpoint, o.issuer+"/") {
		t.Fatalf("userinfo_endpoint %q not discovered", md.UserinfoEndpoint)
	}

	tok := o.issue(t, appID)
	ti, err := mw.Client().Introspect(context.Background(), tok)
	if err != nil || !ti.Active {
		t.Fatalf("introspection: %v", err)
	}
	_, err = mw.Verify(context.Background(), tok)
	t.Logf("Verify: %v", err)
	if introspect.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("Verify: err = %v, want a 401", err)
	} else if strings.Contains(err.Error(), tok) {
		t.Error("the error shows the token")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the handler ran")
	})).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("status %d, challenge %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
