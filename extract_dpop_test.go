package introspect_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

// The DPoP scheme is read only when asked for, with Bearer's token rules;
// the token says which scheme it came with.
func TestExtractDPoPScheme(t *testing.T) {
	tests := []struct {
		name, header string
		allow        bool
		scheme       string
		err          error
	}{
		{"DPoP allowed", "DPoP abc.def", true, "DPoP", nil},
		{"case-insensitive", "dpop   abc", true, "DPoP", nil},
		{"Bearer still read", "Bearer abc", true, "Bearer", nil},
		{"DPoP not allowed: no bearer token", "DPoP abc", false, "", introspect.ErrMissingToken},
		{"a longer scheme name", "DPoPx abc", true, "", introspect.ErrMissingToken},
		{"no token", "DPoP", true, "", introspect.ErrInvalidRequest},
		{"bad token", "DPoP a b", true, "", introspect.ErrInvalidRequest},
		{"bad separator", "DPoP\tabc", true, "", introspect.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", tt.header)
			tok, err := introspect.BearerExtractor{AllowDPoP: tt.allow}.Extract(r)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.scheme, tok.Scheme)
			assert.Equal(t, introspect.SourceHeader, tok.Source)
		})
	}
}
