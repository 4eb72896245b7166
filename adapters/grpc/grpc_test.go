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
	"slices"
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
	"github.com/introspect-go/introspect/adapters/internal/conformance"
	"github.com/introspect-go/introspect/introspecttest"
)

const (
	methodCheck = "/grpc.health.v1.Health/Check" // unary
	methodList  = "/grpc.health.v1.Health/List"  // unary
	methodWatch = "/grpc.health.v1.Health/Watch" // server stream
)

// methods are the calls that stand for each conformance route; the
// interceptors require scope "admin" for List, as the route does.
var methods = map[string][]string{
	conformance.PathMe:    {methodCheck, methodWatch},
	conformance.PathAdmin: {methodList},
}

var adminList = map[string][]string{methodList: {"admin"}}

// codeOf maps the HTTP statuses of introspect.StatusCode to gRPC codes.
var codeOf = map[int]codes.Code{
	http.StatusOK:                 codes.OK,
	http.StatusBadRequest:         codes.InvalidArgument,
	http.StatusUnauthorized:       codes.Unauthenticated,
	http.StatusForbidden:          codes.PermissionDenied,
	http.StatusServiceUnavailable: codes.Unavailable,
}

// healthServer records the verdict its handlers find on their context.
type healthServer struct {
	healthpb.UnimplementedHealthServer

	mu       sync.Mutex // guards seen and deadline
	seen     *introspect.Introspection
	deadline time.Time // of the last handler's context; zero without one
}

func (h *healthServer) record(ctx context.Context) {
	ti, _ := introspect.FromContext(ctx)
	dl, _ := ctx.Deadline()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen, h.deadline = ti, dl
}

func (h *healthServer) lastDeadline() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.deadline
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

// newInterceptors returns interceptors for mw, failing the test on an error.
func newInterceptors(t *testing.T, mw *introspect.Middleware, opts ...introspectgrpc.Option) *introspectgrpc.Interceptors {
	t.Helper()
	auth, err := introspectgrpc.New(mw, opts...)
	if err != nil {
		t.Fatalf("introspectgrpc.New: %v", err)
	}
	return auth
}

// invoke calls method with the given authorization metadata values and
// returns the error and everything the server sent besides the message.
func invoke(t *testing.T, c healthpb.HealthClient, method string, auth []string) (sent []string, err error) {
	t.Helper()
	var kv []string
	for _, v := range auth {
		kv = append(kv, "authorization", v)
	}
	return invokeMD(t, c, method, kv...)
}

// invokeMD calls method with the metadata pairs kv (key, value, ...) and
// returns the error and everything the server sent besides the message.
func invokeMD(t *testing.T, c healthpb.HealthClient, method string, kv ...string) (sent []string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	var header, trailer metadata.MD
	opts := []grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)}
	switch method {
	case methodCheck:
		_, err = c.Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
	case methodList:
		_, err = c.List(ctx, &healthpb.HealthListRequest{}, opts...)
	case methodWatch:
		var s grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
		if s, err = c.Watch(ctx, &healthpb.HealthCheckRequest{}, opts...); err == nil {
			_, err = s.Recv()
		}
	default:
		t.Fatalf("unknown method %s", method)
	}
	if err != nil {
		sent = append(sent, err.Error(), status.Convert(err).Message())
	}
	for _, md := range []metadata.MD{header, trailer} {
		for k, vs := range md {
			sent = append(sent, k)
			sent = append(sent, vs...)
		}
	}
	return sent, err
}

// TestInterceptors runs the conformance cases through a grpc.Server: each
// call must get the code of the core's HTTP status for the same
// Authorization values.
func TestInterceptors(t *testing.T) {
	for _, c := range conformance.Cases() {
		for _, method := range methods[c.Path] {
			t.Run(c.Name+" "+method, func(t *testing.T) {
				_, mw, values, secrets := c.Prepare(t)
				client, hs := startServer(t, newInterceptors(t, mw, introspectgrpc.WithMethodScopes(adminList)), nil, nil)

				sent, err := invoke(t, client, method, values)
				if got, want := status.Code(err), codeOf[c.Status]; got != want {
					t.Fatalf("code = %v (%v), want %v", got, err, want)
				}
				if core := conformance.Serve(t, conformance.Core(mw), c.Path, values).Code; status.Code(err) != codeOf[core] {
					t.Errorf("code = %v, the core answers %d", status.Code(err), core)
				}
				conformance.NoSecrets(t, sent, secrets)
				seen := hs.last()
				switch {
				case c.Status != http.StatusOK && seen != nil:
					t.Errorf("the handler ran for a refused call")
				case c.Status == http.StatusOK && (seen == nil || seen.Subject != c.Subject):
					t.Errorf("the handler saw %+v, want subject %q", seen, c.Subject)
				}
			})
		}
	}
}

