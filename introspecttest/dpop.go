package introspecttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// DPoPKey is a client's DPoP key (RFC 9449) for tests: it makes the proofs
// a client sends in the DPoP header, good ones and, with options, bad ones.
// Issue a token bound to it with [DPoPKey.Bind]. Its printed forms show the
// algorithm and the thumbprint, never the private key.
type DPoPKey struct {
	alg    string
	signer crypto.Signer
	jwk    json.RawMessage // the public key
	jkt    string
}

// dpopAlgs are the algorithms a DPoPKey signs with, and the hash of each.
var dpopAlgs = map[string]crypto.Hash{
	"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
	"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512,
	"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
	"EdDSA":   0,
	"Ed25519": 0,
}

// NewDPoPKey returns a fresh key for alg: ES256 (P-256, also for ""),
// ES384, ES512, EdDSA or Ed25519 (an Ed25519 key, RFC 9864), or PS256,
// PS384, PS512, RS256, RS384 and RS512 (RSA, 2048 bits).
func NewDPoPKey(alg string) (*DPoPKey, error) {
	if alg == "" {
		alg = "ES256"
	}
	var key crypto.Signer
	var err error
	switch {
	case alg == "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case alg == "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case alg == "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case alg == "EdDSA" || alg == "Ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case strings.HasPrefix(alg, "PS") || strings.HasPrefix(alg, "RS"):
		if _, ok := dpopAlgs[alg]; !ok {
			return nil, fmt.Errorf("introspecttest: NewDPoPKey: unknown algorithm %q", alg)
		}
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("introspecttest: NewDPoPKey: unknown algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("introspecttest: NewDPoPKey: %w", err)
	}
	return NewDPoPKeyFrom(key, alg)
}

// NewDPoPKeyFrom makes a DPoPKey of a key of your own: an *ecdsa.PrivateKey
// (P-256, P-384 or P-521), an ed25519.PrivateKey, an *rsa.PrivateKey, or any
// crypto.Signer with such a public key. alg "" is the key's usual algorithm:
// ES256, ES384 or ES512 by curve, EdDSA (or Ed25519) for Ed25519, PS256 for
// RSA.
func NewDPoPKeyFrom(key crypto.Signer, alg string) (*DPoPKey, error) {
	if key == nil {
		return nil, errors.New("introspecttest: NewDPoPKeyFrom: nil key")
	}
	var want string // the algorithm the key's type implies, "" for RSA
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			want = "ES256"
		case elliptic.P384():
			want = "ES384"
		case elliptic.P521():
			want = "ES512"
		default:
			return nil, errors.New("introspecttest: NewDPoPKeyFrom: unsupported curve")
		}
	case ed25519.PublicKey:
		want = "EdDSA"
	case *rsa.PublicKey:
		if alg == "" {
			alg = "PS256"
		}
		if _, ok := dpopAlgs[alg]; !ok || !strings.HasPrefix(alg, "PS") && !strings.HasPrefix(alg, "RS") {
			return nil, fmt.Errorf("introspecttest: NewDPoPKeyFrom: %q is not an RSA algorithm", alg)
		}
	default:
		return nil, fmt.Errorf("introspecttest: NewDPoPKeyFrom: unsupported key type %T", pub)
	}
	if want == "EdDSA" && alg == "Ed25519" {
		want = alg // the same algorithm by its fully-specified name
	}
	if want != "" {
		if alg != "" && alg != want {
			return nil, fmt.Errorf("introspecttest: NewDPoPKeyFrom: the key signs with %s, not %q", want, alg)
		}
		alg = want
	}
	pub, err := jwk.Import(key.Public())
	if err != nil {
		return nil, fmt.Errorf("introspecttest: NewDPoPKeyFrom: %w", err)
	}
	raw, err := json.Marshal(pub)
	if err != nil {
		return nil, fmt.Errorf("introspecttest: NewDPoPKeyFrom: %w", err)
	}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("introspecttest: NewDPoPKeyFrom: %w", err)
	}
	return &DPoPKey{alg: alg, signer: key, jwk: raw, jkt: base64.RawURLEncoding.EncodeToString(thumb)}, nil
}

// Alg is the algorithm of the key's proofs.
func (k *DPoPKey) Alg() string { return k.alg }

// JKT is the RFC 7638 SHA-256 thumbprint of the key, base64url: the "jkt"
// of the cnf of a token bound to it, and what a verifier returns.
func (k *DPoPKey) JKT() string { return k.jkt }

// Public returns the public key.
func (k *DPoPKey) Public() crypto.PublicKey { return k.signer.Public() }

// PublicJWK returns the public key as a JWK, as the proofs' jwk header
// parameter carries it.
func (k *DPoPKey) PublicJWK() json.RawMessage { return append(json.RawMessage(nil), k.jwk...) }

// Bind returns c bound to the key: its Confirmation (copied) has "jkt" set
// to [DPoPKey.JKT], and its TokenType is "DPoP" unless set (RFC 9449 §6.2).
// Issue the token with [Server.Issue]:
//
//	tok := as.Issue(key.Bind(introspecttest.Claims{Subject: "alice"}))
func (k *DPoPKey) Bind(c Claims) Claims {
	cnf := maps.Clone(c.Confirmation)
	if cnf == nil {
		cnf = make(map[string]string, 1)
	}
	cnf["jkt"] = k.jkt
	c.Confirmation = cnf
	if c.TokenType == "" {
		c.TokenType = "DPoP"
	}
	return c
}

