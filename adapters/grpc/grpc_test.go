package introspectgrpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/introspect-go/introspect"
	introspectgrpc "github.com/introspect-go/introspect/adapters/grpc"
	"github.com/introspect-go/introspect/introspecttest"
)

const (
	clientID     = "rs"
	clientSecret = "rs-secret"

	methodCheck = "/grpc.health.v1.Health/Check" // unary, any active token
	methodList  = "/grpc.health.v1.Health/List"  // unary, scope "admin"
	methodWatch = "/grpc.health.v1.Health/Watch" // server stream, scope "admin"
)

var adminScopes = map[string][]string{methodList: {"admin"}, methodWatch: {"admin"}}

// healthServer records the verdict its handlers find on their context.
type healthServer struct {
	healthpb.UnimplementedHealthServer

	mu   sync.Mutex // guards seen
	seen *introspect.Introspection
}

func (h *healthServer) record(ctx context.Context) {
	ti, _ := introspect.FromContext(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = ti
}

func (h *healthServer) last() *introspect.Introspection {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen
}

func (h *healthServer) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.record(ctx)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthServer) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.record(ctx)
	return &healthpb.HealthListResponse{}, nil
}

func (h *healthServer) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	h.record(s.Context())
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

func newMiddleware(t *testing.T, srv *introspecttest.Server, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	opts = append([]introspect.Option{
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentials(clientID, clientSecret),
		introspect.WithRealm("api"),
		introspect.WithTimeout(2 * time.Second),
	}, opts...)
	mw, err := introspect.New(opts...)
	if err != nil {
		t.Fatalf("introspect.New: %v", err)
	}
	return mw
}

// startServer serves a healthServer behind the interceptors on a bufconn
// listener and returns a client to it.
func startServer(t *testing.T, auth *introspectgrpc.Interceptors, serverCreds, clientCreds credentials.TransportCredentials) (healthpb.HealthClient, *healthServer) {
	t.Helper()
	if serverCreds == nil {
		serverCreds = insecure.NewCredentials()
	}
	if clientCreds == nil {
		clientCreds = insecure.NewCredentials()
	}
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer(
		grpc.Creds(serverCreds),
		grpc.ChainUnaryInterceptor(auth.Unary()),
		grpc.ChainStreamInterceptor(auth.Stream()),
	)
	hs := &healthServer{}
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(clientCreds),
	)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn), hs
}

// reply is what a call returned, with everything the server sent besides
// the message.
type reply struct {
	err              error
	header, trailer  metadata.MD
	statusMessageRaw string
}

// invoke calls method with the given authorization metadata values.
func invoke(t *testing.T, c healthpb.HealthClient, method string, auth []string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range auth {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
	}
	var r reply
	opts := []grpc.CallOption{grpc.Header(&r.header), grpc.Trailer(&r.trailer)}
	switch method {
	case methodCheck:
		_, r.err = c.Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
	case methodList:
		_, r.err = c.List(ctx, &healthpb.HealthListRequest{}, opts...)
	case methodWatch:
		var s grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
		if s, r.err = c.Watch(ctx, &healthpb.HealthCheckRequest{}, opts...); r.err == nil {
			_, r.err = s.Recv()
		}
	default:
		t.Fatalf("unknown method %s", method)
	}
	r.statusMessageRaw = status.Convert(r.err).Message()
	return r
}

// coreCode is what the core's net/http middleware answers to the same
// Authorization header values, mapped to a gRPC code.
func coreCode(t *testing.T, mw *introspect.Middleware, scopes []string, auth []string) codes.Code {
	t.Helper()
	var h http.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if len(scopes) > 0 {
		h = mw.RequireScope(scopes...)(h)
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	for _, v := range auth {
		req.Header.Add("Authorization", v)
	}
	rec := httptest.NewRecorder()
	mw.Handler(h).ServeHTTP(rec, req)
	switch rec.Code {
	case http.StatusOK:
		return codes.OK
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	t.Fatalf("core answered %d", rec.Code)
	return codes.Unknown
}

type authFunc func(t *testing.T, srv *introspecttest.Server) (values, secrets []string)

func bearer(c introspecttest.Claims) authFunc {
	return func(_ *testing.T, srv *introspecttest.Server) ([]string, []string) {
		tok := srv.Issue(c)
		return []string{"Bearer " + tok}, []string{tok}
	}
}

func raw(values ...string) authFunc {
	return func(*testing.T, *introspecttest.Server) ([]string, []string) {
		var secrets []string
		for _, v := range values {
			if _, tok, ok := strings.Cut(v, " "); ok && strings.TrimSpace(tok) != "" {
				secrets = append(secrets, strings.TrimSpace(tok))
			}
		}
		return values, secrets
	}
}

func revoked(_ *testing.T, srv *introspecttest.Server) ([]string, []string) {
	tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "admin"})
	srv.Revoke(tok)
	return []string{"Bearer " + tok}, []string{tok}
}

