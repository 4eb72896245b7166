package introspectredis

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
)

var t0 = time.Date(2031, 5, 4, 3, 2, 1, 123456789, time.UTC)

func fullEntry() introspect.CacheEntry {
	return introspect.CacheEntry{
		Introspection: &introspect.Introspection{
			Active:    true,
			Scopes:    []string{"read", "write"},
			ClientID:  "app",
			Username:  "alice",
			TokenType: "Bearer",
			Expiry:    t0.Add(time.Hour),
			IssuedAt:  t0.Add(-time.Minute),
			NotBefore: t0.Add(-time.Minute + 500*time.Millisecond),
			Subject:   "user-42",
			Audience:  []string{"https://api.example.com", "other"},
			Issuer:    "https://as.example.com",
			JWTID:     "jti-1",
			Confirmation: &introspect.Confirmation{
				X5TS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2",
				JKT:     "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
				Extra:   map[string]json.RawMessage{"kid": json.RawMessage(`"k1"`)},
			},
			Extra: map[string]json.RawMessage{
				"tenant": json.RawMessage(`"acme"`),
				"roles":  json.RawMessage(`["a","b"]`),
				"n":      json.RawMessage(`1.5`),
			},
		},
		Expiry:     t0.Add(5 * time.Minute),
		StaleUntil: t0.Add(6 * time.Minute),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    introspect.CacheEntry
	}{
		{"full", fullEntry()},
		{"inactive", introspect.CacheEntry{Introspection: &introspect.Introspection{}, Expiry: t0, StaleUntil: t0}},
		{"no dates", introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true, Subject: "s"}}},
		{"empty confirmation", introspect.CacheEntry{
			Introspection: &introspect.Introspection{Active: true, Confirmation: &introspect.Confirmation{}},
			Expiry:        t0, StaleUntil: t0,
		}},
		{"far dates", introspect.CacheEntry{
			Introspection: &introspect.Introspection{Active: true, Expiry: time.Unix(maxUnix, 0).UTC()},
			Expiry:        time.Unix(1, 0).UTC(), StaleUntil: time.Unix(maxUnix, 999999999).UTC(),
		}},
		{"local JWT verdict", introspect.CacheEntry{
			Introspection: &introspect.Introspection{Active: true, Subject: "s", Source: introspect.VerdictJWT},
			Expiry:        t0, StaleUntil: t0,
		}},
		{"full, JWT and introspected", func() introspect.CacheEntry {
			e := fullEntry()
			e.Introspection.Source = introspect.VerdictJWTIntrospected
			return e
		}()},
		{"unicode and empty strings", introspect.CacheEntry{
			Introspection: &introspect.Introspection{Active: true, Subject: "élan ✓", Scopes: []string{"a"}, Audience: []string{""}},
			Expiry:        t0, StaleUntil: t0,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendEntry(nil, tc.e)
			got, err := decodeEntry(b)
			if err != nil {
				t.Fatalf("decodeEntry: %v", err)
			}
			if !reflect.DeepEqual(got, tc.e) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got.Introspection, tc.e.Introspection)
			}
		})
	}
}

func TestCodecIsCompact(t *testing.T) {
	e := fullEntry()
	b := appendEntry(nil, e)
	js, err := json.Marshal(e.Introspection)
	if err != nil {
		t.Fatal(err)
	}
	// The binary form carries two more dates and the nanoseconds, and is still
	// smaller than the RFC 7662 JSON.
	if len(b) >= len(js) {
		t.Errorf("binary form is %d bytes, JSON %d", len(b), len(js))
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	b := appendEntry(nil, fullEntry())
	for n := range len(b) {
		if _, err := decodeEntry(b[:n]); err == nil {
			t.Errorf("a payload cut at %d of %d bytes decoded", n, len(b))
		}
	}
	if _, err := decodeEntry(append(b[:len(b):len(b)], 0)); err == nil {
		t.Error("a payload with a trailing byte decoded")
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"unknown flag", []byte{0, 0, 8}},
		{"count beyond the payload", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"nanoseconds out of range", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0}},
		{"year past 9999", append([]byte{1}, varint(maxUnix+1)...)},
		{"overlong varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeEntry(tc.b); err == nil {
				t.Error("decoded")
			}
		})
	}
}

func varint(v int64) []byte {
	var b []byte
	for u := uint64(v<<1) ^ uint64(v>>63); ; u >>= 7 {
		if u < 0x80 {
			return append(b, byte(u))
		}
		b = append(b, byte(u)|0x80)
	}
}

func TestDecodeRejectsDuplicateNames(t *testing.T) {
	e := introspect.CacheEntry{Introspection: &introspect.Introspection{Active: true}}
	b := appendEntry(nil, e)
	// Replace the empty Extra (the last byte, a zero count) by a map with
	// one name twice.
	b = b[:len(b)-1]
	b = append(b, 2)
	for range 2 {
		b = appendString(b, "x")
		b = appendString(b, "1")
	}
	if _, err := decodeEntry(b); err == nil {
		t.Error("a map with a name twice decoded")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, fullEntry()))
	f.Add(appendEntry(nil, introspect.CacheEntry{Introspection: &introspect.Introspection{}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again, err := decodeEntry(appendEntry(nil, e))
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encoded entry differs:\n%+v\n%+v", again, e)
		}
	})
}

// An entry of the authorization server's answer (Source zero, all the
// middleware caches) is written as before Source existed: replicas of both
// versions share it. A Source is written behind a flag older versions
// refuse, and a zero or out-of-range Source behind the flag is malformed.
func TestCodecSource(t *testing.T) {
	e := fullEntry()
	plain := appendEntry(nil, e)
	e.Introspection.Source = introspect.VerdictJWT
	withSource := appendEntry(nil, e)
	if len(withSource) != len(plain)+1 {
		t.Fatalf("a Source costs %d bytes, want 1", len(withSource)-len(plain))
	}
	// The flags follow the two cache dates; both forms share everything else.
	flagsAt := 0
	d := decoder{b: plain, s: string(plain)}
	d.time()
	d.time()
	flagsAt = d.off
	if plain[flagsAt]&flagSource != 0 {
		t.Fatal("a zero Source sets the flag")
	}
	if withSource[flagsAt] != plain[flagsAt]|flagSource || string(withSource[flagsAt+1:len(plain)]) != string(plain[flagsAt+1:]) {
		t.Fatal("the Source changes more than its flag and its trailing byte")
	}
	for _, src := range []byte{0, 0x80} {
		bad := append(append([]byte(nil), withSource[:len(withSource)-1]...), src)
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("a payload with Source byte %#x decoded", src)
		}
	}
	got, err := decodeEntry(plain)
	if err != nil || got.Introspection.Source != introspect.VerdictIntrospection {
		t.Fatalf("decoding the form without Source: %v, %v", err, got.Introspection.Source)
	}
}
