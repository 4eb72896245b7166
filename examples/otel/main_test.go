package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/internal/exampledemo/demotest"
	"github.com/introspect-go/introspect/introspecttest"
)

// api is the example's API, with its telemetry, in front of a test
// authorization server.
type api struct {
	as     *introspecttest.Server
	srv    *httptest.Server
	secret string
	run    func(ctx context.Context) error // the demo's scripted requests
}

func newAPI(t *testing.T, hostAttribute bool) *api {
	t.Helper()
	tel, err := newTelemetry(false, io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.shutdown() })
	a := &api{secret: exampledemo.Secret()}
	a.as = introspecttest.NewServer(introspecttest.WithClient("otel-api", a.secret))
	t.Cleanup(a.as.Close)
	mw, err := newMiddleware(a.as.IntrospectionURL(), "otel-api", a.secret, hostAttribute, tel.meterProvider, tel.tracerProvider,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	a.srv = httptest.NewServer(routes(mw, tel))
	t.Cleanup(a.srv.Close)
	a.run = func(ctx context.Context) error { return script(ctx, a.srv.URL, a.as, mw, io.Discard) }
	return a
}

// value returns the value of the one line of the Prometheus text that is
// a series of name with every one of labels (k="v"); it fails t unless
// there is exactly one.
func value(t *testing.T, text, name string, labels ...string) float64 {
	t.Helper()
	var found []string
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(rest, l)
		}
		if all {
			found = append(found, line)
		}
	}
	require.Len(t, found, 1, "series %s%v in:\n%s", name, labels, text)
	v, err := strconv.ParseFloat(found[0][strings.LastIndexByte(found[0], ' ')+1:], 64)
	require.NoError(t, err)
	return v
}

// After the scripted requests (a valid token, twice; a missing one; a
// token before and after its revocation; an insufficient scope; an outage
// of the authorization server), /metrics serves each introspect series
// with its value, under the exporter's names, and the other
// instrumentations' series beside them; never a token or the secret.
func TestMetricsAfterScriptedRequests(t *testing.T) {
	a := newAPI(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.run(ctx))
	text, err := scrape(ctx, a.srv.URL)
	require.NoError(t, err)

	scope := `otel_scope_name="github.com/introspect-go/introspect/otel"`
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"introspect_decisions_total", []string{`introspect_outcome="allowed"`}, 4},
		{"introspect_decisions_total", []string{`introspect_outcome="missing"`}, 1},
		{"introspect_decisions_total", []string{`introspect_outcome="inactive"`}, 1},
		{"introspect_decisions_total", []string{`introspect_outcome="insufficient_scope"`}, 1},
		{"introspect_decisions_total", []string{`introspect_outcome="unavailable"`}, 1},
		{"introspect_cache_lookups_total", []string{`introspect_cache_result="hit"`}, 2},
		{"introspect_cache_lookups_total", []string{`introspect_cache_result="miss"`}, 4},
		{"introspect_introspection_duration_seconds_count", []string{`introspect_result="active"`}, 2},
		{"introspect_introspection_duration_seconds_count", []string{`introspect_result="inactive"`}, 1},
		{"introspect_introspection_duration_seconds_count", []string{`error_type="http_5xx"`, `introspect_result="error"`}, 1},
		{"introspect_introspection_duration_seconds_bucket", []string{`introspect_result="active"`, `le="5"`}, 2},
		{"introspect_introspection_duration_seconds_bucket", []string{`error_type="http_5xx"`, `le="+Inf"`}, 1},
		{"introspect_introspection_in_flight", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name+strings.Join(tc.labels, ","), func(t *testing.T) {
			assert.Equal(t, tc.want, value(t, text, tc.name, append(tc.labels, scope)...))
		})
	}
	// The module's buckets, from 100 µs, not the SDK's default ones: the
	// series exists (how many calls took less is the machine's business).
	assert.LessOrEqual(t, value(t, text, "introspect_introspection_duration_seconds_bucket", `introspect_result="active"`, `le="0.0001"`, scope), 2.0)
	for _, outcome := range []string{"anonymous", "malformed", "canceled"} {
		assert.NotContains(t, text, `introspect_outcome="`+outcome+`"`, "no request had that outcome")
	}
	assert.Greater(t, value(t, text, "introspect_introspection_duration_seconds_sum", `introspect_result="active"`), 0.0)
	for status, n := range map[string]float64{"200": 3, "401": 2, "403": 1, "503": 1} {
		assert.Equal(t, n, value(t, text, "http_server_request_duration_seconds_count", `http_response_status_code="`+status+`"`),
			"otelhttp's server metrics, beside the middleware's: %s", status)
	}
	assert.Contains(t, text, `service_name="introspect-otel-example"`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "introspect_") {
			assert.NotContains(t, line, "server_address", "no host without -endpoint-host")
		}
	}
	assert.NotContains(t, text, a.secret)
	assert.NotContains(t, text, "otel-app", "no client ID of a token")
	assert.NotContains(t, text, "alice")
}

