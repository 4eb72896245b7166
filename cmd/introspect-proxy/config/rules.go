package config

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/introspect-go/introspect"
)

// ParseScopeRule reads a -require-scope rule, "[METHOD ]PREFIX=SCOPE,...":
// an optional method, a path prefix starting with "/" (without "="), and
// the scopes a token needs, all of them, each an RFC 6749 scope token.
func ParseScopeRule(s string) (ScopeRule, error) {
	left, right, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return ScopeRule{}, fmt.Errorf("%s: want [METHOD ]PREFIX=SCOPE[,SCOPE...]", quote(s))
	}
	var r ScopeRule
	left = strings.TrimSpace(left)
	if method, prefix, ok := strings.Cut(left, " "); ok {
		r.Method, r.Prefix = strings.ToUpper(method), strings.TrimSpace(prefix)
		if !isToken(r.Method) {
			return ScopeRule{}, fmt.Errorf("%s: %s is not an HTTP method", quote(s), quote(method))
		}
	} else {
		r.Prefix = left
	}
	if !strings.HasPrefix(r.Prefix, "/") {
		return ScopeRule{}, fmt.Errorf("%s: the path prefix must start with /", quote(s))
	}
	spaceOrControl := func(c rune) bool { return c <= ' ' || c == 0x7f }
	if strings.ContainsFunc(r.Prefix, spaceOrControl) {
		return ScopeRule{}, fmt.Errorf("%s: the path prefix holds a space or a control character", quote(s))
	}
	// Rules match the decoded path: "/a%2Fb" would never match, and its
	// rule would never apply.
	if d, err := url.PathUnescape(r.Prefix); err == nil && d != r.Prefix {
		if strings.ContainsFunc(d, spaceOrControl) {
			return ScopeRule{}, fmt.Errorf("%s: the path prefix is matched against the decoded path, where it holds a space or a control character", quote(s))
		}
		return ScopeRule{}, fmt.Errorf("%s: the path prefix is matched against the decoded path: write it decoded, %s", quote(s), quote(d))
	}
	for _, sc := range strings.Split(right, ",") {
		r.Scopes = append(r.Scopes, strings.TrimSpace(sc))
	}
	if err := introspect.CheckScopes(r.Scopes); err != nil {
		return ScopeRule{}, fmt.Errorf("%s: %s", quote(s), strings.TrimPrefix(err.Error(), "introspect: "))
	}
	return r, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2): the syntax
// of methods and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}

// validClaimName reports whether a claim can name a header: letters,
// digits, '-', '_' and '.'.
func validClaimName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// ClaimHeader is the header of claim name under prefix: the prefix,
// "Claim-" and the name with '_' written '-', in canonical form.
func ClaimHeader(prefix, name string) string {
	return http.CanonicalHeaderKey(prefix + "Claim-" + strings.ReplaceAll(name, "_", "-"))
}

// UserinfoHeader is the header of the userinfo claim name under prefix: the
// prefix, "Userinfo-" and the name with '_' written '-', in canonical form.
func UserinfoHeader(prefix, name string) string {
	return http.CanonicalHeaderKey(prefix + "Userinfo-" + strings.ReplaceAll(name, "_", "-"))
}

// headerFold is a header name as the services behind the proxy may read it:
// CGI, WSGI, Rack and PHP turn both '-' and '_' into '_' and ignore case,
// so "X-Auth_Subject" is "X-Auth-Subject" to them.
func headerFold(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// HasPrefixFold reports whether header name starts with prefix as the
// services behind the proxy may read it: regardless of case, '_' taken for
// '-'. The proxy removes every such header a client sends. It compares
// bytes, without allocating: it runs on every header of every request, and
// header names are ASCII (net/http refuses any other byte in them).
func HasPrefixFold(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldByte(name[i]) != foldByte(prefix[i]) {
			return false
		}
	}
	return true
}

// foldByte is a byte of a header name as headerFold writes it: an ASCII
// letter in lower case, '_' as '-'.
func foldByte(b byte) byte {
	switch {
	case 'A' <= b && b <= 'Z':
		return b + ('a' - 'A')
	case b == '_':
		return '-'
	}
	return b
}

// protectedHeaders are headers an identity header prefix must not cover,
// since the proxy removes every header with the prefix.
var protectedHeaders = []string{
	"Accept", "Authorization", "Connection", "Content-Length", "Content-Type", "Cookie", "Dpop",
	"Forwarded", "Host", "Origin", "Referer", "Sec-Websocket-Key", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Original-Uri", "X-Original-Method", "X-Forwarded-Uri",
	"X-Forwarded-Method", "X-Real-Ip", "X-Request-Id",
}
