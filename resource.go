package introspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ResourceMetadata is the OAuth 2.0 Protected Resource Metadata of RFC 9728
// §2: what a client needs to learn which authorization server to ask for a
// token for this API. Serve it with [ResourceMetadataHandler] and point the
// 401 challenges at it with [WithResourceMetadata].
type ResourceMetadata struct {
	// Resource is the resource identifier: an https URL without a fragment.
	// Required.
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	// TLSClientCertificateBoundAccessTokens announces RFC 8705 support.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// DPoPSigningAlgValuesSupported lists the algorithms accepted for DPoP
	// proofs (RFC 9449); [Middleware.ResourceMetadata] fills it in.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired says that only DPoP-bound tokens are
	// accepted; [Middleware.ResourceMetadata] sets it under [DPoPRequired].
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required,omitempty"`
}

// ResourceMetadataURL is where RFC 9728 §3.1 puts the metadata of resource:
// /.well-known/oauth-protected-resource inserted between the host and the
// path and query of the resource identifier, the slash that follows the
// host alone dropped (https://api.example.com/mcp/?tenant=a has its
// metadata at
// https://api.example.com/.well-known/oauth-protected-resource/mcp/?tenant=a).
func ResourceMetadataURL(resource string) (string, error) {
	u, err := checkResource(resource)
	if err != nil {
		return "", err
	}
	path := u.EscapedPath()
	if path == "/" {
		path = "" // only the slash that follows the host goes (§3.1): /mcp/ stays /mcp/
	}
	md := u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + path
	if u.RawQuery != "" || u.ForceQuery {
		md += "?" + u.RawQuery
	}
	return md, nil
}

func checkResource(resource string) (*url.URL, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) ||
		u.Host == "" || strings.Contains(resource, "#") || u.User != nil {
		return nil, fmt.Errorf("introspect: resource %q is not an https URL without fragment and credentials", resource)
	}
	return u, nil
}

// ResourceMetadataHandler returns a handler that serves md as JSON (GET and
// HEAD only, cacheable for an hour). Mount it at the path of
// [ResourceMetadataURL]. It checks md once: the resource identifier is
// required, and every authorization server must be an https URL.
func ResourceMetadataHandler(md ResourceMetadata) (http.Handler, error) {
	if _, err := checkResource(md.Resource); err != nil {
		return nil, err
	}
	for _, as := range md.AuthorizationServers {
		if u, err := url.Parse(as); err != nil || u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) || u.Host == "" {
			return nil, fmt.Errorf("introspect: authorization server %q is not an https URL", as)
		}
	}
	for _, m := range md.BearerMethodsSupported {
		if m != "header" && m != "body" && m != "query" {
			return nil, errors.New("introspect: bearer_methods_supported allows header, body and query")
		}
	}
	body, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}), nil
}