// TestStreamScopes checks a scope requirement on a streaming method.
func TestStreamScopes(t *testing.T) {
	srv := conformance.NewServer(t)
	auth := newInterceptors(t, conformance.NewMiddleware(t, srv),
		introspectgrpc.WithMethodScopes(map[string][]string{methodWatch: {"watch", "admin"}}))
	client, _ := startServer(t, auth, nil, nil)
	tests := []struct {
		name  string
		scope string
		code  codes.Code
	}{
		{"all scopes", "admin read watch", codes.OK},
		{"one of two", "watch", codes.PermissionDenied},
		{"none", "", codes.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: tc.scope})
			_, err := invoke(t, client, methodWatch, []string{"Bearer " + tok})
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tc.code)
			}
		})
	}
}

// TestStreamEndsAtExpiry: a stream is checked once, so its context ends
// when the token expires (exp plus the default leeway); one of a token
// without exp has no deadline of ours.
func TestStreamEndsAtExpiry(t *testing.T) {
	srv := conformance.NewServer(t)
	client, health := startServer(t, newInterceptors(t, conformance.NewMiddleware(t, srv)), nil, nil)
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	tok := srv.Issue(introspecttest.Claims{Subject: "alice", Expiry: exp})
	// A client deadline later than the token's exp: the stream's ends first.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	s, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, want := health.lastDeadline(), exp.Add(introspect.DefaultLeeway); !got.Equal(want) {
		t.Errorf("the stream's deadline is %v, want %v", got, want)
	}
}

// TestStreamExpiryIsUnauthenticated: a stream whose handler returns its
// context's error when the token expires ends with codes.Unauthenticated,
// so that the client knows to come back with a new token (the middleware's
// leeway counts); an error of the handler's own goes as it is.
func TestStreamExpiryIsUnauthenticated(t *testing.T) {
	srv := conformance.NewServer(t)
	mw := conformance.NewMiddleware(t, srv, introspect.WithLeeway(0))
	for _, tc := range []struct {
		name    string
		ownErr  error
		code    codes.Code
		message string
	}{
		{"the context's error", nil, codes.Unauthenticated, "the token expired during the stream"},
		{"an error of its own", status.Error(codes.ResourceExhausted, "quota"), codes.ResourceExhausted, "quota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis := bufconn.Listen(1 << 20)
			s := grpc.NewServer(grpc.StreamInterceptor(newInterceptors(t, mw).Stream()))
			healthpb.RegisterHealthServer(s, waitingHealth{ownErr: tc.ownErr})
			go func() { _ = s.Serve(lis) }()
			t.Cleanup(s.Stop)
			conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return lis.DialContext(ctx)
			}), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			tok := srv.Issue(introspecttest.Claims{Subject: "alice", Expiry: time.Now().Add(1500 * time.Millisecond)})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
			stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			if st := status.Convert(err); st.Code() != tc.code || st.Message() != tc.message {
				t.Fatalf("status = %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.message)
			}
		})
	}
}

// waitingHealth's Watch returns when its stream's context ends: the
// context's error, or ownErr when set (an error of the handler's own).
type waitingHealth struct {
	healthpb.UnimplementedHealthServer
	ownErr error
}

func (w waitingHealth) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	<-s.Context().Done()
	if w.ownErr != nil {
		return w.ownErr
	}
	return s.Context().Err()
}

