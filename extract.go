package introspect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
)

// Token is an access token taken off a request.
//
// Value is a credential: never log it. Its String method does not print it.
type Token struct {
	Value  string      `json:"-"` // the token; never in JSON
	Scheme string      // the authentication scheme, canonical spelling ("Bearer")
	Source TokenSource // where the token was found
}

// String describes the token without revealing it.
func (t Token) String() string { return t.Scheme + " token from " + t.Source.String() + " (redacted)" }

// GoString is String, so %#v does not reveal the token either.
func (t Token) GoString() string { return t.String() }

// Format writes String for every verb, so no verb of package fmt (%d and %x
// included, which otherwise print a struct's fields) reveals the token.
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue implements [slog.LogValuer] without the token, so log/slog's JSON
// handler does not print it either.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("scheme", t.Scheme), slog.String("source", t.Source.String()))
}

// TokenSource says where a token was found.
type TokenSource uint8

const (
	SourceNone   TokenSource = iota
	SourceHeader             // the Authorization header (RFC 6750 §2.1)
	SourceForm               // an access_token form-body parameter (RFC 6750 §2.2)
	SourceQuery              // an access_token query parameter (RFC 6750 §2.3)
	SourceCustom             // a custom [Extractor]
)

func (s TokenSource) String() string {
	switch s {
	case SourceHeader:
		return "header"
	case SourceForm:
		return "form"
	case SourceQuery:
		return "query"
	case SourceCustom:
		return "custom"
	}
	return "none"
}

// An Extractor takes the token off a request. It returns an error matching
// [ErrMissingToken] when the request carries none, and one matching
// [ErrInvalidRequest] when it is malformed. Errors must not contain the token.
type Extractor interface {
	Extract(r *http.Request) (Token, error)
}

// ExtractorFunc adapts a function to [Extractor].
type ExtractorFunc func(r *http.Request) (Token, error)

// Extract calls f(r).
func (f ExtractorFunc) Extract(r *http.Request) (Token, error) { return f(r) }

// Default limits of [BearerExtractor].
const (
	DefaultMaxTokenLength = 4 << 10 // 4 KiB
	DefaultMaxFormBody    = 1 << 20 // 1 MiB
)

// BearerExtractor is the RFC 6750 extractor. Its zero value reads only the
// Authorization header, the method RFC 6750 §2.1 says resource servers must
// support; the form body and the query are opt-in. A token found in more than
// one place is an invalid request.
//
// The header rules: the scheme "Bearer" is matched case-insensitively and is
// followed by one or more spaces and a b64token (RFC 6750 §2.1); anything else
// after the scheme is an invalid request. A request with more than one
// Authorization header is an invalid request. A header with another scheme
// (Basic, DPoP, ...) counts as no bearer token.
type BearerExtractor struct {
	// MaxLength bounds the token length. Zero or less means DefaultMaxTokenLength (4 KiB).
	MaxLength int
	// AllowFormBody accepts an access_token parameter in an
	// application/x-www-form-urlencoded body of a non-GET request (RFC 6750 §2.2).
	// The body stays readable for the handler. Default false.
	AllowFormBody bool
	// MaxFormBody bounds how much of such a body is read. Zero or less means
	// DefaultMaxFormBody (1 MiB); a larger body is an invalid request.
	MaxFormBody int64
	// AllowQuery accepts an access_token query parameter (RFC 6750 §2.3). Tokens
	// in URLs end up in logs and Referer headers: avoid it. Default false.
	AllowQuery bool
	// AllowDPoP accepts the DPoP scheme in the Authorization header (RFC
	// 9449 §7.1) next to Bearer, with the same token syntax; the token's
	// Scheme says which it was. A DPoP token is only half of a credential:
	// its proof must be checked, as the middleware does ([WithDPoP]), so set
	// this only for a consumer that checks it. The middleware sets it on its
	// extractor unless DPoP is off. Default false (DPoP counts as another
	// scheme, no bearer token).
	AllowDPoP bool
}

var _ Extractor = BearerExtractor{}

func invalidRequest(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidRequest, msg) }

// Extract implements [Extractor].
func (e BearerExtractor) Extract(r *http.Request) (Token, error) {
	max := e.MaxLength
	if max <= 0 {
		max = DefaultMaxTokenLength
	}
	tok, err := fromHeader(r.Header, max, e.AllowDPoP)
	if err != nil {
		return Token{}, err
	}
	if e.AllowFormBody {
		v, err := e.fromForm(r, max)
		if err != nil {
			return Token{}, err
		}
		if tok, err = pick(tok, v, SourceForm); err != nil {
			return Token{}, err
		}
	}
	if e.AllowQuery {
		v, err := fromValues(r.URL.Query(), max)
		if err != nil {
			return Token{}, err
		}
		if tok, err = pick(tok, v, SourceQuery); err != nil {
			return Token{}, err
		}
	}
	if tok.Value == "" {
		return Token{}, ErrMissingToken
	}
	return tok, nil
}

func pick(have Token, v string, src TokenSource) (Token, error) {
	if v == "" {
		return have, nil
	}
	if have.Value != "" {
		return Token{}, invalidRequest("token in more than one place")
	}
	return Token{Value: v, Scheme: "Bearer", Source: src}, nil
}

