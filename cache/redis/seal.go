package introspectredis

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/introspect-go/introspect"
)

// A value in Redis is a one-byte format, then:
//
//	formatMAC: payload, then the first 16 bytes of
//	           HMAC-SHA-256(value key, digest || format || payload)
//	formatGCM: a 12-byte random nonce, then AES-256-GCM(payload) with
//	           additional data format || digest, under a key of its own:
//	           HMAC-SHA-256(encryption key, digest)
//
// where digest is the HMAC of the core's key that names the value in Redis.
// Either way a value is bound to its name: one copied under another key, or
// altered in any bit, fails to open. Deriving one AES key per entry keeps
// the random-nonce limit of AES-GCM (2^32 messages per key) a per-entry
// limit, never reached.
const (
	formatMAC byte = 0x01
	formatGCM byte = 0x02

	macSize = 16
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
		return hkdf.Key(sha256.New, secret, nil, "introspectredis v1 "+label, 32)
	}
	var k keys
	var err error
	if k.name, err = derive("name"); err != nil {
		return nil, err
	}
	if k.value, err = derive("value"); err != nil {
		return nil, err
	}
	ek, err := derive("evict")
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

// seal returns the value stored for payload under d.
func (k *keys) seal(d digest, payload []byte) ([]byte, error) {
	if k.enc == nil {
		out := make([]byte, 0, 1+len(payload)+sha256.Size)
		out = append(out, formatMAC)
		out = append(out, payload...)
		return k.mac(d, out)[:len(out)+macSize], nil
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
	return aead.Seal(out, out[1:], payload, additional(d)), nil
}

// open checks and returns the payload of v stored under d. The payload may
// alias v.
func (k *keys) open(d digest, v []byte) ([]byte, error) {
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
		want := k.mac(d, body[:len(body):len(body)])
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
		p, err := aead.Open(ct[:0], nonce, ct, additional(d))
		if err != nil {
			return nil, errors.New("authentication failed")
		}
		return p, nil
	default:
		return nil, fmt.Errorf("unknown format %#x", v[0])
	}
}

// mac appends HMAC(value key, d || b) to b.
func (k *keys) mac(d digest, b []byte) []byte {
	h := hmac.New(sha256.New, k.value)
	h.Write(d[:])
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

func additional(d digest) []byte {
	return append([]byte{formatGCM}, d[:]...)
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
