package introspecttest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// getUserinfo calls the userinfo endpoint of s with authorization (the
// whole header value, "" for none).
func getUserinfo(t *testing.T, s *introspecttest.Server, authorization string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.UserinfoURL(), nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := s.HTTPClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// The userinfo endpoint is announced in the metadata and answers sub and the
// extra claims of an active token, 401 otherwise; it can misbehave and sign.
func TestUserinfoEndpoint(t *testing.T) {
	s := startServer(t)
	assert.Equal(t, s.UserinfoURL(), s.Metadata()["userinfo_endpoint"])
	tok := s.Issue(introspecttest.Claims{Subject: "alice", ClientID: "spa", Scope: "openid",
		Extra: map[string]any{"email": "alice@example.com"}})

	resp, body := getUserinfo(t, s, "Bearer "+tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var claims map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &claims))
	assert.Equal(t, map[string]any{"sub": "alice", "email": "alice@example.com"}, claims)

	for _, auth := range []string{"", "Bearer unknown", "Basic " + tok} {
		resp, _ := getUserinfo(t, s, auth)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, auth)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "invalid_token")
	}
	s.Revoke(tok)
	resp, _ = getUserinfo(t, s, "Bearer "+tok)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.EqualValues(t, 5, s.UserinfoCalls())

	tok = s.Issue(introspecttest.Claims{Subject: "bob", ClientID: "spa"})
	s.SetUserinfoFault(introspecttest.Respond(http.StatusBadGateway, "text/plain", "down"))
	resp, _ = getUserinfo(t, s, "Bearer "+tok)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	s.SetUserinfoFault(introspecttest.Fault{})

	s.SetSignedUserinfo(true, nil)
	resp, body = getUserinfo(t, s, "Bearer "+tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/jwt", resp.Header.Get("Content-Type"))
	signer, kid := s.SigningKey()
	parsed, err := jwt.Parse(strings.TrimSpace(body), func(*jwt.Token) (any, error) { return signer.Public(), nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(s.Issuer), jwt.WithAudience("spa"), jwt.WithIssuedAt(), jwt.WithLeeway(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, kid, parsed.Header["kid"])
	assert.Equal(t, "JWT", parsed.Header["typ"])
	sub, _ := parsed.Claims.GetSubject()
	assert.Equal(t, "bob", sub)

	s.SetSignedUserinfo(true, func(a *introspecttest.SignedAnswer) { a.Claims["sub"] = "mallory" })
	_, body = getUserinfo(t, s, "Bearer "+tok)
	parsed, err = jwt.Parse(strings.TrimSpace(body), func(*jwt.Token) (any, error) { return signer.Public(), nil })
	require.NoError(t, err)
	sub, _ = parsed.Claims.GetSubject()
	assert.Equal(t, "mallory", sub)

	s.SetSignedUserinfo(false, nil)
	resp, _ = getUserinfo(t, s, "Bearer "+tok)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
}
