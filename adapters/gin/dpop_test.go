package introspectgin_test

import (
	"testing"

	"github.com/introspect-go/introspect/adapters/internal/conformance"
)

func TestDPoP(t *testing.T) { conformance.RunDPoP(t, engine) }

func TestDPoPNonce(t *testing.T) { conformance.RunDPoPNonce(t, engine) }
