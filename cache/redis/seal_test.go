package introspectredis

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/introspect-go/introspect"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")
	testEncKey = []byte("fedcba9876543210fedcba9876543210")
)

// testGen is a generation as newGeneration writes them.
const testGen = "00112233445566778899aabbccddeeff"

func mustKeys(t testing.TB, secret, enc []byte) *keys {
	t.Helper()
	k, err := newKeys(secret, enc)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	payload := appendEntry(nil, fullEntry())
	key := introspect.NewCacheKey("https://as.example.com/introspect", "rs", "token-1")
	other := introspect.NewCacheKey("https://as.example.com/introspect", "rs", "token-2")
	for _, tc := range []struct {
		name string
		enc  []byte
	}{
		{"authenticated", nil},
		{"encrypted", testEncKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKeys(t, testSecret, tc.enc)
			d := k.digest(key)
			v, err := k.seal(d, testGen, payload)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.open(d, testGen, bytes.Clone(v))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("open returned another payload")
			}
			encrypted := !bytes.Contains(v, []byte("alice"))
			if encrypted != (tc.enc != nil) {
				t.Errorf("value encrypted = %v, want %v", encrypted, tc.enc != nil)
			}
			for i := range v {
				bad := bytes.Clone(v)
				bad[i] ^= 0x01
				if _, err := k.open(d, testGen, bad); err == nil {
					t.Fatalf("a value with byte %d of %d altered opened", i, len(v))
				}
			}
			if _, err := k.open(k.digest(other), testGen, bytes.Clone(v)); err == nil {
				t.Error("a value moved under another name opened")
			}
			for _, gen := range []string{"", "0123456789abcdef0123456789abcdeF", testGen[:len(testGen)-1], testGen + "0"} {
				if _, err := k.open(d, gen, bytes.Clone(v)); err == nil {
					t.Errorf("a value opened under the generation %q, not its own", gen)
				}
			}
			if _, err := k.open(d, testGen, v[:len(v)-1]); err == nil {
				t.Error("a truncated value opened")
			}
			otherSecret := mustKeys(t, append(bytes.Clone(testSecret), 'x'), tc.enc)
			if _, err := otherSecret.open(d, testGen, bytes.Clone(v)); err == nil {
				t.Error("a value opened under another secret")
			}
		})
	}
}

func TestOpenRefusesTheOtherMode(t *testing.T) {
	payload := appendEntry(nil, fullEntry())
	plain := mustKeys(t, testSecret, nil)
	enc := mustKeys(t, testSecret, testEncKey)
	d := plain.digest(introspect.NewCacheKey("e", "c", "t"))
	vp, _ := plain.seal(d, testGen, payload)
	ve, _ := enc.seal(d, testGen, payload)
	if _, err := enc.open(d, testGen, vp); err == nil {
		t.Error("a cache with an encryption key accepted a value without encryption")
	}
	if _, err := plain.open(d, testGen, ve); err == nil {
		t.Error("a cache without an encryption key accepted an encrypted value")
	}
	otherKey := mustKeys(t, testSecret, []byte("another key, also 32 bytes long!"))
	if _, err := otherKey.open(d, testGen, bytes.Clone(ve)); err == nil {
		t.Error("a value opened under another encryption key")
	}
}

// TestEarlierFormatDoesNotOpen builds values the way the first version of
// the package sealed them, bound to no generation, and checks that none
// opens, whatever the generation.
func TestEarlierFormatDoesNotOpen(t *testing.T) {
	payload := appendEntry(nil, fullEntry())
	key := introspect.NewCacheKey("e", "c", "t")
	for _, tc := range []struct {
		name string
		enc  []byte
	}{
		{"authenticated", nil},
		{"encrypted", testEncKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKeys(t, testSecret, tc.enc)
			d := k.digest(key)
			var v []byte
			if tc.enc == nil {
				vk, err := hkdf.Key(sha256.New, testSecret, nil, "introspectredis v1 value", 32)
				if err != nil {
					t.Fatal(err)
				}
				v = append([]byte{formatMAC}, payload...)
				h := hmac.New(sha256.New, vk)
				h.Write(d[:])
				h.Write(v)
				v = append(v, h.Sum(nil)[:macSize]...)
			} else {
				aead, err := k.entryAEAD(d)
				if err != nil {
					t.Fatal(err)
				}
				v = make([]byte, 1+aead.NonceSize())
				v[0] = formatGCM
				v = aead.Seal(v, v[1:], payload, append([]byte{formatGCM}, d[:]...))
			}
			for _, gen := range []string{"", testGen} {
				if _, err := k.open(d, gen, bytes.Clone(v)); err == nil {
					t.Errorf("a value of the earlier format opened under the generation %q", gen)
				}
			}
		})
	}
}

