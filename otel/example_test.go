package introspectotel_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/introspect-go/introspect"
	introspectotel "github.com/introspect-go/introspect/otel"
)

// The hooks record into the global meter and tracer providers, which the
// program sets up with the SDK and its exporters; an otelhttp transport
// nests the client spans of the calls to the authorization server under the
// middleware's spans. Hooks of one's own go next to them through Chain.
func Example() {
	hooks, err := introspectotel.New()
	if err != nil {
		log.Fatal(err)
	}
	audit := &introspect.Hooks{
		Decided: func(r *http.Request, d introspect.Decision) {
			slog.DebugContext(r.Context(), "decision", "method", r.Method, "path", r.URL.Path, "status", d.Status)
		},
		CacheError: func(ctx context.Context, op string, err error) {
			slog.WarnContext(ctx, "cache error", "op", op, "error", err)
		},
	}
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", "api-secret"),
		introspect.WithHooks(introspect.Chain(audit, hooks)),
		introspect.WithHTTPClient(&http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport)}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer mw.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/", otelhttp.NewHandler(mw.Handler(http.NotFoundHandler()), "api"))
	fmt.Println("instrumented")
	// Output: instrumented
}
