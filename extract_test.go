package introspect_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

// secretTok is a token that must never appear in an error or a response.
const secretTok = "s3cr3tTok3n"

func newRequest(t *testing.T, method, target, contentType, body string, auth ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return r
}

// checkExtract asserts the outcome of an extraction: the token and its source
// on success, the verdict of the error otherwise, and never the token in an
// error.
func checkExtract(t *testing.T, tok introspect.Token, err error, want string, wantSrc introspect.TokenSource, wantErr error) {
	t.Helper()
	if wantErr != nil {
		require.Error(t, err)
		assert.ErrorIs(t, err, wantErr)
		if errors.Is(wantErr, introspect.ErrMissingToken) {
			assert.NotErrorIs(t, err, introspect.ErrInvalidRequest)
		} else {
			assert.NotErrorIs(t, err, introspect.ErrMissingToken)
		}
		assert.NotContains(t, err.Error(), secretTok)
		assert.Empty(t, tok.Value)
		return
	}
	require.NoError(t, err)
	assert.Equal(t, want, tok.Value)
	assert.Equal(t, "Bearer", tok.Scheme)
	assert.Equal(t, wantSrc, tok.Source)
}

func TestBearerExtractorHeader(t *testing.T) {
	atLimit := strings.Repeat("a", introspect.DefaultMaxTokenLength-len(secretTok)) + secretTok
	tests := []struct {
		name    string
		ex      introspect.BearerExtractor
		auth    []string // Authorization header lines
		want    string
		wantErr error
	}{
		{name: "no header", wantErr: introspect.ErrMissingToken},
		{name: "empty header", auth: []string{""}, wantErr: introspect.ErrMissingToken},
		{name: "canonical", auth: []string{"Bearer " + secretTok}, want: secretTok},
		{name: "lower case scheme", auth: []string{"bearer " + secretTok}, want: secretTok},
		{name: "upper case scheme", auth: []string{"BEARER " + secretTok}, want: secretTok},
		{name: "mixed case scheme", auth: []string{"bEaReR " + secretTok}, want: secretTok},
		{name: "several spaces", auth: []string{"Bearer    " + secretTok}, want: secretTok},
		{name: "all b64token characters", auth: []string{"Bearer AZaz09-._~+/" + secretTok}, want: "AZaz09-._~+/" + secretTok},
		{name: "one trailing =", auth: []string{"Bearer " + secretTok + "="}, want: secretTok + "="},
		{name: "trailing ==", auth: []string{"Bearer " + secretTok + "=="}, want: secretTok + "=="},
		{name: "= inside", auth: []string{"Bearer " + secretTok + "=x"}, wantErr: introspect.ErrInvalidRequest},
		{name: "= only", auth: []string{"Bearer ==="}, wantErr: introspect.ErrInvalidRequest},
		{name: "leading =", auth: []string{"Bearer =" + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "tab instead of space", auth: []string{"Bearer\t" + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "comma after scheme", auth: []string{"Bearer," + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "space inside token", auth: []string{"Bearer " + secretTok + " x"}, wantErr: introspect.ErrInvalidRequest},
		{name: "trailing space", auth: []string{"Bearer " + secretTok + " "}, wantErr: introspect.ErrInvalidRequest},
		{name: "comma", auth: []string{"Bearer " + secretTok + ",x"}, wantErr: introspect.ErrInvalidRequest},
		{name: "quote", auth: []string{`Bearer "` + secretTok + `"`}, wantErr: introspect.ErrInvalidRequest},
		{name: "semicolon", auth: []string{"Bearer " + secretTok + ";"}, wantErr: introspect.ErrInvalidRequest},
		{name: "percent", auth: []string{"Bearer " + secretTok + "%41"}, wantErr: introspect.ErrInvalidRequest},
		{name: "NUL", auth: []string{"Bearer " + secretTok + "\x00"}, wantErr: introspect.ErrInvalidRequest},
		{name: "non-ASCII", auth: []string{"Bearer " + secretTok + "é"}, wantErr: introspect.ErrInvalidRequest},
		{name: "auth-param syntax", auth: []string{"Bearer token=" + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "scheme only", auth: []string{"Bearer"}, wantErr: introspect.ErrInvalidRequest},
		{name: "scheme and space", auth: []string{"Bearer "}, wantErr: introspect.ErrInvalidRequest},
		{name: "scheme and spaces", auth: []string{"Bearer     "}, wantErr: introspect.ErrInvalidRequest},
		{name: "Basic", auth: []string{"Basic " + secretTok}, wantErr: introspect.ErrMissingToken},
		{name: "DPoP", auth: []string{"DPoP " + secretTok}, wantErr: introspect.ErrMissingToken},
		{name: "longer scheme name", auth: []string{"Bearerx " + secretTok}, wantErr: introspect.ErrMissingToken},
		{name: "shorter scheme name", auth: []string{"Bear " + secretTok}, wantErr: introspect.ErrMissingToken},
		{name: "two Bearer headers", auth: []string{"Bearer " + secretTok, "Bearer other"}, wantErr: introspect.ErrInvalidRequest},
		{name: "same header twice", auth: []string{"Bearer " + secretTok, "Bearer " + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "Basic and Bearer", auth: []string{"Basic dXNlcjpwYXNz", "Bearer " + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "exactly the default limit", auth: []string{"Bearer " + atLimit}, want: atLimit},
		{name: "one over the default limit", auth: []string{"Bearer " + atLimit + "a"}, wantErr: introspect.ErrInvalidRequest},
		{name: "negative MaxLength is the default", ex: introspect.BearerExtractor{MaxLength: -1}, auth: []string{"Bearer " + atLimit}, want: atLimit},
		{name: "exactly a custom limit", ex: introspect.BearerExtractor{MaxLength: 12}, auth: []string{"Bearer " + secretTok + "="}, want: secretTok + "="},
		{name: "one over a custom limit", ex: introspect.BearerExtractor{MaxLength: 12}, auth: []string{"Bearer " + secretTok + "=="}, wantErr: introspect.ErrInvalidRequest},
		{name: "custom limit above the default", ex: introspect.BearerExtractor{MaxLength: 8 << 10}, auth: []string{"Bearer " + atLimit + atLimit}, want: atLimit + atLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, http.MethodGet, "/", "", "", tt.auth...)
			tok, err := tt.ex.Extract(r)
			checkExtract(t, tok, err, tt.want, introspect.SourceHeader, tt.wantErr)
		})
	}
}

func TestBearerExtractorFormAndQuery(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	formOn := introspect.BearerExtractor{AllowFormBody: true}
	queryOn := introspect.BearerExtractor{AllowQuery: true}
	both := introspect.BearerExtractor{AllowFormBody: true, AllowQuery: true}
	tests := []struct {
		name        string
		ex          introspect.BearerExtractor
		method      string
		target      string
		contentType string
		body        string
		auth        []string
		want        string
		wantSrc     introspect.TokenSource
		wantErr     error
	}{
		{name: "form POST", ex: formOn, method: "POST", contentType: form, body: "a=1&access_token=" + secretTok + "&b=2", want: secretTok, wantSrc: introspect.SourceForm},
		{name: "form POST with charset", ex: formOn, method: "POST", contentType: form + "; charset=UTF-8", body: "access_token=" + secretTok, want: secretTok, wantSrc: introspect.SourceForm},
		{name: "form PUT", ex: formOn, method: "PUT", contentType: form, body: "access_token=" + secretTok, want: secretTok, wantSrc: introspect.SourceForm},
		{name: "form with escaped padding", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok + "%3D%3D", want: secretTok + "==", wantSrc: introspect.SourceForm},
		{name: "form not enabled", method: "POST", contentType: form, body: "access_token=" + secretTok, wantErr: introspect.ErrMissingToken},
		{name: "form GET ignored", ex: formOn, method: "GET", contentType: form, body: "access_token=" + secretTok, wantErr: introspect.ErrMissingToken},
		{name: "JSON body ignored", ex: formOn, method: "POST", contentType: "application/json", body: `{"access_token":"` + secretTok + `"}`, wantErr: introspect.ErrMissingToken},
		{name: "multipart ignored", ex: formOn, method: "POST", contentType: "multipart/form-data; boundary=x", body: "--x\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\n" + secretTok + "\r\n--x--\r\n", wantErr: introspect.ErrMissingToken},
		{name: "no content type ignored", ex: formOn, method: "POST", body: "access_token=" + secretTok, wantErr: introspect.ErrMissingToken},
		{name: "form without the parameter", ex: formOn, method: "POST", contentType: form, body: "a=1", wantErr: introspect.ErrMissingToken},
		{name: "empty form body", ex: formOn, method: "POST", contentType: form, wantErr: introspect.ErrMissingToken},
		{name: "form access_token twice", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok + "&access_token=" + secretTok, wantErr: introspect.ErrInvalidRequest},
		{name: "form empty access_token", ex: formOn, method: "POST", contentType: form, body: "access_token=", wantErr: introspect.ErrInvalidRequest},
		{name: "form bad characters", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok + "%20x", wantErr: introspect.ErrInvalidRequest},
		{name: "form bad escape", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok + "%zz", wantErr: introspect.ErrInvalidRequest},
		{name: "form token over the limit", ex: introspect.BearerExtractor{AllowFormBody: true, MaxLength: 4}, method: "POST", contentType: form, body: "access_token=" + secretTok, wantErr: introspect.ErrInvalidRequest},
		{name: "form body exactly at its limit", ex: introspect.BearerExtractor{AllowFormBody: true, MaxFormBody: int64(len("access_token=" + secretTok))}, method: "POST", contentType: form, body: "access_token=" + secretTok, want: secretTok, wantSrc: introspect.SourceForm},
		{name: "form body one over its limit", ex: introspect.BearerExtractor{AllowFormBody: true, MaxFormBody: int64(len("access_token=" + secretTok))}, method: "POST", contentType: form, body: "access_token=" + secretTok + "&", wantErr: introspect.ErrInvalidRequest},
		{name: "form body over the default limit", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok + "&pad=" + strings.Repeat("a", introspect.DefaultMaxFormBody), wantErr: introspect.ErrInvalidRequest},
		{name: "form body limit of MaxInt64", ex: introspect.BearerExtractor{AllowFormBody: true, MaxFormBody: math.MaxInt64}, method: "POST", contentType: form, body: "access_token=" + secretTok, want: secretTok, wantSrc: introspect.SourceForm},
		{name: "header and form", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok, auth: []string{"Bearer " + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "Basic header and form", ex: formOn, method: "POST", contentType: form, body: "access_token=" + secretTok, auth: []string{"Basic dXNlcjpwYXNz"}, want: secretTok, wantSrc: introspect.SourceForm},
		{name: "query", ex: queryOn, method: "GET", target: "/?access_token=" + secretTok, want: secretTok, wantSrc: introspect.SourceQuery},
		{name: "query not enabled", method: "GET", target: "/?access_token=" + secretTok, wantErr: introspect.ErrMissingToken},
		{name: "query twice", ex: queryOn, method: "GET", target: "/?access_token=" + secretTok + "&access_token=x", wantErr: introspect.ErrInvalidRequest},
		{name: "query bad characters", ex: queryOn, method: "GET", target: "/?access_token=" + secretTok + "%22", wantErr: introspect.ErrInvalidRequest},
		{name: "query over the limit", ex: introspect.BearerExtractor{AllowQuery: true, MaxLength: 4}, method: "GET", target: "/?access_token=" + secretTok, wantErr: introspect.ErrInvalidRequest},
		{name: "header and query", ex: queryOn, method: "GET", target: "/?access_token=" + secretTok, auth: []string{"Bearer " + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "form and query", ex: both, method: "POST", target: "/?access_token=" + secretTok, contentType: form, body: "access_token=" + secretTok, wantErr: introspect.ErrInvalidRequest},
		{name: "header, form and query", ex: both, method: "POST", target: "/?access_token=" + secretTok, contentType: form, body: "access_token=" + secretTok, auth: []string{"Bearer " + secretTok}, wantErr: introspect.ErrInvalidRequest},
		{name: "both enabled, header only", ex: both, method: "POST", contentType: form, body: "a=1", auth: []string{"Bearer " + secretTok}, want: secretTok, wantSrc: introspect.SourceHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/"
			}
			r := newRequest(t, tt.method, target, tt.contentType, tt.body, tt.auth...)
			tok, err := tt.ex.Extract(r)
			checkExtract(t, tok, err, tt.want, tt.wantSrc, tt.wantErr)
			// Whatever the outcome, the body is intact for the handler.
			got, rerr := io.ReadAll(r.Body)
			require.NoError(t, rerr)
			assert.Equal(t, tt.body, string(got), "body after extraction")
		})
	}
}

// closeRecorder records whether Close was called on the original body.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestBearerExtractorFormBodyStaysReadable(t *testing.T) {
	tests := []struct {
		name    string
		max     int64
		body    string
		wantErr error
	}{
		{name: "small body read whole", max: 0, body: "access_token=" + secretTok + "&x=" + strings.Repeat("y", 1000)},
		{name: "body larger than what was read", max: 64, body: "access_token=" + secretTok + "&x=" + strings.Repeat("y", 100_000), wantErr: introspect.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := &closeRecorder{Reader: strings.NewReader(tt.body)}
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Body = orig
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			_, err := introspect.BearerExtractor{AllowFormBody: true, MaxFormBody: tt.max}.Extract(r)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			got, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.body, string(got))
			require.NoError(t, r.Body.Close())
			assert.True(t, orig.closed, "closing the request body closes the original")
		})
	}
}

func TestBearerExtractorFormHandlerSeesForm(t *testing.T) {
	// A handler behind the middleware can still parse the form.
	body := "access_token=" + secretTok + "&name=gopher"
	var gotName string
	var gotTok introspect.Token
	h := introspect.ExtractAuthorization(introspect.BearerExtractor{AllowFormBody: true}, nil)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotTok, _ = introspect.TokenFromContext(r.Context())
			gotName = r.PostFormValue("name")
		}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest(t, http.MethodPost, "/", "application/x-www-form-urlencoded", body))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "gopher", gotName)
	assert.Equal(t, secretTok, gotTok.Value)
	assert.Equal(t, introspect.SourceForm, gotTok.Source)
}

