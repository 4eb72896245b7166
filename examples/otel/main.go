// Command otel runs a protected API instrumented with OpenTelemetry: the
// middleware's metrics and spans (introspectotel), the API's server spans
// and the client spans of the calls to the authorization server (otelhttp),
// with GET /metrics on the same address serving every metric through the
// OpenTelemetry Prometheus exporter. With no flags it embeds a test
// authorization server (introspecttest), so nothing needs installing:
//
//	cd examples/otel && go run .
//
// It prints a curl command with a live token and the /metrics URL. -stdout
// also writes the spans, and the metrics every 10 s and at exit, to
// stdout. -demo makes a scripted set of requests against itself (a valid
// token, a missing one, a revoked one, an insufficient scope, an outage of
// the authorization server), reads /metrics, prints the introspect series
// and exits 0 only if every answer and every series' value were as
// expected.
//
// To use a real authorization server instead, name its introspection
// endpoint and the API's client ID; the client secret is read from the
// environment variable INTROSPECT_CLIENT_SECRET:
//
//	export INTROSPECT_CLIENT_SECRET=...
//	go run . -endpoint https://as.example.com/introspect -client-id ID
//
// -endpoint-host adds the endpoint's host to the introspection metrics and
// spans as server.address.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
	introspectotel "github.com/introspect-go/introspect/otel"
)

// secretEnv is the environment variable holding the client secret.
const secretEnv = "INTROSPECT_CLIENT_SECRET"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		os.Exit(1)
	}
}

type options struct {
	addr         string
	endpoint     string
	clientID     string
	clientSecret string
	demo         bool
	stdout       bool
	endpointHost bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("otel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address of the protected API and of GET /metrics")
	fs.StringVar(&o.endpoint, "endpoint", "", "introspection endpoint of a real authorization server (default: an embedded test server)")
	fs.StringVar(&o.clientID, "client-id", "", "client ID at the authorization server (with -endpoint; the secret comes from $"+secretEnv+")")
	fs.BoolVar(&o.demo, "demo", false, "make a set of requests against the API, check the metrics, print the outcomes and exit")
	fs.BoolVar(&o.stdout, "stdout", false, "also write the spans, and the metrics every 10 s and at exit, to stdout")
	fs.BoolVar(&o.endpointHost, "endpoint-host", false, "add the endpoint's host to the introspection metrics and spans (server.address)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.endpoint == "" && o.clientID != "":
		return o, errors.New("-client-id needs -endpoint")
	case o.endpoint != "" && o.demo:
		return o, errors.New("-demo needs the embedded authorization server: leave out -endpoint")
	case o.endpoint != "":
		o.clientSecret = os.Getenv(secretEnv)
		if o.clientID == "" || o.clientSecret == "" {
			return o, errors.New("-endpoint needs -client-id and the client secret in $" + secretEnv)
		}
	}
	return o, nil
}

// telemetry is the OpenTelemetry SDK of the program: a meter provider read
// by the Prometheus exporter (and by a stdout exporter with -stdout), and a
// tracer provider (exporting to stdout with -stdout).
type telemetry struct {
	meterProvider  *sdkmetric.MeterProvider
	tracerProvider *sdktrace.TracerProvider
	metrics        http.Handler // GET /metrics
}

func newTelemetry(toStdout bool, stdout io.Writer) (*telemetry, error) {
	res := resource.NewSchemaless(semconv.ServiceName("introspect-otel-example"))
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(exporter)}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if toStdout {
		me, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		if err != nil {
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me, sdkmetric.WithInterval(10*time.Second))))
		te, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, err
		}
		topts = append(topts, sdktrace.WithSyncer(te))
	}
	return &telemetry{
		meterProvider:  sdkmetric.NewMeterProvider(mopts...),
		tracerProvider: sdktrace.NewTracerProvider(topts...),
		metrics:        promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
	}, nil
}

// shutdown flushes the exporters.
func (t *telemetry) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(t.meterProvider.Shutdown(ctx), t.tracerProvider.Shutdown(ctx))
}

