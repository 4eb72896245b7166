package introspect_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

// The cache policy options govern a cache: without WithCache they would do
// nothing, so New refuses them, naming each.
func TestCachePolicyNeedsCache(t *testing.T) {
	as := newAS(t)
	base := []introspect.Option{
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret),
	}
	for _, tt := range []struct {
		name string
		opt  introspect.Option
	}{
		{"WithMaxTTL", introspect.WithMaxTTL(time.Minute)},
		{"WithDefaultTTL", introspect.WithDefaultTTL(time.Minute)},
		{"WithNegativeTTL", introspect.WithNegativeTTL(time.Second)},
		{"WithStaleIfError", introspect.WithStaleIfError(time.Minute)},
		{"WithRefreshAhead", introspect.WithRefreshAhead(time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := introspect.New(append(base, tt.opt)...)
			require.Error(t, err)
			assert.EqualError(t, err, "introspect: "+tt.name+" needs WithCache: without a cache there is nothing to govern")
			mw, err := introspect.New(append(base, tt.opt, introspect.WithCache(newLRU(t, 10)))...)
			require.NoError(t, err, "with a cache the option is fine")
			require.NoError(t, mw.Close())
		})
	}
	_, err := introspect.New(append(base, introspect.WithNegativeTTL(0), introspect.WithMaxTTL(time.Minute), introspect.WithNegativeTTL(time.Second))...)
	assert.EqualError(t, err, "introspect: WithMaxTTL, WithNegativeTTL needs WithCache: without a cache there is nothing to govern")
}
