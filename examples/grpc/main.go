// Command grpc serves a gRPC server protected by token introspection, in
// front of an embedded test authorization server (introspecttest), so nothing
// needs installing:
//
//	cd examples/grpc && go run .
//
// The standard health service stands in for an API, so no code generation is
// needed: Check needs an active token, List and Watch (a server stream) need
// scope "admin". The reflection service is left open, so grpcurl can list
// and call the methods. It prints a grpcurl command with a live token. -demo
// makes a set of calls against itself and exits 0 only if every answer was as
// expected.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/introspect-go/introspect"
	introspectgrpc "github.com/introspect-go/introspect/adapters/grpc"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
}

// methodScopes are the scope requirements of the API: List and Watch need
// scope "admin".
var methodScopes = map[string][]string{
	healthpb.Health_List_FullMethodName:  {"admin"},
	healthpb.Health_Watch_FullMethodName: {"admin"},
}

// newServer returns the gRPC server: the health service behind the
// interceptors with the requirements of scopes, and the reflection service
// skipped by them. It fails if scopes names a method the server does not
// serve, which would leave the method meant unprotected. It serves without
// TLS, for the example on loopback: bearer tokens cross the network in the
// clear otherwise; give a server of your own grpc.Creds with a TLS
// certificate.
func newServer(mw *introspect.Middleware, scopes map[string][]string) (*grpc.Server, error) {
	auth, err := introspectgrpc.New(mw,
		introspectgrpc.WithMethodScopes(scopes),
		introspectgrpc.WithSkipper(func(_ context.Context, method string) bool {
			return strings.HasPrefix(method, "/grpc.reflection.")
		}),
	)
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.Unary()),
		grpc.ChainStreamInterceptor(auth.Stream()),
	)
	healthpb.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s)
	// After the last service is registered, before Serve.
	if err := auth.Validate(s); err != nil {
		return nil, err
	}
	return s, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:50051", "address of the gRPC server")
	demoMode := fs.Bool("demo", false, "make a set of calls against the server, print the outcomes and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}

	clientID, secret := "grpc-api", exampledemo.Secret()
	as := introspecttest.NewServer(introspecttest.WithClient(clientID, secret))
	defer as.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(clientID, secret),
	)
	if err != nil {
		return err
	}
	defer mw.Close()

	srv, err := newServer(mw, methodScopes)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Stop()

	if *demoMode {
		return demo(ctx, ln.Addr().String(), as, stdout)
	}
	sample := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	fmt.Fprintf(stdout, "gRPC server on %s. A token with scope \"read\" (valid for one hour):\n\n"+
		"  grpcurl -plaintext -H 'authorization: Bearer %s' %s grpc.health.v1.Health/Check\n\n"+
		"grpc.health.v1.Health/List needs scope \"admin\": the same token gets PermissionDenied there. Ctrl-C stops.\n",
		ln.Addr(), sample, ln.Addr())
	select {
	case <-ctx.Done():
		srv.GracefulStop()
		return nil
	case err := <-served:
		return err
	}
}

// demo makes calls against the server and prints each outcome, never a token.
func demo(ctx context.Context, addr string, as *introspecttest.Server, out io.Writer) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	rc := reflectionpb.NewServerReflectionClient(conn)

	reader := "Bearer " + as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	admin := "Bearer " + as.Issue(introspecttest.Claims{Subject: "root", Scope: "read admin"})

	check := func(ctx context.Context) error { _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); return err }
	list := func(ctx context.Context) error { _, err := hc.List(ctx, &healthpb.HealthListRequest{}); return err }
	watch := func(ctx context.Context) error {
		s, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	reflect := func(ctx context.Context) error {
		s, err := rc.ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
		if err := s.Send(req); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	steps := []struct {
		name, method string
		call         func(context.Context) error
		auth         string
		want         codes.Code
	}{
		{"reflection, no token", "ServerReflectionInfo", reflect, "", codes.OK},
		{"valid token", "Check", check, reader, codes.OK},
		{"missing token", "Check", check, "", codes.Unauthenticated},
		{"malformed metadata", "Check", check, "Bearer not a b64token", codes.InvalidArgument},
		{"unknown token", "Check", check, "Bearer never-issued", codes.Unauthenticated},
		{"insufficient scope", "List", list, reader, codes.PermissionDenied},
		{"admin scope", "List", list, admin, codes.OK},
		{"stream, insufficient scope", "Watch", watch, reader, codes.PermissionDenied},
		{"stream, admin scope", "Watch", watch, admin, codes.OK},
	}
	failed := 0
	for _, s := range steps {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if s.auth != "" {
			callCtx = metadata.AppendToOutgoingContext(callCtx, "authorization", s.auth)
		}
		st := status.Convert(s.call(callCtx))
		cancel()
		verdict := "ok  "
		if st.Code() != s.want {
			verdict = "FAIL"
			failed++
		}
		line := fmt.Sprintf("%s %-27s %-20s -> %v", verdict, s.name, s.method, st.Code())
		if st.Message() != "" {
			line += ": " + st.Message()
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(steps)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d demo calls were not answered as expected", failed, len(steps))
	}
	return nil
}