// newMiddleware is the middleware with its metrics and spans, and the client
// spans of its calls to the authorization server.
func newMiddleware(endpoint, clientID, secret string, hostAttribute bool, meterProvider *sdkmetric.MeterProvider,
	tracerProvider *sdktrace.TracerProvider, logger *slog.Logger) (*introspect.Middleware, error) {
	otelOpts := []introspectotel.Option{
		introspectotel.WithMeterProvider(meterProvider),
		introspectotel.WithTracerProvider(tracerProvider),
	}
	if hostAttribute {
		otelOpts = append(otelOpts, introspectotel.WithEndpointHostAttribute())
	}
	hooks, err := introspectotel.New(otelOpts...)
	if err != nil {
		return nil, err
	}
	// otelhttp's client spans of the calls to the authorization server nest
	// under the middleware's spans. Trace context alone goes with the calls:
	// a global baggage propagator would forward the baggage of the request
	// that started a call, which its client chose.
	transport := otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithMeterProvider(meterProvider), otelhttp.WithTracerProvider(tracerProvider),
		otelhttp.WithPropagators(propagation.TraceContext{}))
	cache, err := introspect.NewLRUCache(100_000)
	if err != nil {
		return nil, err
	}
	return introspect.New(
		introspect.WithEndpoint(endpoint),
		introspect.WithClientCredentials(clientID, secret),
		introspect.WithCache(cache),
		introspect.WithHooks(hooks),
		introspect.WithHTTPClient(&http.Client{Transport: transport}),
		introspect.WithLogger(logger),
		introspect.WithRealm("otel-example"),
	)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tel, err := newTelemetry(o.stdout, stdout)
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.shutdown(); err != nil {
			logger.Warn("flushing the telemetry failed", "error", err)
		}
	}()

	var as *introspecttest.Server
	if o.endpoint == "" {
		o.clientID, o.clientSecret = "otel-api", exampledemo.Secret()
		as = introspecttest.NewServer(introspecttest.WithClient(o.clientID, o.clientSecret))
		defer as.Close()
		o.endpoint = as.IntrospectionURL()
		logger.Info("embedded authorization server started", "introspection_endpoint", o.endpoint)
	}
	mw, err := newMiddleware(o.endpoint, o.clientID, o.clientSecret, o.endpointHost, tel.meterProvider, tel.tracerProvider, logger)
	if err != nil {
		return err
	}
	defer mw.Close()

	return exampledemo.Serve(ctx, o.addr, routes(mw, tel), func(base string) (bool, error) {
		logger.Info("protected API listening", "url", base, "metrics", base+"/metrics")
		if o.demo {
			return true, demo(ctx, base, as, mw, stdout)
		}
		if as != nil {
			sample := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "otel-app", Scope: "read"})
			fmt.Fprintf(stdout, "\nA token with scope \"read\" (valid for one hour):\n\n"+
				"  curl -H 'Authorization: Bearer %s' %s/api/me\n\n"+
				"/api/admin needs scope \"admin\": the same token gets 403 there. The metrics:\n\n"+
				"  curl %s/metrics\n\nCtrl-C stops.\n", sample, base, base)
		}
		return false, nil
	})
}

// routes serves GET /metrics and the protected API, traced by otelhttp:
// /api/me for any valid token, /api/admin for tokens with scope "admin".
func routes(mw *introspect.Middleware, tel *telemetry) http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		writeJSON(w, map[string]any{"sub": ti.Subject, "scope": strings.Join(ti.Scopes, " ")})
	})
	api.Handle("GET /api/admin", mw.RequireScope("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		writeJSON(w, map[string]any{"admin": true, "sub": ti.Subject})
	})))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.metrics)
	mux.Handle("/api/", otelhttp.NewHandler(mw.Handler(api), "api",
		otelhttp.WithMeterProvider(tel.meterProvider), otelhttp.WithTracerProvider(tel.tracerProvider)))
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
