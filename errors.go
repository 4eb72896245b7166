package introspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The verdicts. Every error returned by [Middleware.Authenticate] and
// [Client.Introspect] matches exactly one of ErrMissingToken, ErrInvalidRequest,
// ErrInactiveToken, ErrInsufficientScope or ErrUnavailable with [errors.Is];
// [StatusCode] maps them to the HTTP status of the answer: 401, 400, 401, 403
// and 503 in that order.
var (
	// ErrMissingToken: the request carries no bearer token (401, no error code).
	ErrMissingToken = errors.New("introspect: no bearer token")
	// ErrInvalidRequest: the request is malformed (400 invalid_request): more than
	// one Authorization header, bad token syntax, an over-long token, a token in
	// two places.
	ErrInvalidRequest = errors.New("introspect: invalid request")
	// ErrInactiveToken: the token is not valid (401 invalid_token). The
	// authorization server said it is not active, or a local check refused it;
	// the more specific errors below wrap it.
	ErrInactiveToken = errors.New("introspect: token is not active")
	// ErrInsufficientScope: the token lacks a required scope or audience (403).
	// The concrete error is an [*InsufficientScopeError].
	ErrInsufficientScope = errors.New("introspect: insufficient scope")
	// ErrUnavailable: no verdict was possible (503): the authorization server is
	// unreachable, slow, answered with an error or with something unparsable, or
	// refused our client credentials. Requests fail closed.
	ErrUnavailable = errors.New("introspect: authorization server unavailable")
)

// Reasons for refusing an active token locally. Each wraps [ErrInactiveToken].
var (
	ErrTokenExpired        = fmt.Errorf("%w: expired", ErrInactiveToken)
	ErrTokenNotYetValid    = fmt.Errorf("%w: not yet valid", ErrInactiveToken)
	ErrTokenIssuedInFuture = fmt.Errorf("%w: issued in the future", ErrInactiveToken)
	ErrIssuerMismatch      = fmt.Errorf("%w: unexpected issuer", ErrInactiveToken)
	ErrAudienceMismatch    = fmt.Errorf("%w: unexpected audience", ErrInactiveToken)
	ErrClientNotAllowed    = fmt.Errorf("%w: client not allowed", ErrInactiveToken)
	ErrTokenBinding        = fmt.Errorf("%w: token binding not satisfied", ErrInactiveToken)
)

// Reasons the authorization server's answer could not be used. Each wraps
// [ErrUnavailable], and so do [ErrDiscovery] (no usable metadata or keys) and
// [ErrEncryptedResponse] (a JWE answer).
var (
	ErrMalformedResponse = fmt.Errorf("%w: malformed response", ErrUnavailable)
	ErrResponseTooLarge  = fmt.Errorf("%w: response too large", ErrUnavailable)
	ErrClientConfig      = fmt.Errorf("%w: client configuration", ErrUnavailable)
)

// Why the HTTP exchange with the authorization server (or a discovery
// document's server) ended without an answer. Each wraps [ErrUnavailable].
// A timeout matches [context.DeadlineExceeded] instead, and a cancellation
// [context.Canceled]; a failure none of these describe matches
// ErrUnavailable alone.
//
// The text of such an error is the package's own: it names the class and
// perhaps a detail ("cannot connect: connection refused"), never the text of
// net/http, crypto/tls or the network, which may repeat what the other side
// sent (a status line, a header, the names in a certificate).
var (
	// ErrConnect: no connection could be made: the host name did not
	// resolve, the connection was refused, or the host was unreachable.
	ErrConnect = fmt.Errorf("%w: cannot connect", ErrUnavailable)
	// ErrTLS: the TLS handshake failed: the server's certificate is not
	// trusted or not valid for the host, the server does not speak TLS, or
	// one side refused the other's parameters.
	ErrTLS = fmt.Errorf("%w: TLS handshake failed", ErrUnavailable)
	// ErrConnectionLost: the connection was reset or closed before the answer
	// was complete, or reading the answer failed.
	ErrConnectionLost = fmt.Errorf("%w: connection lost", ErrUnavailable)
	// ErrMalformedHTTP: the answer is not well-formed HTTP: a bad status line,
	// header or chunked encoding, or headers larger than the transport
	// accepts. It does not match [ErrMalformedResponse], which is about the
	// content of a well-formed answer.
	ErrMalformedHTTP = fmt.Errorf("%w: malformed HTTP answer", ErrUnavailable)
)

