package introspect

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// AuthMethod names a client authentication method as registered for OAuth
// (RFC 7591 §2, RFC 8414 token_endpoint_auth_methods_supported).
type AuthMethod string

// Client authentication methods.
const (
	// ClientSecretBasic sends the client ID and secret in an HTTP Basic
	// Authorization header, each form-encoded before base64 as RFC 6749 §2.3.1
	// requires (a secret such as "a:b/c+d%e&f=g h" works against a strict AS).
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret in the form body.
	ClientSecretPost AuthMethod = "client_secret_post"
)

func (m AuthMethod) valid() bool {
	switch m {
	case "", ClientSecretBasic, ClientSecretPost:
		return true
	}
	return false
}

// authenticate adds the client's credentials to an introspection request.
// form is encoded into the body after this returns.
func authenticate(ctx context.Context, cr Credentials, req *http.Request, form url.Values) error {
	secret, err := cr.secret(ctx)
	if err != nil {
		return fmt.Errorf("%w: client secret unavailable: %w", ErrClientConfig, err)
	}
	switch cr.AuthMethod {
	case "", ClientSecretBasic:
		req.SetBasicAuth(url.QueryEscape(cr.ClientID), url.QueryEscape(secret))
	case ClientSecretPost:
		form.Set("client_id", cr.ClientID)
		form.Set("client_secret", secret)
	default:
		return fmt.Errorf("%w: unsupported auth method %q", ErrClientConfig, cr.AuthMethod)
	}
	return nil
}
