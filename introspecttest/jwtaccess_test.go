package introspecttest_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// IssueJWT makes an RFC 9068 JWT access token signed by the key of the
// JWKS, which the introspection endpoint answers for and Revoke revokes;
// a rotated key signs the next ones with its new kid.
func TestIssueJWT(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := startServer(t, introspecttest.WithClock(func() time.Time { return t0 }))
	auth := basicEncoded(testID, testSecret)
	tok := s.IssueJWT(introspecttest.Claims{Subject: "alice", ClientID: "app", Scope: "read write",
		Audience: []string{"https://api.example"}, Confirmation: map[string]string{"jkt": "thumb"}})
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	key, kid := s.SigningKey()
	h := decodePart(t, parts[0])
	assert.Equal(t, map[string]any{"typ": "at+jwt", "alg": "ES256", "kid": kid}, h)
	c := decodePart(t, parts[1])
	assert.Equal(t, s.Issuer, c["iss"])
	assert.Equal(t, "https://api.example", c["aud"])
	assert.Equal(t, "alice", c["sub"])
	assert.Equal(t, "app", c["client_id"])
	assert.Equal(t, "read write", c["scope"])
	assert.Equal(t, float64(t0.Add(time.Hour).Unix()), c["exp"])
	assert.Equal(t, float64(t0.Unix()), c["iat"])
	assert.Equal(t, map[string]any{"jkt": "thumb"}, c["cnf"])
	assert.NotEmpty(t, c["jti"])
	assert.NotContains(t, c, "active")
	assert.NotContains(t, c, "token_type")
	_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return key.Public(), nil },
		jwt.WithTimeFunc(func() time.Time { return t0 }), jwt.WithValidMethods([]string{"ES256"}))
	require.NoError(t, err, "signed by the server's key")

	a := do(t, s, call{form: tokenForm(tok), basic: auth})
	assert.Equal(t, true, a.json["active"])
	assert.Equal(t, "alice", a.json["sub"])
	s.Revoke(tok)
	assert.Equal(t, `{"active":false}`, do(t, s, call{form: tokenForm(tok), basic: auth}).body)

	s.RotateSigningKey()
	_, newKid := s.SigningKey()
	require.NotEqual(t, kid, newKid)
	assert.Equal(t, newKid, decodePart(t, strings.Split(s.IssueJWT(introspecttest.Claims{}), ".")[0])["kid"])
}

// IssueJWTFunc forges: a header member removed, alg none, HMAC keyed with
// the public key.
func TestIssueJWTFunc(t *testing.T) {
	s := startServer(t)
	tok := s.IssueJWTFunc(introspecttest.Claims{}, func(h, c map[string]any) {
		delete(h, "typ")
		c["extra"] = 1
	})
	parts := strings.Split(tok, ".")
	assert.NotContains(t, decodePart(t, parts[0]), "typ")
	assert.Equal(t, float64(1), decodePart(t, parts[1])["extra"])

	none := s.IssueJWTFunc(introspecttest.Claims{}, func(h, _ map[string]any) { h["alg"] = "none" })
	assert.True(t, strings.HasSuffix(none, "."), "no signature")
	assert.Equal(t, "none", decodePart(t, strings.Split(none, ".")[0])["alg"])

	hs := s.IssueJWTFunc(introspecttest.Claims{}, func(h, _ map[string]any) { h["alg"] = "HS256" })
	assert.Equal(t, "HS256", decodePart(t, strings.Split(hs, ".")[0])["alg"])
}