// DPoPProofOption changes a proof made by [DPoPKey.Proof].
type DPoPProofOption func(*proofSpec)

type proofSpec struct {
	header, claims map[string]any
	signer         *DPoPKey
}

// WithProofNonce sets the nonce claim, the server's DPoP-Nonce.
func WithProofNonce(nonce string) DPoPProofOption {
	return WithProofClaim("nonce", nonce)
}

// WithProofIssuedAt sets iat, in whole seconds. Default the time of the call.
func WithProofIssuedAt(t time.Time) DPoPProofOption {
	return WithProofClaim("iat", t.Unix())
}

// WithProofJTI sets jti. Default 128 random bits, base64url.
func WithProofJTI(jti string) DPoPProofOption {
	return WithProofClaim("jti", jti)
}

// WithProofHeader sets the header parameter name to value, or removes it
// when value is nil (json.RawMessage("null") sends a JSON null). For
// negative tests: a wrong typ or alg, no jwk, a jwk with a private member.
func WithProofHeader(name string, value any) DPoPProofOption {
	return func(p *proofSpec) { setMember(p.header, name, value) }
}

// WithProofClaim sets the claim name to value, or removes it when value is
// nil (json.RawMessage("null") sends a JSON null). For negative tests: a
// wrong htm, htu or ath, a stale iat, an iat that is a string, no jti.
func WithProofClaim(name string, value any) DPoPProofOption {
	return func(p *proofSpec) { setMember(p.claims, name, value) }
}

// WithProofSignedBy signs the proof with other's private key, in other's
// algorithm, while the header keeps this key's jwk: a signature that does
// not verify.
func WithProofSignedBy(other *DPoPKey) DPoPProofOption {
	return func(p *proofSpec) { p.signer = other }
}

// setMember sets name to value in m, or removes it when value is nil.
func setMember(m map[string]any, name string, value any) {
	if value == nil {
		delete(m, name)
		return
	}
	m[name] = value
}

// Proof returns a DPoP proof for a request with method to url, for
// accessToken ("" leaves ath out, as for a token request): a JWS with typ
// dpop+jwt, the key's alg and jwk, and the claims jti (random), htm
// (method), htu (url without its query and fragment), iat (now) and ath
// (the base64url SHA-256 of accessToken). Options change or break it. It
// panics if a value given to an option cannot be encoded as JSON.
func (k *DPoPKey) Proof(method, url, accessToken string, opts ...DPoPProofOption) string {
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	p := proofSpec{
		header: map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk},
		claims: map[string]any{
			"jti": base64.RawURLEncoding.EncodeToString(jti),
			"htm": method,
			"htu": url,
			"iat": time.Now().Unix(),
		},
		signer: k,
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		p.claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for _, o := range opts {
		o(&p)
	}
	header, err := json.Marshal(p.header)
	if err != nil {
		panic("introspecttest: DPoPKey.Proof: header: " + err.Error())
	}
	claims, err := json.Marshal(p.claims)
	if err != nil {
		panic("introspecttest: DPoPKey.Proof: claims: " + err.Error())
	}
	return p.signer.Sign(header, claims)
}

// Sign returns the compact JWS of header and claims as given, signed with
// the key in its algorithm, whatever the header says: for proofs no option
// can make (a header that is not JSON, a claim given twice).
func (k *DPoPKey) Sign(header, claims []byte) string {
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sig, err := k.sign([]byte(input))
	if err != nil {
		panic("introspecttest: DPoPKey.Sign: " + err.Error())
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// sign signs input in the key's algorithm: r||s for ECDSA (RFC 7518
// §3.4), PSS with a salt as long as the hash for PS*.
func (k *DPoPKey) sign(input []byte) ([]byte, error) {
	h := dpopAlgs[k.alg]
	if h == 0 { // EdDSA signs the message itself
		return k.signer.Sign(rand.Reader, input, crypto.Hash(0))
	}
	d := h.New()
	d.Write(input)
	digest := d.Sum(nil)
	var opts crypto.SignerOpts = h
	if strings.HasPrefix(k.alg, "PS") {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	sig, err := k.signer.Sign(rand.Reader, digest, opts)
	if err != nil || !strings.HasPrefix(k.alg, "ES") {
		return sig, err
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, err
	}
	size := (k.signer.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// Format prints the algorithm and the thumbprint, the same for every verb;
// never the private key.
func (k DPoPKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, fmt.Sprintf("introspecttest.DPoPKey{Alg: %q, JKT: %q}", k.alg, k.jkt))
}

// LogValue implements [slog.LogValuer] with the algorithm and the
// thumbprint.
func (k *DPoPKey) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("alg", k.alg), slog.String("jkt", k.jkt))
}

// MarshalJSON writes the algorithm and the thumbprint.
func (k DPoPKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Alg string `json:"alg"`
		JKT string `json:"jkt"`
	}{k.alg, k.jkt})
}