func TestSealRefusesLongGenerations(t *testing.T) {
	k := mustKeys(t, testSecret, nil)
	d := k.digest(introspect.NewCacheKey("e", "c", "t"))
	long := strings.Repeat("g", maxGeneration+1)
	if _, err := k.seal(d, long, []byte("p")); err == nil {
		t.Error("seal accepted a generation longer than the limit")
	}
	v, err := k.seal(d, long[:maxGeneration], []byte("p"))
	if err != nil {
		t.Fatalf("seal under a generation of the limit: %v", err)
	}
	if _, err := k.open(d, long, v); err == nil {
		t.Error("open accepted a generation longer than the limit")
	}
}

func TestNewGeneration(t *testing.T) {
	a, err := newGeneration()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newGeneration()
	if len(a) != 2*generationBytes || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("generation %q: want %d hex digits", a, 2*generationBytes)
	}
	if a == b {
		t.Error("two generations are equal")
	}
}

func TestEncryptionUsesFreshNonces(t *testing.T) {
	k := mustKeys(t, testSecret, testEncKey)
	d := k.digest(introspect.NewCacheKey("e", "c", "t"))
	a, _ := k.seal(d, testGen, []byte("same payload"))
	b, _ := k.seal(d, testGen, []byte("same payload"))
	if bytes.Equal(a, b) {
		t.Error("two seals of one payload are equal")
	}
}

func TestDigestIsKeyedHMAC(t *testing.T) {
	key := introspect.NewCacheKey("https://as.example.com/introspect", "rs", "token-1")
	k := mustKeys(t, testSecret, nil)
	d := k.digest(key)
	if bytes.Equal(d[:], key[:]) {
		t.Fatal("the digest is the core's key")
	}
	h := hmac.New(sha256.New, k.name)
	h.Write(key[:])
	if !bytes.Equal(d[:], h.Sum(nil)) {
		t.Error("the digest is not HMAC-SHA-256 of the core's key")
	}
	if again := k.digest(key); again != d {
		t.Error("the digest is not deterministic")
	}
	other := mustKeys(t, append(bytes.Clone(testSecret), 'x'), nil).digest(key)
	if other == d {
		t.Error("two secrets give one digest")
	}
}

func TestEvictMessage(t *testing.T) {
	k := mustKeys(t, testSecret, nil)
	key := introspect.NewCacheKey("e", "c", "t")
	msg, err := k.sealEvict(key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, key[:]) {
		t.Error("the eviction message carries the core's key in the clear")
	}
	got, ok := k.openEvict(msg)
	if !ok || got != key {
		t.Fatalf("openEvict = %x, %v", got, ok)
	}
	for i := range msg {
		bad := bytes.Clone(msg)
		bad[i] ^= 0x80
		if _, ok := k.openEvict(bad); ok {
			t.Fatalf("a message with byte %d altered opened", i)
		}
	}
	if _, ok := mustKeys(t, []byte(strings.Repeat("s", 32)), nil).openEvict(msg); ok {
		t.Error("a message opened under another secret")
	}
	if _, ok := k.openEvict([]byte("garbage")); ok {
		t.Error("garbage opened")
	}
}

func FuzzOpen(f *testing.F) {
	k := mustKeys(f, testSecret, nil)
	ke := mustKeys(f, testSecret, testEncKey)
	d := k.digest(introspect.NewCacheKey("e", "c", "t"))
	v, _ := k.seal(d, testGen, appendEntry(nil, fullEntry()))
	ve, _ := ke.seal(d, testGen, appendEntry(nil, fullEntry()))
	f.Add(v)
	f.Add(ve)
	f.Add([]byte{formatMAC})
	f.Add([]byte{formatGCM})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range []*keys{k, ke} {
			if p, err := k.open(d, testGen, bytes.Clone(b)); err == nil {
				if _, err := decodeEntry(p); err != nil {
					t.Fatalf("an authenticated payload does not decode: %v", err)
				}
			}
			_, _ = k.openEvict(b)
		}
	})
}
