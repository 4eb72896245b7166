package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
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
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, logs bytes.Buffer
			if err := run(ctx, args, &out, &logs); err != nil {
				t.Fatalf("demo failed: %v\n%s\n%s", err, out.String(), logs.String())
			}
			if !strings.Contains(out.String(), "8 passed, 0 failed") {
				t.Fatalf("unexpected demo output:\n%s", out.String())
			}
			for _, line := range strings.Split(out.String()+logs.String(), "\n") {
				if strings.Contains(line, "Bearer ") && !strings.Contains(line, "WWW-Authenticate: Bearer") {
					t.Errorf("a line may reveal a token: %q", line)
				}
			}
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
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, &out, &logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "curl -H 'Authorization: Bearer ") {
		if time.Now().After(deadline) {
			t.Fatalf("no sample curl printed:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if strings.Contains(logs.String(), "Bearer") {
		t.Fatalf("logs mention a bearer token:\n%s", logs.String())
	}
}
