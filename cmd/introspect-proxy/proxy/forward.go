package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// The headers in which ingresses send the original request of a
// forward-auth request.
const (
	headerOriginalMethod  = "X-Original-Method"  // nginx, set in its configuration
	headerOriginalURI     = "X-Original-Uri"     // nginx
	headerForwardedMethod = "X-Forwarded-Method" // Caddy, Traefik
	headerForwardedURI    = "X-Forwarded-Uri"    // Caddy, Traefik
	headerForwardedHost   = "X-Forwarded-Host"
	headerForwardedProto  = "X-Forwarded-Proto"
)

// forwardHeaders are the headers that say what the original request was.
var forwardHeaders = []string{headerOriginalMethod, headerOriginalURI, headerForwardedMethod, headerForwardedURI, headerForwardedHost, headerForwardedProto}

// forwardAuth answers an ingress's auth request about the original request
// it describes: 200 with the identity headers when the token is valid and
// the rules of the original method and path allow it, otherwise the
// middleware's answer (400, 401 or 403 with WWW-Authenticate, 503). ctx
// is the context of the request's record, put on the original request.
func (s *Server) forwardAuth(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	orig, err := s.original(ctx, r)
	if err != nil {
		s.mw.WriteError(w, r.WithContext(ctx), nil, err)
		return
	}
	rec := recordOf(ctx)
	rec.origMethod, rec.origPath = orig.Method, orig.URL.Path
	ti, err := s.mw.Authenticate(orig)
	if err != nil {
		if !s.mw.AllowsAnonymous(err) {
			s.mw.WriteError(w, orig, ti, err)
			return
		}
		ti = nil
		rec.setOutcome(outcomeAnonymous)
	}
	if !s.authorize(w, orig, ti) {
		return
	}
	h := w.Header()
	s.identity.set(h, ti, true)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// original returns the request the ingress asks about, for the middleware
// and the rules: its method, path, host and scheme (for a DPoP proof's htm
// and htu), with r's headers and the context ctx. From a trusted proxy they come
// from the headers of -forward-auth-ingress; from anyone else the request
// is refused, or its own method and URI count (see untrusted). Its TLS
// state never holds the ingress's certificate: the client's, for a
// certificate-bound token, comes in -client-cert-header.
func (s *Server) original(ctx context.Context, r *http.Request) (*http.Request, error) {
	cfg := s.cfg
	method, uri, host, secure := r.Method, r.RequestURI, r.Host, r.TLS != nil
	ingress := cfg.ForwardAuthIngress
	if ingress == config.IngressAuto && cfg.ForwardAuthPathPrefix != "" {
		ingress = config.IngressEnvoy // only Envoy adds a path prefix
	}
	own := true // the request's own URI counts, less the path prefix
	if s.trusted(r) {
		var err error
		if method, uri, own, err = originalRequest(r, ingress); err != nil {
			return nil, err
		}
		if v, err := single(r.Header, headerForwardedHost); err != nil {
			return nil, err
		} else if v != "" {
			host, _, _ = strings.Cut(v, ",")
			host = strings.TrimSpace(host)
		}
		if v, err := single(r.Header, headerForwardedProto); err != nil {
			return nil, err
		} else if v != "" {
			proto, _, _ := strings.Cut(v, ",")
			secure = strings.EqualFold(strings.TrimSpace(proto), "https")
		}
	} else if err := s.untrusted(r, ingress); err != nil {
		return nil, err
	}
	if own && cfg.ForwardAuthPathPrefix != "" {
		// Envoy sends the prefix and the original path, which starts with
		// '/': the prefix alone, or followed by a query or anything else, is
		// no such request (an ext_authz path_override, which sends every
		// request to one path, would have the rules judge that path).
		rest, ok := strings.CutPrefix(uri, cfg.ForwardAuthPathPrefix)
		if !ok || !strings.HasPrefix(rest, "/") {
			return nil, invalid("the path is not -forward-auth-path-prefix followed by the original path")
		}
		uri = rest
	}
	if !validMethod(method) {
		return nil, invalid("the original method is not an HTTP method")
	}
	u, err := url.ParseRequestURI(uri)
	if err == nil {
		emptyPathIsRoot(u)
	}
	if err != nil || !pathTarget(u) {
		return nil, invalid("the original URI is not a request target with a path")
	}
	o := r.WithContext(ctx)
	o.Method = method
	*u = url.URL{Path: u.Path, RawPath: u.RawPath} // the path alone, in the URL just parsed
	o.URL = u
	o.RequestURI = uri
	o.Host = host
	o.TLS = nil
	if secure {
		o.TLS = &tls.ConnectionState{}
	}
	return o, nil
}

// untrusted checks a forward-auth request from an address outside
// -trusted-proxies, whose forwarding headers are not believed. Only
// Envoy's own method and URI name the original request: with any other
// ingress, or under auto a request whose headers name one, the request is
// refused (400), since its own URI, the auth endpoint's, would void the
// rules of every path (an ingress left out of -trusted-proxies: in a
// container it is on loopback only as a sidecar). The forwarding headers
// of Envoy's requests (and of auto's that name no original) are ignored.
func (s *Server) untrusted(r *http.Request, ingress config.Ingress) error {
	if ingress != config.IngressEnvoy && (ingress != config.IngressAuto || namesOriginal(r.Header)) {
		if s.warnedRefused.CompareAndSwap(false, true) {
			s.log.Warn("forward-auth request from an address outside -trusted-proxies refused (400): the original request it names cannot be believed; add the ingress's addresses to -trusted-proxies",
				"remote", r.RemoteAddr, "ingress", string(ingress))
		}
		return invalid("the forward-auth request comes from an address outside -trusted-proxies")
	}
	for _, h := range forwardHeaders {
		if _, ok := r.Header[h]; ok && s.warnedUntrusted.CompareAndSwap(false, true) {
			s.log.Warn("forward-auth request from an address outside -trusted-proxies: its forwarding headers are ignored, its own method and URI count",
				"remote", r.RemoteAddr, "header", h)
			break
		}
	}
	return nil
}

// namesOriginal reports whether h holds a header that names the original
// method or URI.
func namesOriginal(h http.Header) bool {
	for _, name := range []string{headerOriginalMethod, headerOriginalURI, headerForwardedMethod, headerForwardedURI} {
		if _, ok := h[name]; ok {
			return true
		}
	}
	return false
}

// originalRequest reads the original method and URI of a request from a
// trusted proxy; own reports that the request's own count (Envoy, or no
// header under auto).
func originalRequest(r *http.Request, ingress config.Ingress) (method, uri string, own bool, err error) {
	read := func(methodHeader, uriHeader string) (m, u string, err error) {
		if m, err = single(r.Header, methodHeader); err != nil {
			return
		}
		u, err = single(r.Header, uriHeader)
		return
	}
	switch ingress {
	case config.IngressEnvoy:
		return r.Method, r.RequestURI, true, nil
	case config.IngressNginx, config.IngressCaddy, config.IngressTraefik:
		mh, uh := headerForwardedMethod, headerForwardedURI
		if ingress == config.IngressNginx {
			mh, uh = headerOriginalMethod, headerOriginalURI
		}
		m, u, err := read(mh, uh)
		switch {
		case err != nil:
			return "", "", false, err
		case m == "" || u == "":
			return "", "", false, invalid(fmt.Sprintf("the request from the %s ingress has no %s or %s header", ingress, mh, uh))
		}
		return m, u, false, nil
	}
	// auto: the two sets may both be there (an ingress passes the client's
	// headers on, and sets its own); whatever is there must agree.
	om, ou, err := read(headerOriginalMethod, headerOriginalURI)
	if err != nil {
		return "", "", false, err
	}
	fm, fu, err := read(headerForwardedMethod, headerForwardedURI)
	if err != nil {
		return "", "", false, err
	}
	if ou == "" && fu == "" && om == "" && fm == "" {
		return r.Method, r.RequestURI, true, nil
	}
	switch {
	case ou != "" && fu != "" && ou != fu:
		return "", "", false, invalid("X-Original-URI and X-Forwarded-Uri disagree")
	case om != "" && fm != "" && om != fm:
		return "", "", false, invalid("X-Original-Method and X-Forwarded-Method disagree")
	case ou == "" && fu == "":
		return "", "", false, invalid("a method header without a URI header")
	case om == "" && fm == "":
		return "", "", false, invalid("a URI header without a method header")
	}
	method, uri = om, ou
	if method == "" {
		method = fm
	}
	if uri == "" {
		uri = fu
	}
	return method, uri, false, nil
}

// single returns the value of a header given at most once; name is in
// canonical form.
func single(h http.Header, name string) (string, error) {
	switch v := h[name]; len(v) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(v[0]), nil
	}
	return "", invalid(name + " is given more than once")
}

// invalid is a forward-auth request whose description of the original
// request cannot be read: 400.
func invalid(msg string) error {
	return fmt.Errorf("%w: %s", introspect.ErrInvalidRequest, msg)
}

// validMethod reports whether m is an HTTP method (a token).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		b := m[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}
