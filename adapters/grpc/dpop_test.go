package introspectgrpc_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/introspect-go/introspect/adapters/internal/conformance"
	"github.com/introspect-go/introspect/introspecttest"
)

// invokeDPoP calls method with the authorization and dpop metadata values and
// returns the error and everything the server sent besides the message.
func invokeDPoP(t *testing.T, c healthpb.HealthClient, method, auth string, proofs ...string) (sent []string, err error) {
	t.Helper()
	kv := []string{"authorization", auth}
	for _, p := range proofs {
		kv = append(kv, "dpop", p)
	}
	return invokeMD(t, c, method, kv...)
}

// TestDPoP calls with DPoP-bound tokens (RFC 9449), with and without TLS: a
// proof for htm POST and htu scheme://:authority/full-method passes, on
// unary and stream calls; a wrong one is codes.Unauthenticated with a fixed
// message that holds neither the token nor the proof.
func TestDPoP(t *testing.T) {
	serverCreds, clientCreds, _, _ := mutualTLS(t)
	for _, tr := range []struct {
		name           string
		scheme         string
		server, client credentials.TransportCredentials
	}{
		{"without TLS", "http", nil, nil},
		{"TLS", "https", serverCreds, clientCreds},
	} {
		t.Run(tr.name, func(t *testing.T) {
			srv := conformance.NewServer(t)
			client, hs := startServer(t, newInterceptors(t, conformance.NewMiddleware(t, srv)), tr.server, tr.client)
			key, other := newDPoPKey(t), newDPoPKey(t)
			tok := srv.Issue(key.Bind(introspecttest.Claims{Subject: "alice"}))
			htu := func(method string) string { return tr.scheme + "://bufnet" + method }
			otherScheme := map[string]string{"http": "https", "https": "http"}[tr.scheme]

			const (
				proofInvalid = "introspect: the DPoP proof is not valid"
				tokenInvalid = "introspect: the access token is not valid"
			)
			tests := []struct {
				name    string
				method  string
				auth    string
				proofs  func(t *testing.T) []string
				code    codes.Code
				message string
			}{
				{"valid proof, unary", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, htu(methodCheck), tok)}
				}, codes.OK, ""},
				{"valid proof, stream", methodWatch, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, htu(methodWatch), tok)}
				}, codes.OK, ""},
				{"authority with the default port", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					port := map[string]string{"http": ":80", "https": ":443"}[tr.scheme]
					return []string{key.Proof(http.MethodPost, tr.scheme+"://bufnet"+port+methodCheck, tok)}
				}, codes.OK, ""},
				{"proof of another key", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{other.Proof(http.MethodPost, htu(methodCheck), tok)}
				}, codes.Unauthenticated, tokenInvalid},
				{"replayed proof", methodCheck, "DPoP " + tok, func(t *testing.T) []string {
					p := key.Proof(http.MethodPost, htu(methodCheck), tok)
					if _, err := invokeDPoP(t, client, methodCheck, "DPoP "+tok, p); err != nil {
						t.Fatalf("first use: %v", err)
					}
					return []string{p}
				}, codes.Unauthenticated, proofInvalid},
				{"proof for another method", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, htu(methodWatch), tok)}
				}, codes.Unauthenticated, proofInvalid},
				{"proof for the other scheme", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, otherScheme+"://bufnet"+methodCheck, tok)}
				}, codes.Unauthenticated, proofInvalid},
				{"proof for another authority", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, tr.scheme+"://api.example.com"+methodCheck, tok)}
				}, codes.Unauthenticated, proofInvalid},
				{"htm GET", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodGet, htu(methodCheck), tok)}
				}, codes.Unauthenticated, proofInvalid},
				{"no proof", methodCheck, "DPoP " + tok, func(*testing.T) []string { return nil }, codes.Unauthenticated, proofInvalid},
				{"two proofs", methodCheck, "DPoP " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, htu(methodCheck), tok), key.Proof(http.MethodPost, htu(methodCheck), tok)}
				}, codes.Unauthenticated, proofInvalid},
				{"DPoP-bound token as Bearer", methodCheck, "Bearer " + tok, func(*testing.T) []string {
					return []string{key.Proof(http.MethodPost, htu(methodCheck), tok)}
				}, codes.Unauthenticated, tokenInvalid},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					proofs := tc.proofs(t)
					hs.mu.Lock()
					hs.seen = nil
					hs.mu.Unlock()
					sent, err := invokeDPoP(t, client, tc.method, tc.auth, proofs...)
					if status.Code(err) != tc.code {
						t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tc.code)
					}
					if tc.code == codes.OK {
						if seen := hs.last(); seen == nil || seen.Subject != "alice" {
							t.Errorf("the handler saw %+v, want alice", seen)
						}
						return
					}
					if hs.last() != nil {
						t.Error("the handler ran for a refused call")
					}
					if msg := status.Convert(err).Message(); msg != tc.message {
						t.Errorf("message %q, want %q", msg, tc.message)
					}
					conformance.NoSecrets(t, sent, append([]string{tok}, proofs...))
					for _, s := range sent {
						if strings.Contains(strings.ToLower(s), "dpop-nonce") {
							t.Errorf("the server sent %q", s)
						}
					}
				})
			}
		})
	}
}

func newDPoPKey(t *testing.T) *introspecttest.DPoPKey {
	t.Helper()
	k, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
