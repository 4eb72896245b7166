package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect/internal/exampledemo/demotest"
)

func TestDemoPasses(t *testing.T) {
	for _, args := range [][]string{
		{"-demo", "-addr", "127.0.0.1:0"},
		{"-demo", "-addr", "127.0.0.1:0", "-cache=false"},
		{"-demo", "-addr", "127.0.0.1:0", "-max-ttl", "1m", "-negative-ttl", "0"},
		{"-demo", "-addr", "127.0.0.1:0", "-jwt-response"},
		{"-demo", "-addr", "127.0.0.1:0", "-auth-method", "client_secret_jwt"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			demotest.Demo(t, run, args, "8 passed, 0 failed")
		})
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-endpoint", "https://as.example.com/introspect"},
		{"-client-id", "x"},
		{"-demo", "-endpoint", "https://as.example.com/introspect", "-client-id", "a", "-client-secret", "b"},
		{"extra"},
		{"-no-such-flag"},
		{"-endpoint", "http://as.example.com/introspect", "-client-id", "a", "-client-secret", "b"},
		{"-issuer", "http://as.example.com", "-client-id", "a", "-client-secret", "b"},
		{"-issuer", "https://as.example.com"},
		{"-endpoint", "https://as.example.com/introspect", "-client-id", "a", "-client-secret", "b", "-jwt-response"},
		{"-auth-method", "magic"},
		{"-private-key", "/nonexistent/key.pem"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, logs bytes.Buffer
			if err := run(ctx, append(args, "-addr", "127.0.0.1:0"), &out, &logs); err == nil {
				t.Fatal("run accepted bad flags")
			}
		})
	}
}

func TestServesSampleCurlAndStops(t *testing.T) {
	demotest.Serves(t, run, []string{"-addr", "127.0.0.1:0"}, "curl -H 'Authorization: Bearer ")
}
