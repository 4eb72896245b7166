package introspect_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/introspect-go/introspect"
)

// refCacheKey is the documented message of NewCacheKey, built in one piece:
// the length-prefixed endpoint and client ID, zeros to a multiple of 64
// bytes, the length-prefixed token.
func refCacheKey(endpoint, clientID, token string) introspect.CacheKey {
	var b []byte
	for _, s := range []string{endpoint, clientID} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	for len(b)%64 != 0 {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(token)))
	b = append(b, token...)
	return sha256.Sum256(b)
}

func TestCacheKeyLayout(t *testing.T) {
	tests := []struct {
		name, endpoint, clientID, token string
	}{
		{name: "typical", endpoint: "https://as.example.com/oauth2/introspect", clientID: "resource-server", token: "2YotnFZFEjr1zCsicMWpAA"},
		{name: "empty", endpoint: "", clientID: "", token: ""},
		{name: "prefix of 63 bytes", endpoint: strings.Repeat("e", 50), clientID: "c", token: "t"},
		{name: "prefix of 64 bytes", endpoint: strings.Repeat("e", 51), clientID: "c", token: "t"},
		{name: "prefix of 65 bytes", endpoint: strings.Repeat("e", 52), clientID: "c", token: "t"},
		{name: "long endpoint", endpoint: "https://as.example.com/" + strings.Repeat("tenant/", 60), clientID: "rs", token: "tok"},
		{name: "long token", endpoint: "https://as/introspect", clientID: "rs", token: strings.Repeat("a.b-c_", 700)},
		{name: "userinfo", endpoint: "userinfo https://as/userinfo", clientID: "rs", token: "tok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := refCacheKey(tc.endpoint, tc.clientID, tc.token)
			for range 2 { // the second derives from the memoised prefix
				if got := introspect.NewCacheKey(tc.endpoint, tc.clientID, tc.token); got != want {
					t.Fatalf("NewCacheKey differs from the documented message")
				}
			}
		})
	}
	// Every token length around the block boundaries.
	for n := range 200 {
		tok := strings.Repeat("x", n)
		if introspect.NewCacheKey("e", "c", tok) != refCacheKey("e", "c", tok) {
			t.Fatalf("token of %d bytes: NewCacheKey differs from the documented message", n)
		}
	}
}

// Many endpoint and client pairs share the bounded memo of prefixes from
// many goroutines (run with -race): every key is still the right one.
func TestCacheKeyManyClients(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				endpoint := fmt.Sprintf("https://as.example.com/tenant-%d/introspect", (i*7+g)%150)
				clientID := fmt.Sprintf("rs-%d", i%3)
				tok := fmt.Sprintf("token-%d-%d", g, i)
				if introspect.NewCacheKey(endpoint, clientID, tok) != refCacheKey(endpoint, clientID, tok) {
					t.Errorf("%s, %s: NewCacheKey differs from the documented message", endpoint, clientID)
					return
				}
			}
		})
	}
	wg.Wait()
}