// With -endpoint-host the introspection series carry the endpoint's host,
// and nothing more of its URL.
func TestEndpointHost(t *testing.T) {
	a := newAPI(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.run(ctx))
	text, err := scrape(ctx, a.srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 2.0, value(t, text, "introspect_introspection_duration_seconds_count",
		`introspect_result="active"`, `server_address="127.0.0.1"`))
	assert.Equal(t, 0.0, value(t, text, "introspect_introspection_in_flight", `server_address="127.0.0.1"`))
	port := a.as.URL[strings.LastIndexByte(a.as.URL, ':'):]
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "introspect_") {
			assert.NotContains(t, line, port, "no more of the URL than the host")
			assert.NotContains(t, line, "http:")
		}
	}
}

func TestDemoPasses(t *testing.T) {
	demotest.Demo(t, run, []string{"-demo", "-addr", "127.0.0.1:0"}, "7 passed, 0 failed")
	demotest.Demo(t, run, []string{"-demo", "-addr", "127.0.0.1:0"}, "17 series as expected")
}

// -stdout writes the spans, the middleware's among them, and the metrics
// to stdout; no token shows there.
func TestStdout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, logs exampledemo.Buffer
	require.NoError(t, run(ctx, []string{"-demo", "-stdout", "-addr", "127.0.0.1:0"}, &out, &logs), logs.String())
	text := out.String()
	for _, want := range []string{`"Name":"introspect.introspection"`, `"Name":"GET /api/"`, `"Name":"introspect.decisions"`, "17 series as expected"} {
		assert.Contains(t, text, want)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "Bearer ") && !strings.Contains(line, "WWW-Authenticate: Bearer") {
			t.Errorf("a line may reveal a token: %.200q", line)
		}
	}
}

func TestServesSampleCurlAndStops(t *testing.T) {
	demotest.Serves(t, run, []string{"-addr", "127.0.0.1:0"}, "curl -H 'Authorization: Bearer ")
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"client ID without endpoint", []string{"-client-id", "x"}, "", "-client-id needs -endpoint"},
		{"endpoint without secret", []string{"-endpoint", "https://as.example/introspect", "-client-id", "x"}, "", "$INTROSPECT_CLIENT_SECRET"},
		{"endpoint without client ID", []string{"-endpoint", "https://as.example/introspect"}, "s3cret", "-client-id"},
		{"demo with endpoint", []string{"-demo", "-endpoint", "https://as.example/introspect", "-client-id", "x"}, "s3cret", "-demo needs the embedded"},
		{"arguments", []string{"extra"}, "", "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(secretEnv, tc.env)
			_, err := parseFlags(tc.args, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("real server", func(t *testing.T) {
		t.Setenv(secretEnv, "s3cret")
		o, err := parseFlags([]string{"-endpoint", "https://as.example/introspect", "-client-id", "x"}, io.Discard)
		require.NoError(t, err)
		assert.Equal(t, "s3cret", o.clientSecret)
	})
}
