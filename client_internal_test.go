package introspect

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNewPostMatchesNewRequest: the request built from the endpoint parsed
// once is the one http.NewRequestWithContext builds from the string, and it
// does not share its URL with the parsed endpoint.
func TestNewPostMatchesNewRequest(t *testing.T) {
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	for _, endpoint := range []string{
		"https://as.example.com/oauth2/introspect",
		"https://as.example.com:8443/introspect?tenant=a",
		"https://as.example.com:/introspect",
		"https://[::1]:8443/introspect",
		"https://[::1]:/introspect",
		"https://[::1]/introspect",
		"http://127.0.0.1:9000/a%2Fb/introspect",
		"https://user:pass@as.example.com/introspect",
	} {
		t.Run(endpoint, func(t *testing.T) {
			want, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
			require.NoError(t, err)
			u := parseEndpoint(endpoint)
			require.NotNil(t, u)
			got := newPost(ctx, u)
			assert.Equal(t, want.Method, got.Method)
			assert.Equal(t, want.URL, got.URL)
			assert.Equal(t, want.URL.String(), got.URL.String())
			assert.Equal(t, want.Host, got.Host)
			assert.Equal(t, want.Proto, got.Proto)
			assert.Equal(t, want.ProtoMajor, got.ProtoMajor)
			assert.Equal(t, want.ProtoMinor, got.ProtoMinor)
			assert.Equal(t, want.Header, got.Header)
			assert.Equal(t, "v", got.Context().Value(ctxKey{}))
			assert.NotSame(t, u, got.URL, "each request has its own copy of the URL")
		})
	}
	assert.Nil(t, parseEndpoint("https://as.example.com/%zz"))
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                    true,
		"application/json; charset=utf-8":     true,
		"Application/JSON":                    true,
		" application/json ":                  true,
		"application/json;":                   true, // as mime.ParseMediaType reads it
		"application/jsonx":                   false,
		"application/token-introspection+jwt": false,
		"text/json":                           false,
		"":                                    false,
		"application/json; charset":           false,
	} {
		assert.Equal(t, want, isJSON(ct), "%q", ct)
	}
}

func TestReadBody(t *testing.T) {
	resp := func(body string, length int64) *http.Response {
		return &http.Response{Body: io.NopCloser(strings.NewReader(body)), ContentLength: length}
	}
	data, err := readBody(resp(`{"active":true}`, 15), 100)
	require.NoError(t, err)
	assert.Equal(t, `{"active":true}`, string(data))
	assert.Equal(t, 15, cap(data), "a declared length is read into a buffer of that size")

	data, err = readBody(resp(`{"active":true}`, -1), 100)
	require.NoError(t, err, "no declared length")
	assert.Equal(t, `{"active":true}`, string(data))

	data, err = readBody(resp(strings.Repeat("x", 500), 500), 100)
	require.NoError(t, err)
	assert.Len(t, data, 101, "a declared length over the limit: max+1 bytes read, no more")

	data, err = readBody(resp(strings.Repeat("x", 500), -1), 100)
	require.NoError(t, err)
	assert.Len(t, data, 101, "an undeclared length over the limit: max+1 bytes read, no more")

	_, err = readBody(resp(`{"act`, 15), 100)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "a body shorter than declared")
}

// TestRedactURL checks the form in which endpoints reach hooks, logs and
// printed values: no user info (its password may hold '@': net/url ends
// user info at the authority's last '@'), query or fragment.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://as.example.com/introspect":                   "https://as.example.com/introspect",
		"https://rs:secret@as.example.com/introspect":         "https://as.example.com/introspect",
		"https://rs:hunter2@pw@as.example.com/introspect":     "https://as.example.com/introspect",
		"https://rs:a@b@c@as.example.com":                     "https://as.example.com",
		"//rs:secret@as.example.com/introspect":               "//as.example.com/introspect",
		"https://as.example.com/a@b/introspect":               "https://as.example.com/a@b/introspect",
		"https://as.example.com/introspect?client_secret=x#f": "https://as.example.com/introspect",
		"https://rs:pw9@as.example.com?u=a@b":                 "https://as.example.com",
		"/relative/a//b@c":                                    "/relative/a//b@c",
	} {
		assert.Equal(t, want, redactURL(in), in)
		if u, err := url.Parse(in); err == nil && u.User != nil {
			p, _ := u.User.Password()
			assert.NotContains(t, redactURL(in), p, in)
		}
	}
}
