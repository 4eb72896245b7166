package main

import (
	"testing"

	"github.com/introspect-go/introspect/internal/exampledemo/demotest"
)

func TestDemoPasses(t *testing.T) {
	demotest.Demo(t, run, []string{"-demo", "-addr", "127.0.0.1:0"}, "7 passed, 0 failed")
}

func TestServesSampleCurlAndStops(t *testing.T) {
	demotest.Serves(t, run, []string{"-addr", "127.0.0.1:0"}, "curl -H 'Authorization: Bearer ")
}