// TestRequest checks the request the middleware sees: a ClientStore gets the
// method as the path, the authority as the host, the metadata as headers, the
// call's context and the peer's TLS state.
func TestRequest(t *testing.T) {
	srv := conformance.NewServer(t)

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
			Credentials: introspect.Credentials{ClientID: conformance.ClientID, ClientSecret: conformance.ClientSecret},
		}, nil
	})
	mw, err := introspect.New(introspect.WithClientStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	serverCreds, clientCreds, _, _ := mutualTLS(t)
	client, _ := startServer(t, newInterceptors(t, mw), serverCreds, clientCreds)

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
			srv := conformance.NewServer(t)
			auth := newInterceptors(t, conformance.NewMiddleware(t, srv))
			client, _ := startServer(t, auth, tc.server, tc.dial)
			tok := srv.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"x5t#S256": thumbprint}})
			_, err := invoke(t, client, methodCheck, []string{"Bearer " + tok})
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tc.code)
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
	srv := conformance.NewServer(t)
	auth, err := introspectgrpc.New(conformance.NewMiddleware(t, srv),
		introspectgrpc.WithMethodScopes(map[string][]string{methodList: {"admin"}, methodWatch: {"admin"}}),
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
			_, err := invoke(t, client, tc.method, nil)
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tc.code)
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
	srv := conformance.NewServer(t)
	mw := conformance.NewMiddleware(t, srv)
	all := func(m map[string][]string) introspectgrpc.Option { return introspectgrpc.WithMethodScopes(m) }
	anyOf := func(m map[string][]string) introspectgrpc.Option { return introspectgrpc.WithMethodAnyScopes(m) }
	tests := []struct {
		name string
		mw   *introspect.Middleware
		opts []introspectgrpc.Option
		want []string // in the error; none for success
	}{
		{"no options", mw, nil, nil},
		{"scopes", mw, []introspectgrpc.Option{all(adminList)}, nil},
		{"any scopes", mw, []introspectgrpc.Option{anyOf(adminList)}, nil},
		{"scopes of several methods", mw, []introspectgrpc.Option{all(adminList), anyOf(map[string][]string{methodWatch: {"a", "b"}})}, nil},
		{"a method given twice to WithMethodScopes", mw, []introspectgrpc.Option{all(adminList), all(map[string][]string{methodList: {"root"}})}, nil},
		{"scope tokens beyond letters", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: {"orders:write", "https://api.example.com/read"}})}, nil},
		{"nil middleware", nil, nil, []string{"nil middleware"}},
		{"method without slash", mw, []introspectgrpc.Option{all(map[string][]string{"grpc.health.v1.Health/Check": {"a"}})}, []string{"WithMethodScopes", `"grpc.health.v1.Health/Check" is not a full method name`}},
		{"method without service", mw, []introspectgrpc.Option{all(map[string][]string{"/Check": {"a"}})}, []string{`"/Check" is not a full method name`}},
		{"no scopes", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: nil})}, []string{"WithMethodScopes", methodCheck, "no scopes"}},
		{"an empty list", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: {}})}, []string{"WithMethodScopes", methodCheck, "no scopes"}},
		{"empty scope", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: {"read", ""}})}, []string{"WithMethodScopes", methodCheck, `"" is not a scope token`}},
		{"two scopes in one", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: {"read write"}})}, []string{"WithMethodScopes", methodCheck, `"read write" is not a scope token`}},
		{"scope with a quote", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: {`a"b`}})}, []string{`"a\"b" is not a scope token`}},
		{"any: no scopes", mw, []introspectgrpc.Option{anyOf(map[string][]string{methodCheck: {}})}, []string{"WithMethodAnyScopes", methodCheck, "no scopes"}},
		{"any: empty scope", mw, []introspectgrpc.Option{anyOf(map[string][]string{methodCheck: {""}})}, []string{"WithMethodAnyScopes", methodCheck, `"" is not a scope token`}},
		{"any: two scopes in one", mw, []introspectgrpc.Option{anyOf(map[string][]string{methodCheck: {"admin", "read write"}})}, []string{"WithMethodAnyScopes", `"read write" is not a scope token`}},
		{"any: method without slash", mw, []introspectgrpc.Option{anyOf(map[string][]string{"Check": {"a"}})}, []string{"WithMethodAnyScopes", `"Check" is not a full method name`}},
		{"any: a method given twice", mw, []introspectgrpc.Option{anyOf(adminList), anyOf(map[string][]string{methodList: {"root"}})}, []string{"WithMethodAnyScopes", methodList, "given twice"}},
		{"a method given to both", mw, []introspectgrpc.Option{all(adminList), anyOf(map[string][]string{methodCheck: {"a"}, methodList: {"root"}})}, []string{methodList, "both WithMethodScopes and WithMethodAnyScopes"}},
		{"every problem named", mw, []introspectgrpc.Option{all(map[string][]string{methodCheck: {""}, methodList: nil})}, []string{methodCheck, methodList}},
		{"nil skipper", mw, []introspectgrpc.Option{introspectgrpc.WithSkipper(nil)}, []string{"WithSkipper: nil skipper"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, err := introspectgrpc.New(tc.mw, tc.opts...)
			if ok := tc.want == nil; ok != (err == nil) || ok != (i != nil) {
				t.Fatalf("New = %v, %v; want ok = %v", i, err, ok)
			}
			if err == nil {
				return
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "introspectgrpc: ") {
					t.Errorf("error %q lacks the package prefix", line)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// TestMethodAnyScopes checks that any one of the scopes of
// WithMethodAnyScopes lets a call through, on a unary and a streaming
// method, next to a WithMethodScopes rule on another method.
func TestMethodAnyScopes(t *testing.T) {
	srv := conformance.NewServer(t)
	auth := newInterceptors(t, conformance.NewMiddleware(t, srv),
		introspectgrpc.WithMethodAnyScopes(map[string][]string{
			methodList:  {"admin", "orders:read"},
			methodWatch: {"watch", "admin"},
		}),
		introspectgrpc.WithMethodScopes(map[string][]string{methodCheck: {"admin", "orders:read"}}),
	)
	client, _ := startServer(t, auth, nil, nil)
	tests := []struct {
		name   string
		method string
		scope  string
		code   codes.Code
	}{
		{"first of two", methodList, "admin", codes.OK},
		{"second of two", methodList, "read orders:read", codes.OK},
		{"both", methodList, "orders:read admin", codes.OK},
		{"neither", methodList, "read orders:write", codes.PermissionDenied},
		{"no scope", methodList, "", codes.PermissionDenied},
		{"stream, one of two", methodWatch, "watch", codes.OK},
		{"stream, neither", methodWatch, "read", codes.PermissionDenied},
		{"all-of next to it, one of two", methodCheck, "admin", codes.PermissionDenied},
		{"all-of next to it, both", methodCheck, "admin orders:read", codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: tc.scope})
			_, err := invoke(t, client, tc.method, []string{"Bearer " + tok})
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tc.code)
			}
		})
	}
	t.Run("no token, optional", func(t *testing.T) {
		auth := newInterceptors(t, conformance.NewMiddleware(t, srv, introspect.WithOptionalToken()),
			introspectgrpc.WithMethodAnyScopes(map[string][]string{methodList: {"admin", "orders:read"}}))
		client, _ := startServer(t, auth, nil, nil)
		if _, err := invoke(t, client, methodList, nil); status.Code(err) != codes.Unauthenticated {
			t.Errorf("code = %v (%v), want Unauthenticated", status.Code(err), err)
		}
		if _, err := invoke(t, client, methodCheck, nil); status.Code(err) != codes.OK {
			t.Errorf("a method without rules: code = %v (%v), want OK", status.Code(err), err)
		}
	})
}