func fault(f introspecttest.Fault) *introspecttest.Fault { return &f }

func TestInterceptors(t *testing.T) {
	tests := []struct {
		name   string
		method string
		auth   authFunc
		fault  *introspecttest.Fault
		down   bool // the authorization server is closed
		code   codes.Code
		sub    string // the subject the handler must see on success
	}{
		{name: "valid unary", method: methodCheck, auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "read"}), code: codes.OK, sub: "alice"},
		{name: "valid unary with scope", method: methodList, auth: bearer(introspecttest.Claims{Subject: "root", Scope: "read admin"}), code: codes.OK, sub: "root"},
		{name: "valid stream with scope", method: methodWatch, auth: bearer(introspecttest.Claims{Subject: "root", Scope: "admin"}), code: codes.OK, sub: "root"},
		{name: "lowercase scheme", method: methodCheck, auth: func(_ *testing.T, srv *introspecttest.Server) ([]string, []string) {
			tok := srv.Issue(introspecttest.Claims{Subject: "bob"})
			return []string{"bearer  " + tok}, []string{tok}
		}, code: codes.OK, sub: "bob"},
		{name: "missing unary", method: methodCheck, auth: raw(), code: codes.Unauthenticated},
		{name: "missing stream", method: methodWatch, auth: raw(), code: codes.Unauthenticated},
		{name: "other scheme", method: methodCheck, auth: raw("Basic cnM6cnMtc2VjcmV0"), code: codes.Unauthenticated},
		{name: "scheme without token", method: methodCheck, auth: raw("Bearer"), code: codes.InvalidArgument},
		{name: "not a b64token", method: methodCheck, auth: raw(`Bearer abc"def`), code: codes.InvalidArgument},
		{name: "two values", method: methodCheck, auth: raw("Bearer aaaa", "Bearer bbbb"), code: codes.InvalidArgument},
		{name: "too long", method: methodWatch, auth: raw("Bearer " + strings.Repeat("a", introspect.DefaultMaxTokenLength+1)), code: codes.InvalidArgument},
		{name: "unknown token", method: methodCheck, auth: raw("Bearer c29tZS1yYW5kb20tdG9rZW4"), code: codes.Unauthenticated},
		{name: "revoked stream", method: methodWatch, auth: revoked, code: codes.Unauthenticated},
		{name: "expired", method: methodCheck, auth: bearer(introspecttest.Claims{Subject: "alice", Expiry: time.Now().Add(-time.Hour)}), code: codes.Unauthenticated},
		{name: "not yet valid", method: methodCheck, auth: bearer(introspecttest.Claims{Subject: "alice", NotBefore: time.Now().Add(time.Hour)}), code: codes.Unauthenticated},
		{name: "insufficient scope unary", method: methodList, auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "read"}), code: codes.PermissionDenied},
		{name: "insufficient scope stream", method: methodWatch, auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "read"}), code: codes.PermissionDenied},
		{name: "AS answers 503", method: methodCheck, auth: bearer(introspecttest.Claims{Subject: "alice"}),
			fault: fault(introspecttest.Respond(503, "application/json", `{"error":"temporarily_unavailable"}`, "Retry-After: 7")), code: codes.Unavailable},
		{name: "AS rejects client", method: methodWatch, auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "admin"}),
			fault: fault(introspecttest.Respond(401, "application/json", `{"error":"invalid_client"}`)), code: codes.Unavailable},
		{name: "AS answers garbage", method: methodCheck, auth: bearer(introspecttest.Claims{Subject: "alice"}),
			fault: fault(introspecttest.Answer(`{"active":"yes"`)), code: codes.Unavailable},
		{name: "AS closed", method: methodList, auth: bearer(introspecttest.Claims{Subject: "alice", Scope: "admin"}), down: true, code: codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
			defer srv.Close()
			mw := newMiddleware(t, srv)
			auth, err := introspectgrpc.New(mw, introspectgrpc.WithMethodScopes(adminScopes))
			if err != nil {
				t.Fatal(err)
			}
			client, hs := startServer(t, auth, nil, nil)
			values, secrets := tc.auth(t, srv)
			if tc.fault != nil {
				srv.SetFault(*tc.fault)
			}
			if tc.down {
				srv.Close()
			}

			r := invoke(t, client, tc.method, values)
			if got := status.Code(r.err); got != tc.code {
				t.Fatalf("code = %v (%v), want %v", got, r.err, tc.code)
			}
			if want := coreCode(t, mw, adminScopes[tc.method], values); status.Code(r.err) != want {
				t.Errorf("code = %v, the core answers %v", status.Code(r.err), want)
			}
			assertNoSecrets(t, r, secrets)
			seen := hs.last()
			switch {
			case tc.code != codes.OK && seen != nil:
				t.Errorf("the handler ran for a refused call")
			case tc.code == codes.OK && (seen == nil || seen.Subject != tc.sub):
				t.Errorf("the handler saw %+v, want subject %q", seen, tc.sub)
			}
		})
	}
}

