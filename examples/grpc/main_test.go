package main

import (
	"strings"
	"testing"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/exampledemo/demotest"
	"github.com/introspect-go/introspect/introspecttest"
)

func TestDemoPasses(t *testing.T) {
	demotest.Demo(t, run, []string{"-demo", "-addr", "127.0.0.1:0"}, "9 passed, 0 failed")
}

func TestServesSampleCommandAndStops(t *testing.T) {
	demotest.Serves(t, run, []string{"-addr", "127.0.0.1:0"}, "grpcurl -plaintext -H 'authorization: Bearer ")
}

// TestNewServerChecksRules checks that a rule for a method the server does
// not serve stops the server from being built.
func TestNewServerChecksRules(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	t.Cleanup(as.Close)
	mw, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials("rs", "rs-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	tests := []struct {
		name   string
		scopes map[string][]string
		want   string // in the error; "" for none
	}{
		{"the example's rules", methodScopes, ""},
		{"misspelled method", map[string][]string{"/grpc.health.v1.Health/Lsit": {"admin"}}, `"/grpc.health.v1.Health/Lsit"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newServer(mw, tc.scopes)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("newServer: %v", err)
				}
				s.Stop()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newServer error = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
