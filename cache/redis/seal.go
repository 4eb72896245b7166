package introspectredis

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/introspect-go/introspect"
)

// A value in Redis is a one-byte format, then:
//
//	formatMAC: payload, then the first 16 bytes of
//	           HMAC-SHA-256(value key, digest || n || generation || format || payload)
//	formatGCM: a 12-byte random nonce, then AES-256-GCM(payload) with
//	           additional data format || digest || n || generation, under a
//	           key of its own: HMAC-SHA-256(encryption key, digest)
//
// where digest is the HMAC of the core's key that names the value in Redis,
// generation the content of the entry's generation record when the value was
// written (see redis.go) and n its length in one byte. Either way a value is
// bound to its name and to its generation: one copied under another key,
// altered in any bit, or put back after an eviction replaced the generation,
// fails to open. The value key's label carries a version ("v2"), and the
// MAC or additional data the generation, so values of the earlier format,
// bound to no generation, never open. Deriving one AES key per entry keeps
// the random-nonce limit of AES-GCM (2^32 messages per key) a per-entry
// limit, never reached.
const (
	formatMAC byte = 0x01
	formatGCM byte = 0x02

	macSize = 16

	// maxGeneration bounds the length of a generation: Redis is asked for
	// at most this many bytes of a record.
	maxGeneration = 64
	// generationBytes is the number of random bytes of a generation, which
	// is written in hex.
	generationBytes = 16
)

// digest names an entry in Redis: HMAC-SHA-256 of the core's key.
type digest [sha256.Size]byte

// keys are the secrets of a Cache, derived from the user's. They never leave
// this file: no method prints them.
type keys struct {
	name  []byte // HMAC key of the digests
	value []byte // HMAC key of the values, in formatMAC
	evict cipher.AEAD
	enc   []byte // encryption key; nil: formatMAC
	pool  sync.Pool
}

func newKeys(secret, encryption []byte) (*keys, error) {
	derive := func(label string) ([]byte, error) {
		return hkdf.Key(sha256.New, secret, nil, "introspectredis "+label, 32)
	}
	var k keys
	var err error
	if k.name, err = derive("v1 name"); err != nil {
		return nil, err
	}
	// v2: values bound to a generation (v1 values were not).
	if k.value, err = derive("v2 value"); err != nil {
		return nil, err
	}
	ek, err := derive("v1 evict")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(ek)
	if err != nil {
		return nil, err
	}
	if k.evict, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	if encryption != nil {
		k.enc = append([]byte(nil), encryption...)
	}
	k.pool.New = func() any { return hmac.New(sha256.New, k.name) }
	return &k, nil
}

// digest returns the name of key in Redis.
func (k *keys) digest(key introspect.CacheKey) digest {
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(key[:])
	var d digest
	h.Sum(d[:0])
	k.pool.Put(h)
	return d
}

var errTooShort = errors.New("value too short")

var errGeneration = fmt.Errorf("generation longer than %d bytes", maxGeneration)

// seal returns the value stored for payload under d, bound to the
// generation gen.
func (k *keys) seal(d digest, gen string, payload []byte) ([]byte, error) {
	if len(gen) > maxGeneration {
		return nil, errGeneration
	}
	if k.enc == nil {
		out := make([]byte, 0, 1+len(payload)+sha256.Size)
		out = append(out, formatMAC)
		out = append(out, payload...)
		return k.mac(d, gen, out)[:len(out)+macSize], nil
	}
	aead, err := k.entryAEAD(d)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(payload)+aead.Overhead())
	out[0] = formatGCM
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], payload, additional(d, gen)), nil
}

// open checks and returns the payload of v stored under d and bound to the
// generation gen. The payload may alias v.
func (k *keys) open(d digest, gen string, v []byte) ([]byte, error) {
	if len(gen) > maxGeneration {
		return nil, errGeneration
	}
	if len(v) == 0 {
		return nil, errTooShort
	}
	switch v[0] {
	case formatMAC:
		if k.enc != nil {
			return nil, errors.New("value not encrypted, but an encryption key is set")
		}
		if len(v) < 1+macSize {
			return nil, errTooShort
		}
		body := v[:len(v)-macSize]
		want := k.mac(d, gen, body[:len(body):len(body)])
		if subtle.ConstantTimeCompare(want[len(body):len(body)+macSize], v[len(body):]) != 1 {
			return nil, errors.New("authentication failed")
		}
		return body[1:], nil
	case formatGCM:
		if k.enc == nil {
			return nil, errors.New("value encrypted, but no encryption key is set")
		}
		aead, err := k.entryAEAD(d)
		if err != nil {
			return nil, err
		}
		if len(v) < 1+aead.NonceSize()+aead.Overhead() {
			return nil, errTooShort
		}
		nonce, ct := v[1:1+aead.NonceSize()], v[1+aead.NonceSize():]
		p, err := aead.Open(ct[:0], nonce, ct, additional(d, gen))
		if err != nil {
			return nil, errors.New("authentication failed")
		}
		return p, nil
	default:
		return nil, fmt.Errorf("unknown format %#x", v[0])
	}
}

// mac appends HMAC(value key, d || len(gen) || gen || b) to b. gen is at
// most maxGeneration bytes long.
func (k *keys) mac(d digest, gen string, b []byte) []byte {
	h := hmac.New(sha256.New, k.value)
	h.Write(d[:])
	h.Write([]byte{byte(len(gen))})
	h.Write([]byte(gen))
	h.Write(b)
	return h.Sum(b)
}

func (k *keys) entryAEAD(d digest) (cipher.AEAD, error) {
	h := hmac.New(sha256.New, k.enc)
	h.Write(d[:])
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// additional is the additional data of a formatGCM value: format || d ||
// len(gen) || gen. gen is at most maxGeneration bytes long.
func additional(d digest, gen string) []byte {
	b := make([]byte, 0, 1+len(d)+1+len(gen))
	b = append(b, formatGCM)
	b = append(b, d[:]...)
	b = append(b, byte(len(gen)))
	return append(b, gen...)
}

// newGeneration returns a fresh generation: 16 random bytes in hex.
func newGeneration() (string, error) {
	var b [generationBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// sealEvict returns the message announcing the eviction of key to the
// other replicas: the core's key, encrypted, so only holders of the secret
// learn which entry went (the core's key is an unsalted hash of the token;
// it must not travel in the clear).
func (k *keys) sealEvict(key introspect.CacheKey) ([]byte, error) {
	out := make([]byte, k.evict.NonceSize(), k.evict.NonceSize()+len(key)+k.evict.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return k.evict.Seal(out, out, key[:], nil), nil
}

func (k *keys) openEvict(msg []byte) (introspect.CacheKey, bool) {
	var key introspect.CacheKey
	n := k.evict.NonceSize()
	if len(msg) != n+len(key)+k.evict.Overhead() {
		return key, false
	}
	p, err := k.evict.Open(nil, msg[:n], msg[n:], nil)
	if err != nil || len(p) != len(key) {
		return key, false
	}
	copy(key[:], p)
	return key, true
}