func assertNoSecrets(t *testing.T, r reply, secrets []string) {
	t.Helper()
	var sent []string
	if r.err != nil {
		sent = append(sent, r.err.Error(), r.statusMessageRaw)
	}
	for _, md := range []metadata.MD{r.header, r.trailer} {
		for k, vs := range md {
			sent = append(sent, k)
			sent = append(sent, vs...)
		}
	}
	for _, s := range secrets {
		for _, v := range sent {
			if strings.Contains(v, s) {
				t.Errorf("the reply contains a token or the authorization metadata")
			}
		}
	}
}

// TestRequest checks the request the middleware sees: a ClientStore gets the
// method as the path, the authority as the host, the metadata as headers, the
// call's context and the peer's TLS state.
func TestRequest(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()

	type seenRequest struct {
		path, host, tenant, remote string
		tls, peer                  bool
	}
	got := make(chan seenRequest, 1)
	store := introspect.ClientStoreFunc(func(r *http.Request) (introspect.ClientContext, error) {
		_, hasPeer := peer.FromContext(r.Context())
		got <- seenRequest{
			path: r.URL.Path, host: r.Host, tenant: r.Header.Get("X-Tenant"), remote: r.RemoteAddr,
			tls: r.TLS != nil && len(r.TLS.PeerCertificates) == 1, peer: hasPeer,
		}
		return introspect.ClientContext{
			Endpoint:    srv.IntrospectionURL(),
			Credentials: introspect.Credentials{ClientID: clientID, ClientSecret: clientSecret},
		}, nil
	})
	mw, err := introspect.New(introspect.WithClientStore(store))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := introspectgrpc.New(mw)
	if err != nil {
		t.Fatal(err)
	}
	serverCreds, clientCreds, _, _ := mutualTLS(t)
	client, _ := startServer(t, auth, serverCreds, clientCreds)

	tok := srv.Issue(introspecttest.Claims{Subject: "alice"})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant", "acme")
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := seenRequest{path: methodCheck, host: "bufnet", tenant: "acme", remote: "bufconn", tls: true, peer: true}
	if r := <-got; r != want {
		t.Errorf("the store saw %+v, want %+v", r, want)
	}
}

// TestTokenBinding checks the RFC 8705 binding of a token to the client
// certificate of a mutual-TLS connection.
func TestTokenBinding(t *testing.T) {
	serverCreds, clientCreds, otherClientCreds, thumbprint := mutualTLS(t)
	tests := []struct {
		name         string
		server, dial credentials.TransportCredentials
		code         codes.Code
	}{
		{"certificate of the token", serverCreds, clientCreds, codes.OK},
		{"another certificate", serverCreds, otherClientCreds, codes.Unauthenticated},
		{"no TLS", nil, nil, codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
			defer srv.Close()
			auth, err := introspectgrpc.New(newMiddleware(t, srv))
			if err != nil {
				t.Fatal(err)
			}
			client, _ := startServer(t, auth, tc.server, tc.dial)
			tok := srv.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"x5t#S256": thumbprint}})
			r := invoke(t, client, methodCheck, []string{"Bearer " + tok})
			if status.Code(r.err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(r.err), r.err, tc.code)
			}
		})
	}
}