// TestValidate checks the rules against a grpc.Server serving the health
// service.
func TestValidate(t *testing.T) {
	mw := conformance.NewMiddleware(t, conformance.NewServer(t))
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, &healthServer{})
	tests := []struct {
		name string
		opts []introspectgrpc.Option
		want []string // in the error; none for nil
	}{
		{"no rules", nil, nil},
		{"served methods", []introspectgrpc.Option{
			introspectgrpc.WithMethodScopes(map[string][]string{methodList: {"admin"}, methodWatch: {"admin"}}),
			introspectgrpc.WithMethodAnyScopes(map[string][]string{methodCheck: {"read", "admin"}}),
		}, nil},
		{"misspelled method", []introspectgrpc.Option{
			introspectgrpc.WithMethodScopes(map[string][]string{methodList: {"admin"}, "/grpc.health.v1.Health/Lsit": {"admin"}}),
		}, []string{`introspectgrpc: WithMethodScopes: "/grpc.health.v1.Health/Lsit": service grpc.health.v1.Health has no method Lsit`}},
		{"misspelled service", []introspectgrpc.Option{
			introspectgrpc.WithMethodScopes(map[string][]string{"/grpc.health.v1.Helth/List": {"admin"}}),
		}, []string{`introspectgrpc: WithMethodScopes: "/grpc.health.v1.Helth/List": the server has no service grpc.health.v1.Helth`}},
		{"method name in another case", []introspectgrpc.Option{
			introspectgrpc.WithMethodAnyScopes(map[string][]string{"/grpc.health.v1.Health/list": {"admin"}}),
		}, []string{`introspectgrpc: WithMethodAnyScopes: "/grpc.health.v1.Health/list": service grpc.health.v1.Health has no method list`}},
		{"every unknown method named", []introspectgrpc.Option{
			introspectgrpc.WithMethodScopes(map[string][]string{"/shop.v1.Orders/Cancel": {"admin"}, methodList: {"admin"}}),
			introspectgrpc.WithMethodAnyScopes(map[string][]string{"/grpc.health.v1.Health/Wach": {"admin"}}),
		}, []string{`"/shop.v1.Orders/Cancel"`, `"/grpc.health.v1.Health/Wach"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := newInterceptors(t, mw, tc.opts...).Validate(s)
			if (tc.want == nil) != (err == nil) {
				t.Fatalf("Validate = %v, want an error: %v", err, tc.want != nil)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), methodList) {
				t.Errorf("error %q names a served method", err)
			}
		})
	}
	if err := newInterceptors(t, mw).Validate(nil); err == nil || !strings.HasPrefix(err.Error(), "introspectgrpc: ") {
		t.Errorf("Validate(nil) = %v, want an error of the package", err)
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
		{"DPoP proof", introspect.ErrInvalidDPoPProof, codes.Unauthenticated},
		{"DPoP nonce", &introspect.DPoPNonceError{Nonce: "abc"}, codes.Unauthenticated},
		{"DPoP key", introspect.ErrDPoPKeyMismatch, codes.Unauthenticated},
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

// TestOptionalToken: with WithOptionalToken, a call without a token reaches a
// method without scope requirements with no verdict; methods with scopes, and
// invalid tokens, are still refused.
func TestOptionalToken(t *testing.T) {
	srv := conformance.NewServer(t)
	auth := newInterceptors(t, conformance.NewMiddleware(t, srv, introspect.WithOptionalToken()),
		introspectgrpc.WithMethodScopes(map[string][]string{methodList: {"admin"}}))
	client, hs := startServer(t, auth, nil, nil)
	good := "Bearer " + srv.Issue(introspecttest.Claims{Subject: "alice"})
	tests := []struct {
		name    string
		method  string
		auth    []string
		code    codes.Code
		subject string
	}{
		{"anonymous unary", methodCheck, nil, codes.OK, ""},
		{"anonymous stream", methodWatch, nil, codes.OK, ""},
		{"anonymous on a scoped method", methodList, nil, codes.Unauthenticated, ""},
		{"valid token", methodCheck, []string{good}, codes.OK, "alice"},
		{"unknown token", methodCheck, []string{"Bearer never-issued"}, codes.Unauthenticated, ""},
		{"malformed", methodCheck, []string{"Bearer a b"}, codes.InvalidArgument, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := invoke(t, client, tc.method, tc.auth)
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tc.code)
			}
			if tc.code != codes.OK {
				return
			}
			ti := hs.last()
			switch {
			case tc.subject == "" && ti != nil:
				t.Fatalf("an anonymous call has a verdict on its context: %v", ti.Subject)
			case tc.subject != "" && (ti == nil || ti.Subject != tc.subject):
				t.Fatalf("verdict %+v, want subject %q", ti, tc.subject)
			}
		})
	}
}

// A refused call is reported as an HTTP refusal is: Rejected with the status
// the code stands for, Decided with the verdict, and the debug log line.
func TestRefusalsReported(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	t.Cleanup(as.Close)
	var mu sync.Mutex
	var rejected []int
	var decided []string
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("rs", "rs-secret"),
		introspect.WithHooks(&introspect.Hooks{
			Rejected: func(_ context.Context, status int, _ error) {
				mu.Lock()
				defer mu.Unlock()
				rejected = append(rejected, status)
			},
			Decided: func(r *http.Request, d introspect.Decision) {
				mu.Lock()
				defer mu.Unlock()
				decided = append(decided, fmt.Sprintf("%s %d %v", r.URL.Path, d.Status, d.Allowed))
			},
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	client, _ := startServer(t, newInterceptors(t, mw, introspectgrpc.WithMethodScopes(adminList)), nil, nil)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})

	if _, err := invoke(t, client, methodCheck, nil); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	if _, err := invoke(t, client, methodList, []string{"Bearer " + tok}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("no admin scope: %v", err)
	}
	if _, err := invoke(t, client, methodCheck, []string{"Bearer " + tok}); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{http.StatusUnauthorized, http.StatusForbidden}; !slices.Equal(rejected, want) {
		t.Errorf("Rejected saw %v, want %v", rejected, want)
	}
	want := []string{
		methodCheck + " 401 false",
		methodList + " 200 true",  // the token was accepted,
		methodList + " 403 false", // then the method's rule refused it
		methodCheck + " 200 true",
	}
	if !slices.Equal(decided, want) {
		t.Errorf("Decided saw %q, want %q", decided, want)
	}
}

// TestRequestUnixPeer: a unix peer's address, the path it bound its end to
// and so its own choice, never becomes RemoteAddr (it could read
// "127.0.0.1:1"); the listener's address goes where net/http puts it, so
// that a trusted-proxy entry "unix" applies. A TCP peer's address is
// RemoteAddr.
func TestRequestUnixPeer(t *testing.T) {
	local := &net.UnixAddr{Name: "/run/api.sock", Net: "unix"}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.UnixAddr{Name: "127.0.0.1:1", Net: "unix"}, LocalAddr: local})
	r := introspectgrpc.Request(ctx, methodCheck)
	if r.RemoteAddr != "" {
		t.Errorf("RemoteAddr = %q, want none for a unix peer", r.RemoteAddr)
	}
	if got, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr); got != local {
		t.Errorf("LocalAddrContextKey = %v, want the listener's %v", got, local)
	}

	tcp := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}
	r = introspectgrpc.Request(peer.NewContext(context.Background(), &peer.Peer{Addr: tcp}), methodCheck)
	if r.RemoteAddr != "10.0.0.1:5000" {
		t.Errorf("RemoteAddr = %q, want 10.0.0.1:5000", r.RemoteAddr)
	}
	if got := r.Context().Value(http.LocalAddrContextKey); got != nil {
		t.Errorf("LocalAddrContextKey = %v for a TCP peer, want none", got)
	}
}

// A call whose own context ends before its verdict (the client canceled
// it, or its deadline passed while the authorization server was slow) ends
// with Canceled or DeadlineExceeded, unary and stream: Unavailable is an
// outage to clients' retry policies. An outage is still Unavailable.
func TestCallerContextEnded(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	t.Cleanup(as.Close)
	as.SetFault(introspecttest.Latency(time.Minute))
	newMW := func(timeout time.Duration) *introspectgrpc.Interceptors {
		mw, err := introspect.New(
			introspect.WithEndpoint(as.IntrospectionURL()),
			introspect.WithClientCredentials("rs", "rs-secret"),
			introspect.WithTimeout(timeout),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mw.Close() })
		return newInterceptors(t, mw)
	}
	slowAS := newMW(time.Minute)
	callCtx := func(subject string) context.Context {
		tok := as.Issue(introspecttest.Claims{Subject: subject})
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	}
	unary := func(auth *introspectgrpc.Interceptors, ctx context.Context) error {
		_, err := auth.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: methodCheck}, func(context.Context, any) (any, error) {
			t.Error("the handler was reached")
			return nil, nil
		})
		return err
	}
	stream := func(auth *introspectgrpc.Interceptors, ctx context.Context) error {
		return auth.Stream()(nil, &contextStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: methodWatch}, func(any, grpc.ServerStream) error {
			t.Error("the handler was reached")
			return nil
		})
	}
	for name, call := range map[string]func(*introspectgrpc.Interceptors, context.Context) error{"unary": unary, "stream": stream} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(callCtx(name + "-canceled"))
			time.AfterFunc(50*time.Millisecond, cancel)
			if err := call(slowAS, ctx); status.Code(err) != codes.Canceled {
				t.Errorf("canceled: %v, want Canceled", err)
			}
			ctx, cancel = context.WithTimeout(callCtx(name+"-deadline"), 50*time.Millisecond)
			defer cancel()
			if err := call(slowAS, ctx); status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("deadline: %v, want DeadlineExceeded", err)
			}
			if err := call(newMW(50*time.Millisecond), callCtx(name+"-outage")); status.Code(err) != codes.Unavailable {
				t.Errorf("the authorization server too slow for the middleware's timeout: %v, want Unavailable", err)
			}
		})
	}
	canceled := fmt.Errorf("%w: %w", introspect.ErrRequestCanceled, context.Canceled)
	if err := introspectgrpc.Error(canceled); status.Code(err) != codes.Canceled {
		t.Errorf("Error(%v) = %v, want Canceled", canceled, err)
	}
}

// contextStream is a grpc.ServerStream with a context and nothing else.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
