package introspect_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

func TestResourceMetadataURL(t *testing.T) {
	tests := []struct{ resource, want string }{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/tenant/a", "https://api.example.com/.well-known/oauth-protected-resource/tenant/a"},
		{"http://127.0.0.1:8080/api", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/api"},
		// RFC 9728 §3.1: inserted between the host and the path and/or
		// query: two resources apart by their query keep apart.
		{"https://api.example.com/mcp?tenant=a", "https://api.example.com/.well-known/oauth-protected-resource/mcp?tenant=a"},
		{"https://api.example.com?tenant=b", "https://api.example.com/.well-known/oauth-protected-resource?tenant=b"},
		{"https://api.example.com/?tenant=b", "https://api.example.com/.well-known/oauth-protected-resource?tenant=b"},
		// Only the slash that follows the host goes.
		{"https://api.example.com/mcp/", "https://api.example.com/.well-known/oauth-protected-resource/mcp/"},
		{"https://api.example.com/mcp/?t=a", "https://api.example.com/.well-known/oauth-protected-resource/mcp/?t=a"},
	}
	for _, tt := range tests {
		got, err := introspect.ResourceMetadataURL(tt.resource)
		require.NoError(t, err, tt.resource)
		assert.Equal(t, tt.want, got)
	}
	for _, bad := range []string{"", "api.example.com", "http://api.example.com", "https://api.example.com/#x", "https://api.example.com/mcp#", "https://u:p@api.example.com"} {
		_, err := introspect.ResourceMetadataURL(bad)
		assert.Error(t, err, bad)
	}
}

func TestResourceMetadataHandler(t *testing.T) {
	md := introspect.ResourceMetadata{
		Resource:               "https://api.example.com",
		AuthorizationServers:   []string{"https://as.example.com"},
		ScopesSupported:        []string{"read", "admin"},
		BearerMethodsSupported: []string{"header"},
	}
	h, err := introspect.ResourceMetadataHandler(md)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "https://api.example.com", got["resource"])
	assert.Equal(t, []any{"https://as.example.com"}, got["authorization_servers"])
	assert.NotContains(t, got, "resource_name", "empty members are left out")

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)

	for _, bad := range []introspect.ResourceMetadata{
		{},
		{Resource: "https://api.example.com", AuthorizationServers: []string{"http://as.example.com"}},
		{Resource: "https://api.example.com", BearerMethodsSupported: []string{"cookie"}},
	} {
		_, err := introspect.ResourceMetadataHandler(bad)
		assert.Error(t, err)
	}
}
