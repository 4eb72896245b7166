package introspectredis

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/introspect-go/introspect"
)

// The payload of a value, before it is sealed (see seal.go), is a compact
// binary form of a [introspect.CacheEntry]:
//
//	time Expiry, time StaleUntil
//	uvarint flags (flagActive, flagConfirmation)
//	string ClientID, Username, TokenType, Subject, Issuer, JWTID
//	time Expiry, IssuedAt, NotBefore (of the token)
//	list Scopes, list Audience
//	extra Extra
//	when flagConfirmation: string X5TS256, string JKT, extra Extra
//	when flagSource: uvarint Source (not zero)
//
// where a string is a uvarint length and the bytes, a list a uvarint count
// and as many strings, an extra a uvarint count and as many (string name,
// string raw JSON) pairs in name order, and a time either the uvarint 0 (the
// zero time) or the uvarint nanoseconds+1 and the varint Unix seconds.
// Unlike the RFC 7662 JSON form it keeps dates to the nanosecond and costs
// no parsing beyond bounds checks.
//
// flagSource came with Introspection.Source. An entry whose Source is the
// zero value (VerdictIntrospection: every entry the middleware caches, since
// it caches the authorization server's answers only) is written without it,
// byte for byte as before, so replicas of either version share entries and
// the key label's version ("v2", see seal.go) stays. An older replica
// refuses a payload with the flag as malformed: a cache miss, never a
// verdict read wrong.
const (
	flagActive = 1 << iota
	flagConfirmation
	flagSource
)

var errMalformed = errors.New("malformed payload")

func appendEntry(b []byte, e introspect.CacheEntry) []byte {
	ti := e.Introspection
	b = appendTime(b, e.Expiry)
	b = appendTime(b, e.StaleUntil)
	var flags uint64
	if ti.Active {
		flags |= flagActive
	}
	if ti.Confirmation != nil {
		flags |= flagConfirmation
	}
	if ti.Source != introspect.VerdictIntrospection {
		flags |= flagSource
	}
	b = binary.AppendUvarint(b, flags)
	for _, s := range [...]string{ti.ClientID, ti.Username, ti.TokenType, ti.Subject, ti.Issuer, ti.JWTID} {
		b = appendString(b, s)
	}
	for _, t := range [...]time.Time{ti.Expiry, ti.IssuedAt, ti.NotBefore} {
		b = appendTime(b, t)
	}
	b = appendList(b, ti.Scopes)
	b = appendList(b, ti.Audience)
	b = appendExtra(b, ti.Extra)
	if c := ti.Confirmation; c != nil {
		b = appendString(b, c.X5TS256)
		b = appendString(b, c.JKT)
		b = appendExtra(b, c.Extra)
	}
	if flags&flagSource != 0 {
		b = binary.AppendUvarint(b, uint64(ti.Source))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendExtra(b []byte, m map[string]json.RawMessage) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b = appendString(b, k)
		b = appendString(b, string(m[k]))
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(t.Nanosecond())+1)
	return binary.AppendVarint(b, t.Unix())
}

// decoder reads a payload. Strings are cut from s, one copy of the payload,
// so decoding allocates once for all of them; raw JSON values alias the
// byte slice, which the caller hands over.
type decoder struct {
	b   []byte
	s   string
	off int
	err error
}

func decodeEntry(b []byte) (introspect.CacheEntry, error) {
	d := decoder{b: b, s: string(b)}
	var e introspect.CacheEntry
	e.Expiry = d.time()
	e.StaleUntil = d.time()
	flags := d.uvarint()
	ti := &introspect.Introspection{Active: flags&flagActive != 0}
	for _, p := range [...]*string{&ti.ClientID, &ti.Username, &ti.TokenType, &ti.Subject, &ti.Issuer, &ti.JWTID} {
		*p = d.string()
	}
	for _, p := range [...]*time.Time{&ti.Expiry, &ti.IssuedAt, &ti.NotBefore} {
		*p = d.time()
	}
	ti.Scopes = d.list()
	ti.Audience = d.list()
	ti.Extra = d.extra()
	if flags&flagConfirmation != 0 {
		c := &introspect.Confirmation{}
		c.X5TS256 = d.string()
		c.JKT = d.string()
		c.Extra = d.extra()
		ti.Confirmation = c
	}
	if flags&flagSource != 0 {
		// Zero is written without the flag, and a value beyond a byte is
		// no VerdictSource.
		if src := d.uvarint(); src == 0 || src > 0xff {
			d.fail()
		} else {
			ti.Source = introspect.VerdictSource(src)
		}
	}
	if d.err == nil && (flags&^(flagActive|flagConfirmation|flagSource) != 0 || d.off != len(d.b)) {
		d.err = errMalformed
	}
	if d.err != nil {
		return introspect.CacheEntry{}, d.err
	}
	e.Introspection = ti
	return e, nil
}

func (d *decoder) fail() { d.err = errMalformed }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// span returns the bounds of the next length-prefixed string.
func (d *decoder) span() (int, int) {
	n := d.uvarint()
	if d.err != nil {
		return 0, 0
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail()
		return 0, 0
	}
	start := d.off
	d.off += int(n)
	return start, d.off
}

func (d *decoder) string() string {
	i, j := d.span()
	return d.s[i:j]
}

// count reads a number of items that each take at least min bytes, so a
// forged count cannot make the decoder allocate more than the value's size.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64((len(d.b)-d.off)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) list() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.string()
	}
	return l
}

func (d *decoder) extra() map[string]json.RawMessage {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]json.RawMessage, n)
	for range n {
		k := d.string()
		i, j := d.span()
		m[k] = json.RawMessage(d.b[i:j:j])
	}
	if d.err == nil && len(m) != n {
		d.fail() // a name twice: not something appendExtra writes
	}
	return m
}

// Dates beyond these bounds are not something the core produces (it caps
// NumericDates at year 9999); refusing them keeps time arithmetic sane.
const (
	minUnix = -62135596800 // year 1
	maxUnix = 253402300799 // year 9999
)

func (d *decoder) time() time.Time {
	ns := d.uvarint()
	if d.err != nil || ns == 0 {
		return time.Time{}
	}
	sec := d.varint()
	if d.err != nil {
		return time.Time{}
	}
	if ns > 1e9 || sec < minUnix || sec > maxUnix {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(ns-1)).UTC()
}
