package introspect_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// dpopBenchToken is an access token of a usual length: 256 random bits.
const dpopBenchToken = "mF9bG3oQx2LZkT7vWcE1yN4uR8sJ0aHdPiKqVb6nXtU"

// dpopBenchAlgs are the algorithms of the DPoP benchmarks.
var dpopBenchAlgs = []string{"ES256", "EdDSA", "PS256"}

// freshKeys passes to a real memory replay cache each key made distinct by
// a counter, so that a benchmark can verify a few proofs over and over: the
// cache does the work of recording a new proof every time.
type freshKeys struct {
	inner *introspect.DPoPMemoryReplayCache
	n     atomic.Uint64
}

func (c *freshKeys) Seen(ctx context.Context, key [32]byte, until time.Time) (bool, error) {
	binary.LittleEndian.PutUint64(key[24:], c.n.Add(1))
	return c.inner.Seen(ctx, key, until)
}

// benchProofs makes n requests with proofs of k.
func benchProofs(k *introspecttest.DPoPKey, n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = dpopRequest("GET", dpopURL, proofAt(k, "GET", dpopURL, dpopBenchToken))
	}
	return reqs
}

// BenchmarkDPoPVerify is the whole check of one proof: parsing, the key
// (from the verifier's key cache, as for a client's second and later
// proofs), the signature, the claims, and a new record in the default
// replay cache; the thumbprint is compared with the token's.
func BenchmarkDPoPVerify(b *testing.B) {
	for _, alg := range dpopBenchAlgs {
		b.Run(alg, func(b *testing.B) {
			k := newDPoPKey(b, alg)
			inner, err := introspect.NewDPoPMemoryReplayCache(introspect.DefaultDPoPReplayCacheSize)
			if err != nil {
				b.Fatal(err)
			}
			v := newDPoPVerifier(b, introspect.WithDPoPReplayCache(&freshKeys{inner: inner}),
				introspect.WithDPoPProofLifetime(time.Hour))
			reqs := benchProofs(k, 64)
			ctx := context.Background()
			jkt := k.JKT()
			if _, err := v.Verify(ctx, reqs[0], dpopBenchToken, jkt); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := v.Verify(ctx, reqs[i%len(reqs)], dpopBenchToken, jkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDPoPVerifyNewKey is BenchmarkDPoPVerify/ES256 with a key the
// verifier has not seen: the jwk is parsed and its thumbprint computed. A
// new verifier is made outside the timer for each proof.
func BenchmarkDPoPVerifyNewKey(b *testing.B) {
	k := newDPoPKey(b, "ES256")
	reqs := benchProofs(k, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		v := newDPoPVerifier(b)
		b.StartTimer()
		if _, err := v.Verify(context.Background(), reqs[i%len(reqs)], dpopBenchToken, k.JKT()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareVerify is the signature check alone, on the same key and
// the same signing input as BenchmarkDPoPVerify: ecdsa.Verify,
// ed25519.Verify and rsa.VerifyPSS, with the digest computed beforehand.
func BenchmarkBareVerify(b *testing.B) {
	for _, alg := range dpopBenchAlgs {
		b.Run(alg, func(b *testing.B) {
			k := newDPoPKey(b, alg)
			proof := benchProofs(k, 1)[0].Header.Get("DPoP")
			dot := strings.LastIndexByte(proof, '.')
			input := []byte(proof[:dot])
			sig, err := base64.RawURLEncoding.DecodeString(proof[dot+1:])
			if err != nil {
				b.Fatal(err)
			}
			digest := sha256.Sum256(input)
			var verify func() bool
			switch pub := k.Public().(type) {
			case *ecdsa.PublicKey:
				r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				verify = func() bool { return ecdsa.Verify(pub, digest[:], r, s) }
			case ed25519.PublicKey:
				verify = func() bool { return ed25519.Verify(pub, input, sig) }
			case *rsa.PublicKey:
				opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}
				verify = func() bool { return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, opts) == nil }
			}
			if !verify() {
				b.Fatal("the signature does not verify")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !verify() {
					b.Fatal("the signature does not verify")
				}
			}
		})
	}
}

// BenchmarkDPoPMiddleware is a cache hit of a DPoP-bound token with a fresh
// proof per request (the proof is checked every time), next to the Bearer
// cache hit: their difference is what DPoP costs a request.
//
//	go test -run '^$' -bench BenchmarkDPoPMiddleware -benchmem
func BenchmarkDPoPMiddleware(b *testing.B) {
	as := introspecttest.NewServer(introspecttest.WithClient(rsClientID, rsSecret))
	defer as.Close()
	cache, err := introspect.NewLRUCache(100_000)
	if err != nil {
		b.Fatal(err)
	}
	var refused atomic.Int64
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithCache(cache),
		introspect.WithHooks(&introspect.Hooks{Rejected: func(context.Context, int, error) { refused.Add(1) }}),
	)
	if err != nil {
		b.Fatal(err)
	}
	defer mw.Close()
	h := mw.Handler(benchHandler)
	const url = "http://api.example/orders"
	defer func() {
		if n := refused.Load(); n > 0 {
			b.Fatalf("%d requests were refused", n)
		}
	}()
	plain := as.Issue(introspecttest.Claims{Subject: "bench"})
	b.Run("bearer-cache-hit", func(b *testing.B) {
		r, _ := http.NewRequest(http.MethodGet, url, nil)
		r.Header.Set("Authorization", "Bearer "+plain)
		w := &discard{h: make(http.Header)}
		h.ServeHTTP(w, r)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		b.Run("dpop-cache-hit-"+alg, func(b *testing.B) {
			key, err := introspecttest.NewDPoPKey(alg)
			if err != nil {
				b.Fatal(err)
			}
			tok := as.Issue(key.Bind(introspecttest.Claims{Subject: "bench"}))
			// Proofs are made ahead: making one is the client's cost.
			proofs := make([]string, b.N+1)
			for i := range proofs {
				proofs[i] = key.Proof(http.MethodGet, url, tok)
			}
			r, _ := http.NewRequest(http.MethodGet, url, nil)
			r.Header.Set("Authorization", "DPoP "+tok)
			w := &discard{h: make(http.Header)}
			r.Header.Set("DPoP", proofs[b.N])
			h.ServeHTTP(w, r) // warms the cache
			before := as.Calls()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Header.Set("DPoP", proofs[i])
				h.ServeHTTP(w, r)
			}
			b.StopTimer()
			if as.Calls() != before {
				b.Fatalf("%d calls to the authorization server", as.Calls()-before)
			}
		})
	}
}