// mutualTLS returns credentials for a server that asks for a client
// certificate, for two clients that present different certificates, and the
// first client certificate's RFC 8705 thumbprint.
func mutualTLS(t *testing.T) (server, client, other credentials.TransportCredentials, thumbprint string) {
	t.Helper()
	serverCert := selfSigned(t, "bufnet", x509.ExtKeyUsageServerAuth)
	roots := x509.NewCertPool()
	roots.AddCert(serverCert.Leaf)
	server = credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS13,
	})
	dial := func(cert tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots,
			ServerName:   "bufnet",
			MinVersion:   tls.VersionTLS13,
		})
	}
	clientCert := selfSigned(t, "client", x509.ExtKeyUsageClientAuth)
	sum := sha256.Sum256(clientCert.Leaf.Raw)
	return server, dial(clientCert), dial(selfSigned(t, "other", x509.ExtKeyUsageClientAuth)), base64.RawURLEncoding.EncodeToString(sum[:])
}

func selfSigned(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestSkipper(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()
	auth, err := introspectgrpc.New(newMiddleware(t, srv),
		introspectgrpc.WithMethodScopes(adminScopes),
		introspectgrpc.WithSkipper(func(_ context.Context, m string) bool { return m == methodCheck }),
	)
	if err != nil {
		t.Fatal(err)
	}
	client, hs := startServer(t, auth, nil, nil)
	tests := []struct {
		name   string
		method string
		code   codes.Code
	}{
		{"skipped", methodCheck, codes.OK},
		{"checked unary", methodList, codes.Unauthenticated},
		{"checked stream", methodWatch, codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := invoke(t, client, tc.method, nil)
			if status.Code(r.err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(r.err), r.err, tc.code)
			}
		})
	}
	if srv.Calls() != 0 {
		t.Errorf("calls without a token reached the authorization server")
	}
	if hs.last() != nil {
		t.Errorf("a skipped call has a verdict on its context")
	}
}

func TestNew(t *testing.T) {
	srv := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	defer srv.Close()
	mw := newMiddleware(t, srv)
	tests := []struct {
		name string
		mw   *introspect.Middleware
		opts []introspectgrpc.Option
		ok   bool
	}{
		{"no options", mw, nil, true},
		{"scopes", mw, []introspectgrpc.Option{introspectgrpc.WithMethodScopes(adminScopes)}, true},
		{"nil middleware", nil, nil, false},
		{"method without slash", mw, []introspectgrpc.Option{introspectgrpc.WithMethodScopes(map[string][]string{"grpc.health.v1.Health/Check": {"a"}})}, false},
		{"method without service", mw, []introspectgrpc.Option{introspectgrpc.WithMethodScopes(map[string][]string{"/Check": {"a"}})}, false},
		{"no scopes", mw, []introspectgrpc.Option{introspectgrpc.WithMethodScopes(map[string][]string{methodCheck: nil})}, false},
		{"empty scope", mw, []introspectgrpc.Option{introspectgrpc.WithMethodScopes(map[string][]string{methodCheck: {""}})}, false},
		{"scope with a space", mw, []introspectgrpc.Option{introspectgrpc.WithMethodScopes(map[string][]string{methodCheck: {"a b"}})}, false},
		{"nil skipper", mw, []introspectgrpc.Option{introspectgrpc.WithSkipper(nil)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, err := introspectgrpc.New(tc.mw, tc.opts...)
			if tc.ok != (err == nil) || tc.ok != (i != nil) {
				t.Fatalf("New = %v, %v; want ok = %v", i, err, tc.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "introspectgrpc: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestError(t *testing.T) {
	upstream := &introspect.ResponseError{StatusCode: 401, ErrorCode: "invalid_client", Description: "secret abc is wrong"}
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"nil", nil, codes.OK},
		{"missing", introspect.ErrMissingToken, codes.Unauthenticated},
		{"invalid request", fmt.Errorf("%w: two headers", introspect.ErrInvalidRequest), codes.InvalidArgument},
		{"inactive", introspect.ErrInactiveToken, codes.Unauthenticated},
		{"expired", introspect.ErrTokenExpired, codes.Unauthenticated},
		{"scope", &introspect.InsufficientScopeError{Scopes: []string{"admin"}}, codes.PermissionDenied},
		{"upstream", upstream, codes.Unavailable},
		{"unclassified", errors.New("boom"), codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := introspectgrpc.Error(tc.err)
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v, want %v", status.Code(err), tc.code)
			}
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Error(nil) = %v", err)
				}
				return
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, "invalid_client") || strings.Contains(msg, "abc") || strings.Contains(msg, "boom") {
				t.Errorf("message %q carries the cause", msg)
			}
		})
	}
}