// ResponseError is the authorization server's non-200 answer: a rejected client
// authentication (400/401 invalid_client), a rate limit (429), a server error
// (5xx) or any other status. It matches [ErrUnavailable] with [errors.Is], except
// that an `invalid_token` error code is turned into [ErrInactiveToken] by the
// client before it reaches the caller.
//
// Description is the server's error_description, kept for logs; it is never
// written into a response and never part of Error.
type ResponseError struct {
	StatusCode  int           // HTTP status of the answer
	ErrorCode   string        // RFC 6749 §5.2 "error" member, if any (sanitized)
	Description string        // "error_description" member, if any: the server's text, sanitized and cut short; never in Error or GoString
	RetryAfter  time.Duration // from a Retry-After header with delay-seconds, if any
}

// Error names the status and, when it is a registered OAuth error code, the
// error code. Other codes are not repeated: a server could put anything
// there, even the token.
func (e *ResponseError) Error() string {
	var b strings.Builder
	b.WriteString("introspect: authorization server answered ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	switch {
	case registeredErrorCodes[e.ErrorCode]:
		b.WriteString(" ")
		b.WriteString(e.ErrorCode)
	case e.ErrorCode != "":
		b.WriteString(" with an unregistered error code")
	}
	return b.String()
}

// registeredErrorCodes are the error codes of RFC 6749 §5.2, RFC 6750 §3.1
// and RFC 7591 §3.2.2 that an introspection endpoint may answer.
var registeredErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
	"invalid_token": true, "insufficient_scope": true, "access_denied": true,
	"server_error": true, "temporarily_unavailable": true, "unsupported_token_type": true,
	"invalid_client_metadata": true,
}

// Format prints Error's text whatever the verb, so that %#v or %d print
// nothing the server chose either: Description, and an unregistered
// ErrorCode, are the server's text, there for a caller who reads them on
// purpose.
func (e *ResponseError) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, e.Error()) }

// MarshalJSON writes the status and, when it is a registered OAuth error
// code, the error code: no text the server chose.
func (e *ResponseError) MarshalJSON() ([]byte, error) {
	v := struct {
		StatusCode int    `json:"status_code"`
		ErrorCode  string `json:"error,omitempty"`
	}{StatusCode: e.StatusCode}
	if registeredErrorCodes[e.ErrorCode] {
		v.ErrorCode = e.ErrorCode
	}
	return json.Marshal(v)
}

// Unwrap makes a ResponseError match [ErrUnavailable].
func (e *ResponseError) Unwrap() error { return ErrUnavailable }

// InsufficientScopeError is returned by the scope and audience guards (403).
// Scopes lists the scopes the resource requires; it is sent in the `scope`
// attribute of the challenge (RFC 6750 §3).
type InsufficientScopeError struct {
	Scopes []string
	// Audience is set when an audience requirement failed instead of a scope.
	Audience []string
}

func (e *InsufficientScopeError) Error() string {
	if len(e.Audience) > 0 {
		return "introspect: token audience not accepted"
	}
	return "introspect: insufficient scope"
}

// Unwrap makes an InsufficientScopeError match [ErrInsufficientScope].
func (e *InsufficientScopeError) Unwrap() error { return ErrInsufficientScope }

// StatusCode is the HTTP status for an error from this package: 400
// for ErrInvalidRequest, 401 for ErrMissingToken and ErrInactiveToken, 403 for
// ErrInsufficientScope, and 503 for ErrUnavailable and any other error: what
// cannot be classified fails closed.
func StatusCode(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrMissingToken), errors.Is(err, ErrInactiveToken):
		return http.StatusUnauthorized
	case errors.Is(err, ErrInsufficientScope):
		return http.StatusForbidden
	default:
		return http.StatusServiceUnavailable
	}
}
