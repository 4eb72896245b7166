package introspect_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// ExtractAuthorization in front of the middleware decides where the token
// comes from: the middleware uses its finding, a missing token included,
// and never extracts again with its own extractor.
func TestExtractAuthorizationFeedsMiddleware(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	strict := newMW(t, as) // its own extractor: the Authorization header only
	formMW := newMW(t, as, introspect.WithExtractor(introspect.BearerExtractor{AllowFormBody: true}))
	optional := newMW(t, as, introspect.WithOptionalToken())
	query := introspect.ExtractAuthorization(introspect.BearerExtractor{AllowQuery: true}, nil)
	header := introspect.ExtractAuthorization(nil, nil)
	require := introspect.RequireAuthorization(nil)

	inQuery := func(v string) *http.Request {
		return httptest.NewRequest(http.MethodGet, "/api?access_token="+url.QueryEscape(v), nil)
	}
	inForm := func(v string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/api", strings.NewReader("access_token="+url.QueryEscape(v)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	tests := []struct {
		name string
		h    http.Handler
		r    *http.Request
		want int
		body string
	}{
		{"query token extracted in front", query(strict.Handler(okHandler)), inQuery(tok), 200, "sub=alice"},
		{"query token through RequireAuthorization", query(require(strict.Handler(okHandler))), inQuery(tok), 200, "sub=alice"},
		{"header token still works", query(strict.Handler(okHandler)), bearer(tok), 200, "sub=alice"},
		{"no token: RequireAuthorization answers 401", query(require(strict.Handler(okHandler))), bearer(""), 401, ""},
		{"an invalid token passes RequireAuthorization, not the middleware", query(require(strict.Handler(okHandler))), inQuery("not-issued"), 401, "invalid_token"},
		{"malformed: 400 from the extract step", query(strict.Handler(okHandler)), inQuery("bad token"), 400, "invalid_request"},
		{"what the extract step did not find is not looked for again", header(formMW.Handler(okHandler)), inForm(tok), 401, ""},
		{"without the extract step the middleware's own extractor runs", formMW.Handler(okHandler), inForm(tok), 200, "sub=alice"},
		{"optional token: none found in front", header(optional.Handler(okHandler)), bearer(""), 200, "anonymous"},
		{"optional token: found in front", query(optional.Handler(okHandler)), inQuery(tok), 200, "sub=alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(tt.h, tt.r)
			assert.Equal(t, tt.want, res.status)
			assert.Contains(t, res.body, tt.body)
		})
	}
}