func TestCustomExtractor(t *testing.T) {
	ex := introspect.ExtractorFunc(func(r *http.Request) (introspect.Token, error) {
		v := r.Header.Get("X-Api-Token")
		switch {
		case v == "":
			return introspect.Token{}, introspect.ErrMissingToken
		case v == "broken":
			return introspect.Token{}, errors.New("extractor failed")
		case strings.ContainsAny(v, " ,"):
			return introspect.Token{}, fmt.Errorf("%w: bad X-Api-Token", introspect.ErrInvalidRequest)
		}
		return introspect.Token{Value: v, Scheme: "Bearer", Source: introspect.SourceCustom}, nil
	})
	tests := []struct {
		name       string
		header     string
		wantStatus int
		wantTok    string
	}{
		{name: "token", header: secretTok, wantStatus: http.StatusOK, wantTok: secretTok},
		{name: "no token passes through", wantStatus: http.StatusOK},
		{name: "invalid request", header: secretTok + " x", wantStatus: http.StatusBadRequest},
		{name: "unclassified error fails closed", header: "broken", wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called bool
			var got introspect.Token
			h := introspect.ExtractAuthorization(ex, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				got, _ = introspect.TokenFromContext(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header.Set("X-Api-Token", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Equal(t, tt.wantStatus == http.StatusOK, called)
			assert.Equal(t, tt.wantTok, got.Value)
			assert.NotContains(t, rec.Body.String(), secretTok)
			assert.NotContains(t, rec.Header().Get("WWW-Authenticate"), secretTok)
		})
	}
}

func TestExtractAndRequireAuthorization(t *testing.T) {
	tests := []struct {
		name       string
		auth       []string
		wantStatus int
		wantChall  string // exact WWW-Authenticate, "" for none
		wantTok    string
	}{
		{name: "token", auth: []string{"Bearer " + secretTok}, wantStatus: http.StatusOK, wantTok: secretTok},
		{name: "no token", wantStatus: http.StatusUnauthorized, wantChall: "Bearer"},
		{name: "Basic is no bearer token", auth: []string{"Basic " + secretTok}, wantStatus: http.StatusUnauthorized, wantChall: "Bearer"},
		{name: "malformed", auth: []string{"Bearer " + secretTok + " x"}, wantStatus: http.StatusBadRequest, wantChall: `Bearer error="invalid_request", error_description="the request is malformed"`},
		{name: "two headers", auth: []string{"Bearer " + secretTok, "Bearer " + secretTok}, wantStatus: http.StatusBadRequest, wantChall: `Bearer error="invalid_request", error_description="the request is malformed"`},
		{name: "over-long", auth: []string{"Bearer " + secretTok + strings.Repeat("a", introspect.DefaultMaxTokenLength)}, wantStatus: http.StatusBadRequest, wantChall: `Bearer error="invalid_request", error_description="the request is malformed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got introspect.Token
			var ok bool
			h := introspect.ExtractAuthorization(nil, nil)(introspect.RequireAuthorization(nil)(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					got, ok = introspect.TokenFromContext(r.Context())
					w.WriteHeader(http.StatusOK)
				})))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, tt.wantChall, resp.Header.Get("WWW-Authenticate"))
			assert.Len(t, resp.Header.Values("WWW-Authenticate"), min(1, len(tt.wantChall)))
			assert.NotContains(t, string(body), secretTok)
			for k, vs := range resp.Header {
				for _, v := range vs {
					assert.NotContains(t, v, secretTok, "header %s", k)
				}
			}
			if tt.wantStatus == http.StatusOK {
				assert.True(t, ok)
				assert.Equal(t, tt.wantTok, got.Value)
				assert.Equal(t, introspect.SourceHeader, got.Source)
			}
			if tt.wantStatus == http.StatusBadRequest {
				var e struct{ Error string }
				require.NoError(t, json.Unmarshal(body, &e))
				assert.Equal(t, "invalid_request", e.Error)
			}
		})
	}
}

func TestExtractAuthorizationAlonePassesThrough(t *testing.T) {
	var called, ok bool
	h := introspect.ExtractAuthorization(nil, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		_, ok = introspect.TokenFromContext(r.Context())
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.True(t, called)
	assert.False(t, ok)
}

func TestExtractAuthorizationCustomResponder(t *testing.T) {
	var gotErr error
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(http.StatusTeapot)
	}
	h := introspect.ExtractAuthorization(nil, onError)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler reached")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest(t, http.MethodGet, "/", "", "", "Bearer "+secretTok+"\"x"))
	assert.Equal(t, http.StatusTeapot, rec.Code)
	assert.ErrorIs(t, gotErr, introspect.ErrInvalidRequest)
	assert.NotContains(t, gotErr.Error(), secretTok)
}

func TestTokenFromContext(t *testing.T) {
	ctx := t.Context()
	_, ok := introspect.TokenFromContext(ctx)
	assert.False(t, ok, "empty context")
	_, ok = introspect.TokenFromContext(introspect.WithToken(ctx, introspect.Token{}))
	assert.False(t, ok, "zero token")
	want := introspect.Token{Value: secretTok, Scheme: "Bearer", Source: introspect.SourceQuery}
	got, ok := introspect.TokenFromContext(introspect.WithToken(ctx, want))
	assert.True(t, ok)
	assert.Equal(t, want, got)
}

func TestTokenNeverPrinted(t *testing.T) {
	tok := introspect.Token{Value: secretTok, Scheme: "Bearer", Source: introspect.SourceHeader}
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outs[verb] = fmt.Sprintf(verb, tok)
		outs["pointer "+verb] = fmt.Sprintf(verb, &tok)
	}
	outs["in a struct"] = fmt.Sprintf("%+v", struct{ T introspect.Token }{tok})
	outs["in a slice"] = fmt.Sprintf("%v", []introspect.Token{tok})
	outs["String"] = tok.String()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("request", "token", tok)
	outs["slog JSON"] = buf.String()
	buf.Reset()
	slog.New(slog.NewTextHandler(&buf, nil)).Info("request", "token", tok)
	outs["slog text"] = buf.String()
	for name, out := range outs {
		assert.NotContains(t, out, secretTok, name)
	}
	assert.Equal(t, "Bearer token from header (redacted)", tok.String())
	assert.Contains(t, outs["slog JSON"], "header")
}

func TestTokenSourceString(t *testing.T) {
	for src, want := range map[introspect.TokenSource]string{
		introspect.SourceNone:       "none",
		introspect.SourceHeader:     "header",
		introspect.SourceForm:       "form",
		introspect.SourceQuery:      "query",
		introspect.SourceCustom:     "custom",
		introspect.TokenSource(200): "none",
	} {
		assert.Equal(t, want, src.String())
	}
}
