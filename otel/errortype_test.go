package introspectotel

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/introspect-go/introspect"
)

// Every error class of the package has its error type, wrapped or not; the
// error of a fetch of a discovery document is named after its cause.
func TestErrorType(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		discovery bool
		want      string
	}{
		{"request canceled", fmt.Errorf("%w: %w", introspect.ErrRequestCanceled, context.Canceled), false, "canceled"},
		{"context canceled", context.Canceled, false, "canceled"},
		{"discovery", fmt.Errorf("%w: %w", introspect.ErrDiscovery, introspect.ErrConnect), false, "discovery"},
		{"discovery's cause", fmt.Errorf("%w: %w", introspect.ErrDiscovery, introspect.ErrConnect), true, "connect"},
		{"discovery without a known cause", introspect.ErrDiscovery, true, "unavailable"},
		{"timeout", fmt.Errorf("%w: %w", introspect.ErrUnavailable, context.DeadlineExceeded), false, "timeout"},
		{"100", &introspect.ResponseError{StatusCode: 100}, false, "http_1xx"},
		{"307", &introspect.ResponseError{StatusCode: 307}, false, "http_3xx"},
		{"401", fmt.Errorf("wrapped: %w", &introspect.ResponseError{StatusCode: 401, ErrorCode: "invalid_client"}), false, "http_4xx"},
		{"503", &introspect.ResponseError{StatusCode: 503}, false, "http_5xx"},
		{"status out of range", &introspect.ResponseError{StatusCode: 600}, false, "_OTHER"},
		{"connect", introspect.ErrConnect, false, "connect"},
		{"tls", introspect.ErrTLS, false, "tls"},
		{"connection lost", introspect.ErrConnectionLost, false, "connection_lost"},
		{"malformed HTTP", introspect.ErrMalformedHTTP, false, "malformed_http"},
		{"too large", introspect.ErrResponseTooLarge, false, "response_too_large"},
		{"encrypted", introspect.ErrEncryptedResponse, false, "encrypted_response"},
		{"malformed response", introspect.ErrMalformedResponse, false, "malformed_response"},
		{"client configuration", fmt.Errorf("%w: no secret", introspect.ErrClientConfig), false, "client_config"},
		{"a secret function's context error", fmt.Errorf("%w: %w", introspect.ErrClientConfig, context.DeadlineExceeded), false, "client_config"},
		{"a secret function's cancel", fmt.Errorf("%w: %w", introspect.ErrClientConfig, context.Canceled), false, "client_config"},
		{"the caller's cancel during a secret function", fmt.Errorf("%w: %w", introspect.ErrRequestCanceled, fmt.Errorf("%w: %w", introspect.ErrClientConfig, context.Canceled)), false, "canceled"},
		{"unavailable", introspect.ErrUnavailable, false, "unavailable"},
		{"another error", errors.New("something else"), false, "_OTHER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorType(tc.err, tc.discovery); got != tc.want {
				t.Errorf("errorType(%v, %v) = %q, want %q", tc.err, tc.discovery, got, tc.want)
			}
		})
	}
}
