package introspectotel

import (
	"context"
	"errors"
	"strconv"

	"github.com/introspect-go/introspect"
)

// errorType names the class of an error of a call to the authorization
// server, for the error.type attribute: one of a small, fixed set of values,
// never the error's text. discovery is set for the error of a fetch of a
// discovery document, which always matches ErrDiscovery: its cause is named
// instead.
//
//	canceled            the request went away before the call ended
//	discovery           no usable metadata or keys (calls only)
//	timeout             the call's deadline passed
//	http_1xx … http_5xx the server answered with that status class
//	connect             no connection could be made
//	tls                 the TLS handshake failed
//	connection_lost     the connection broke before the answer was complete
//	malformed_http      the answer was not well-formed HTTP
//	response_too_large  the answer exceeded the size limit
//	encrypted_response  an encrypted (JWE) answer
//	malformed_response  the answer's content could not be used
//	client_config       the client's own configuration or credentials
//	unavailable         another failure to get a verdict
//	_OTHER              an error outside the package's classes
func errorType(err error, discovery bool) string {
	var re *introspect.ResponseError
	switch {
	case errors.Is(err, introspect.ErrRequestCanceled):
		return "canceled"
	case errors.Is(err, introspect.ErrClientConfig):
		// Before the context's errors: a credentials callback's own
		// context error is a failure of the client's configuration.
		return "client_config"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case !discovery && errors.Is(err, introspect.ErrDiscovery):
		return "discovery"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &re):
		return statusClass(re.StatusCode)
	case errors.Is(err, introspect.ErrConnect):
		return "connect"
	case errors.Is(err, introspect.ErrTLS):
		return "tls"
	case errors.Is(err, introspect.ErrConnectionLost):
		return "connection_lost"
	case errors.Is(err, introspect.ErrMalformedHTTP):
		return "malformed_http"
	case errors.Is(err, introspect.ErrResponseTooLarge):
		return "response_too_large"
	case errors.Is(err, introspect.ErrEncryptedResponse):
		return "encrypted_response"
	case errors.Is(err, introspect.ErrMalformedResponse):
		return "malformed_response"
	case errors.Is(err, introspect.ErrUnavailable):
		return "unavailable"
	}
	return "_OTHER"
}

// statusClass is "http_4xx" for 404, say; "_OTHER" outside 100–599.
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "_OTHER"
	}
	return "http_" + strconv.Itoa(code/100) + "xx"
}
