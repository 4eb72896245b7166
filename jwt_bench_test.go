package introspect_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// BenchmarkLocalJWT puts a request through the middleware in jwt mode (one
// local validation: parse, signature, claims) next to the bare handler and
// to one bare signature verification of the same token with the same key
// (SHA-256 of the signing input and the crypto/rsa or crypto/ecdsa check):
// local minus bare handler is the validation's cost per request, which the
// verification dominates. The timed loops make no call to the authorization
// server.
//
//	go test -run '^$' -bench BenchmarkLocalJWT -benchmem -cpu 1
func BenchmarkLocalJWT(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			var opts []introspecttest.Option
			if alg == "RS256" {
				opts = append(opts, introspecttest.WithSigningKey(newRSAKey(b), "RS256"))
			}
			as := introspecttest.NewServer(opts...)
			defer as.Close()
			tok := as.IssueJWT(introspecttest.Claims{Subject: "bench", Scope: "read write", ClientID: "app",
				Audience: []string{jwtResource}})
			mw, err := introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithValidation(introspect.ValidateJWT),
				introspect.WithJWTAudience(jwtResource), introspect.WithEagerDiscovery())
			if err != nil {
				b.Fatal(err)
			}
			defer mw.Close()
			if _, err := mw.Authenticate(bearer(tok)); err != nil {
				b.Fatal(err)
			}
			b.Run("bare", func(b *testing.B) { runBench(b, benchHandler, "Bearer "+tok) })
			b.Run("verify", func(b *testing.B) {
				key, _ := as.SigningKey()
				verify := bareVerify(b, key.Public(), tok)
				b.ReportAllocs()
				for b.Loop() {
					if !verify() {
						b.Fatal("bad signature")
					}
				}
			})
			b.Run("local", func(b *testing.B) {
				before := as.Calls() + as.JWKSCalls()
				runBench(b, mw.Handler(benchHandler), "Bearer "+tok)
				if as.Calls()+as.JWKSCalls() != before {
					b.Fatal("the local benchmark asked the authorization server")
				}
			})
		})
	}
}

// BenchmarkHybridCachedOpaque is a request with an opaque token whose
// verdict is cached, through a middleware in hybrid mode: the routing
// decision (not a JWT of the issuer) and the cache hit.
func BenchmarkHybridCachedOpaque(b *testing.B) {
	as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
	defer as.Close()
	tok := as.Issue(introspecttest.Claims{Subject: "bench", Scope: "read write", ClientID: "app"})
	cache, err := introspect.NewLRUCache(100_000)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []introspect.ValidationMode{introspect.ValidateIntrospect, introspect.ValidateHybrid} {
		b.Run(mode.String(), func(b *testing.B) {
			opts := []introspect.Option{introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(rsClientID, rsSecret),
				introspect.WithCache(cache), introspect.WithValidation(mode), introspect.WithEagerDiscovery()}
			if mode != introspect.ValidateIntrospect {
				opts = append(opts, introspect.WithJWTAudience(jwtResource))
			}
			mw, err := introspect.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer mw.Close()
			if _, err := mw.Authenticate(bearer(tok)); err != nil {
				b.Fatal(err)
			}
			before := as.Calls()
			runBench(b, mw.Handler(benchHandler), "Bearer "+tok)
			if as.Calls() != before {
				b.Fatal("the cached benchmark asked the authorization server")
			}
		})
	}
}

// runBench serves requests with auth through h on one goroutine.
func runBench(b *testing.B, h http.Handler, auth string) {
	b.ReportAllocs()
	r, _ := http.NewRequest(http.MethodGet, "http://api.example/orders", nil)
	r.Header.Set("Authorization", auth)
	w := &discard{h: make(http.Header)}
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// bareVerify returns the signature check of tok with pub alone.
func bareVerify(b *testing.B, pub crypto.PublicKey, tok string) func() bool {
	i := strings.LastIndexByte(tok, '.')
	input := tok[:i]
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return func() bool {
			sum := sha256.Sum256([]byte(input))
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return func() bool {
			sum := sha256.Sum256([]byte(input))
			return ecdsa.Verify(pub, sum[:], r, s)
		}
	}
	b.Fatalf("unexpected key %T", pub)
	return nil
}