// fromHeader returns the zero Token when there is no bearer (or, with dpop
// set, DPoP) Authorization header.
func fromHeader(h http.Header, max int, dpop bool) (Token, error) {
	vs := h["Authorization"]
	switch len(vs) {
	case 0:
		return Token{}, nil
	case 1:
	default:
		return Token{}, invalidRequest("more than one Authorization header")
	}
	v := vs[0]
	scheme, canonical := "bearer", "Bearer"
	if dpop && len(v) >= len("dpop") && asciiEqualFold(v[:len("dpop")], "dpop") {
		scheme, canonical = "dpop", "DPoP"
	}
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return Token{}, nil // another scheme
	}
	rest := v[len(scheme):]
	if rest == "" {
		return Token{}, invalidRequest(scheme + " scheme without a token")
	}
	if rest[0] != ' ' {
		if isTokenChar(rest[0]) {
			return Token{}, nil // a longer scheme name such as "Bearerx"
		}
		return Token{}, invalidRequest("malformed Authorization header")
	}
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	t := rest[i:]
	if err := checkToken(t, max); err != nil {
		return Token{}, err
	}
	return Token{Value: t, Scheme: canonical, Source: SourceHeader}, nil
}

// checkToken enforces the size limit and the b64token syntax of RFC 6750 §2.1:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func checkToken(t string, max int) error {
	if t == "" {
		return invalidRequest("empty token")
	}
	if len(t) > max {
		return invalidRequest("token too long")
	}
	i := 0
	for i < len(t) && b64Chars[t[i]] {
		i++
	}
	if i == 0 {
		return invalidRequest("token is not a b64token")
	}
	for i < len(t) && t[i] == '=' {
		i++
	}
	if i != len(t) {
		return invalidRequest("token is not a b64token")
	}
	return nil
}

func isB64(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// b64Chars holds isB64 for every byte: checkToken reads every byte of every
// token, a table lookup each instead of up to ten comparisons.
var b64Chars = func() (t [256]bool) {
	for c := range t {
		t[c] = isB64(byte(c))
	}
	return t
}()

// isTokenChar reports whether c may appear in an RFC 9110 token (a scheme name).
func isTokenChar(c byte) bool {
	return isB64(c) && c != '/' || c == '!' || c == '#' || c == '$' || c == '%' ||
		c == '&' || c == '\'' || c == '*' || c == '^' || c == '`' || c == '|'
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// fromValues returns the access_token parameter, "" if absent.
func fromValues(v url.Values, max int) (string, error) {
	vs, ok := v["access_token"]
	if !ok {
		return "", nil
	}
	if len(vs) != 1 {
		return "", invalidRequest("access_token given more than once")
	}
	if err := checkToken(vs[0], max); err != nil {
		return "", err
	}
	return vs[0], nil
}

// fromForm reads the body of a form POST, bounded, and puts it back so the
// handler can read it again.
func (e BearerExtractor) fromForm(r *http.Request, max int) (string, error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return "", nil
	}
	limit := e.MaxFormBody
	if limit <= 0 {
		limit = DefaultMaxFormBody
	}
	n := limit
	if n < math.MaxInt64 {
		n++ // one byte more than allowed tells a body over the limit
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, n))
	// Put back what was read, followed by whatever is left, so the handler
	// sees the body unchanged.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	if err != nil {
		return "", invalidRequest("unreadable body")
	}
	if int64(len(body)) > limit {
		return "", invalidRequest("form body too large")
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return "", invalidRequest("malformed form body")
	}
	return fromValues(vals, max)
}

type tokenKey struct{}

// WithToken returns a copy of ctx carrying t.
func WithToken(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, t)
}

// TokenFromContext returns the token put on the context by
// [ExtractAuthorization]. It reports false if there is none.
func TokenFromContext(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok && t.Value != ""
}

// extracted reports whether ExtractAuthorization (or WithToken) ran for ctx,
// and the token it found, with an empty Value when there was none.
func extracted(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok
}

// ExtractAuthorization returns a middleware that only extracts: it puts the
// token, if any, on the request context for [TokenFromContext],
// [RequireAuthorization] and [Middleware.Handler], and answers a malformed
// request with 400 invalid_request through onError (nil means the RFC 6750
// default with no realm). A request without a token passes through. A nil ex
// means the zero [BearerExtractor].
//
// Placed in front of [Middleware.Handler] (or [Middleware.Authenticate]), it
// decides where the token comes from: the middleware then uses what it found
// (no token included) instead of extracting again with its own
// [WithExtractor], as oidcc_plug's ExtractAuthorization feeds its
// IntrospectToken:
//
//	ExtractAuthorization(BearerExtractor{AllowQuery: true}, nil)(mw.Handler(api))
//
// Most users want [New] alone, which extracts, introspects and responds in
// one step.
func ExtractAuthorization(ex Extractor, onError ErrorResponder) func(http.Handler) http.Handler {
	if ex == nil {
		ex = BearerExtractor{}
	}
	if onError == nil {
		onError = defaultErrorResponder("", "", DPoPOff, nil)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, err := ex.Extract(r)
			switch {
			case err == nil:
				next.ServeHTTP(w, r.WithContext(WithToken(r.Context(), t)))
			case isMissing(err):
				// The empty token records that extraction ran and found none.
				next.ServeHTTP(w, r.WithContext(WithToken(r.Context(), Token{})))
			default:
				onError(w, r, err)
			}
		})
	}
}

// RequireAuthorization returns a middleware that answers 401 through onError
// (nil means the RFC 6750 default with no realm) unless [ExtractAuthorization]
// found a token.
//
// It checks that a token is THERE, not that it is valid: any string in the
// Authorization header passes. It never protects a handler alone; put
// [Middleware.Handler] behind it, which asks the authorization server:
//
//	ExtractAuthorization(ex, nil)(RequireAuthorization(nil)(mw.Handler(api)))
func RequireAuthorization(onError ErrorResponder) func(http.Handler) http.Handler {
	if onError == nil {
		onError = defaultErrorResponder("", "", DPoPOff, nil)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := TokenFromContext(r.Context()); !ok {
				onError(w, r, ErrMissingToken)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
