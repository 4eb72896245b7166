package introspectgrpc_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/introspect-go/introspect"
	introspectgrpc "github.com/introspect-go/introspect/adapters/grpc"
	"github.com/introspect-go/introspect/introspecttest"
)

func Example() {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	defer as.Close()

	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("rs", "rs-secret"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := introspectgrpc.New(mw, introspectgrpc.WithMethodScopes(map[string][]string{
		"/grpc.health.v1.Health/List": {"admin"},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.Unary()),
		grpc.ChainStreamInterceptor(auth.Stream()),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	if err := auth.Validate(srv); err != nil {
		fmt.Println(err)
		return
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println("Check:", status.Code(err))
	_, err = client.List(ctx, &healthpb.HealthListRequest{})
	fmt.Println("List:", status.Code(err))
	_, err = client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println("Check without a token:", status.Code(err))
	// Output:
	// Check: OK
	// List: PermissionDenied
	// Check without a token: Unauthenticated
}

func ExampleInterceptors_Validate() {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	defer as.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("rs", "rs-secret"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := introspectgrpc.New(mw, introspectgrpc.WithMethodScopes(map[string][]string{
		"/grpc.health.v1.Health/Lsit": {"admin"},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.Unary()),
		grpc.ChainStreamInterceptor(auth.Stream()),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	fmt.Println(auth.Validate(srv))
	// Output:
	// introspectgrpc: WithMethodScopes: "/grpc.health.v1.Health/Lsit": service grpc.health.v1.Health has no method Lsit
}
