package introspectecho_test

import (
	"testing"

	"github.com/introspect-go/introspect/adapters/internal/conformance"
)

func TestDPoP(t *testing.T) { conformance.RunDPoP(t, router) }

func TestDPoPNonce(t *testing.T) { conformance.RunDPoPNonce(t, router) }
