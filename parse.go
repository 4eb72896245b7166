package introspect

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The registered members, numbered in the order in which they are decoded:
// when several are malformed, the error reported is that of the member listed
// first here, wherever the members stand in the body.
const (
	memberClientID = iota
	memberUsername
	memberTokenType
	memberSub
	memberIss
	memberJTI
	memberExp
	memberIat
	memberNbf
	memberScope
	memberAud
	memberCnf
	memberActive
	memberCount
	memberOther = -1 // not a registered member: it goes to Extra
)

var memberNames = [memberCount]string{
	memberClientID:  "client_id",
	memberUsername:  "username",
	memberTokenType: "token_type",
	memberSub:       "sub",
	memberIss:       "iss",
	memberJTI:       "jti",
	memberExp:       "exp",
	memberIat:       "iat",
	memberNbf:       "nbf",
	memberScope:     "scope",
	memberAud:       "aud",
	memberCnf:       "cnf",
	memberActive:    "active",
}

// memberIndex numbers the registered member name, matched exactly, and
// returns memberOther for any other name.
func memberIndex(name []byte) int {
	switch string(name) {
	case "active":
		return memberActive
	case "scope":
		return memberScope
	case "client_id":
		return memberClientID
	case "username":
		return memberUsername
	case "token_type":
		return memberTokenType
	case "exp":
		return memberExp
	case "iat":
		return memberIat
	case "nbf":
		return memberNbf
	case "sub":
		return memberSub
	case "aud":
		return memberAud
	case "iss":
		return memberIss
	case "jti":
		return memberJTI
	case "cnf":
		return memberCnf
	}
	return memberOther
}

// rawMembers holds the raw values of the registered members, as valid JSON
// without surrounding whitespace; nil for a member not given.
type rawMembers [memberCount][]byte

func errNotObject() error { return fmt.Errorf("%w: not a JSON object", ErrMalformedResponse) }

func errTwice() error { return fmt.Errorf("%w: a member is given twice", ErrMalformedResponse) }

// parseIntrospection decodes an RFC 7662 response body. Member names are matched
// exactly (encoding/json's case-insensitive struct matching would let "ACTIVE"
// count). A response is active only if "active" is the JSON boolean true; a
// missing or non-boolean "active" is malformed. For an inactive token the other
// members are ignored.
//
// A member given twice is malformed: which of two "active" members counts
// would depend on the parser (encoding/json keeps the last one). Names are
// compared as decoded, so two spellings that differ only by escapes are the
// same name.
//
// One pass over the body checks that it is valid JSON, as encoding/json
// would, and picks out the members of the top-level object, without a map of
// them all. Errors take precedence in this order: not a JSON object, a member
// given twice, no boolean "active", a malformed member.
func parseIntrospection(body []byte) (*Introspection, error) {
	raws, extra, err := scanMembers(body, false)
	if err != nil {
		return nil, err
	}
	return fromRaw(&raws, extra)
}

// scanMembers makes the one pass of parseIntrospection over body: it checks
// the JSON grammar and returns the raw registered members and the others,
// decoded by name, refusing a member given twice. With activeIsOther set,
// an "active" member is one of the others (a JWT claims set, where it means
// nothing).
func scanMembers(body []byte, activeIsOther bool) (rawMembers, map[string]json.RawMessage, error) {
	start := skipSpace(body, 0)
	if start == len(body) || body[start] != '{' {
		return rawMembers{}, nil, errNotObject()
	}
	var (
		raws   rawMembers
		twice  bool
		buf    [8]member
		others = buf[:0]
	)
	it := objectMembers(body, start, 1)
	for it.next() {
		var name string // the decoded name, if it needs decoding
		var idx int
		if it.special {
			name = it.decodedName()
			idx = memberIndex([]byte(name))
		} else {
			idx = memberIndex(it.name)
		}
		switch {
		case idx == memberOther || activeIsOther && idx == memberActive:
			others = it.add(others, name)
		case raws[idx] != nil:
			twice = true
		default:
			raws[idx] = it.value
		}
	}
	if it.bad || skipSpace(body, it.i) != len(body) {
		return rawMembers{}, nil, errNotObject()
	}
	extra, ok := collectMembers(others)
	if twice || !ok {
		return rawMembers{}, nil, errTwice()
	}
	return raws, extra, nil
}

// member is an unregistered member as it stands in the data.
type member struct {
	rawName []byte // between the quotes
	name    string // decoded, when rawName has an escape or a byte outside ASCII
	decoded bool
	value   []byte
}

// collectMembers returns the members as a map from decoded name to a copy of
// the raw value (nil if there are none), and false if a name is repeated.
// The names that need no decoding share one allocation, and so do the
// values, each capped so that an append cannot reach the next.
func collectMembers(ms []member) (map[string]json.RawMessage, bool) {
	if len(ms) == 0 {
		return nil, true
	}
	var names strings.Builder
	n, size := 0, 0
	for _, m := range ms {
		if !m.decoded {
			n += len(m.rawName)
		}
		size += len(m.value)
	}
	names.Grow(n)
	for _, m := range ms {
		if !m.decoded {
			names.Write(m.rawName)
		}
	}
	all := names.String()
	values := make([]byte, 0, size)
	extra := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		name := m.name
		if !m.decoded {
			name, all = all[:len(m.rawName)], all[len(m.rawName):]
		}
		if _, dup := extra[name]; dup {
			return nil, false
		}
		start := len(values)
		values = append(values, m.value...)
		extra[name] = values[start:len(values):len(values)]
	}
	return extra, true
}

// add appends the current member of it to ms as an unregistered member, its
// name decoded already if it.special.
func (it *objectIter) add(ms []member, name string) []member {
	return append(ms, member{rawName: it.name, name: name, decoded: it.special, value: it.value})
}

// verdictBlock is a verdict allocated with room for the strings of its
// Scopes and Audience: the verdict of a typical answer (a few scopes, one
// audience) is one object, for the allocator and for every garbage
// collection while it is cached, not three.
type verdictBlock struct {
	ti   Introspection
	room [4]string
}

// take returns a list of n strings cut from free when it has room, a new one
// otherwise, and what stays free. A list cut from free has no capacity
// beyond its length: appending to it copies.
func take(free []string, n int) (list, rest []string) {
	if n <= len(free) {
		return free[:n:n], free[n:]
	}
	return make([]string, n), free
}

// fromRaw decodes the registered members, in the order of their numbers, and
// returns the verdict with the unregistered members in extra.
func fromRaw(raws *rawMembers, extra map[string]json.RawMessage) (*Introspection, error) {
	switch active := raws[memberActive]; {
	case active == nil:
		return nil, fmt.Errorf("%w: no \"active\" member", ErrMalformedResponse)
	case string(active) == "false":
		return &Introspection{Active: false}, nil
	case string(active) != "true":
		return nil, fmt.Errorf("%w: \"active\" is not a boolean", ErrMalformedResponse)
	}
	blk := new(verdictBlock)
	ti := &blk.ti
	ti.Active, ti.Extra = true, extra
	// The string members are decoded into one buffer, their text cut out of it
	// once all are in.
	var (
		text   strings.Builder
		spans  [memberCnf]struct{ start, end int }
		inText uint16 // bit i: spans[i] holds member i
	)
	n := 0
	for _, raw := range raws[:memberCnf] {
		if len(raw) > 0 && raw[0] == '"' {
			n += len(raw)
		}
	}
	text.Grow(n)
	for idx, raw := range raws[:memberActive] {
		// A null member is as good as none, except "cnf": a binding that is
		// there but says nothing cannot be checked (see confirmation).
		if raw == nil || string(raw) == "null" && idx != memberCnf {
			continue
		}
		name := memberNames[idx]
		var err error
		switch {
		case idx <= memberJTI || idx <= memberAud && idx >= memberScope && raw[0] == '"':
			start := text.Len()
			if !unquoteTo(&text, raw) {
				return nil, fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
			}
			spans[idx].start, spans[idx].end = start, text.Len()
			inText |= 1 << idx
		case idx == memberExp:
			ti.Expiry, err = numericDate(name, raw)
		case idx == memberIat:
			ti.IssuedAt, err = numericDate(name, raw)
		case idx == memberNbf:
			ti.NotBefore, err = numericDate(name, raw)
		case idx == memberScope:
			ti.Scopes, err = stringList(name, raw, true)
		case idx == memberAud:
			ti.Audience, err = stringList(name, raw, false)
		case idx == memberCnf:
			ti.Confirmation, err = confirmation(raw)
		}
		if err != nil {
			return nil, err
		}
	}
	if inText == 0 {
		return ti, nil
	}
	s := text.String()
	str := func(idx int) string { return s[spans[idx].start:spans[idx].end] }
	ti.ClientID = str(memberClientID)
	ti.Username = str(memberUsername)
	ti.TokenType = str(memberTokenType)
	ti.Subject = str(memberSub)
	ti.Issuer = str(memberIss)
	ti.JWTID = str(memberJTI)
	free := blk.room[:]
	if inText&(1<<memberScope) != 0 {
		scope := str(memberScope)
		ti.Scopes, free = take(free, countScopes(scope))
		fillScopes(ti.Scopes, scope)
	}
	if aud := str(memberAud); aud != "" {
		ti.Audience, _ = take(free, 1)
		ti.Audience[0] = aud
	}
	return ti, nil
}

func isNull(raw json.RawMessage) bool { return string(trimSpace(raw)) == "null" }

func decodeString(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	v, err := stringValue(name, raw)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// stringValue decodes the member name, a JSON string (not null).
func stringValue(name string, raw []byte) (string, error) {
	v, err := unquote(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
	}
	return v, nil
}

// unquote decodes a JSON string. A well-formed string is decoded here (see
// unescape); anything else goes through encoding/json, which rejects it.
func unquote(raw json.RawMessage) (string, error) {
	raw = trimSpace(raw)
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		if s, ok := unescape(raw[1 : n-1]); ok {
			return s, nil
		}
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

// unquoteTo writes the text of the JSON string raw to b, and reports false
// if raw is not a JSON string.
func unquoteTo(b *strings.Builder, raw []byte) bool {
	raw = trimSpace(raw)
	n := len(raw)
	return n >= 2 && raw[0] == '"' && raw[n-1] == '"' && unescapeTo(b, raw[1:n-1])
}

// unescape returns the text of a JSON string given the bytes between its
// quotes, as unescapeTo does.
func unescape(in []byte) (string, bool) {
	if plainEnd(in, 0) == len(in) {
		return string(in), true
	}
	var b strings.Builder
	b.Grow(len(in))
	if !unescapeTo(&b, in) {
		return "", false
	}
	return b.String(), true
}

// unescapeTo writes to b the text of a JSON string given the bytes between
// its quotes, decoded the way encoding/json decodes it: escapes are resolved,
// and invalid UTF-8 as well as an unpaired surrogate escape become U+FFFD. It
// reports false if in is not the inside of a valid JSON string (a quote or
// control character, a malformed escape).
func unescapeTo(b *strings.Builder, in []byte) bool {
	for i := 0; i < len(in); {
		if j := plainEnd(in, i); j > i {
			b.Write(in[i:j])
			i = j
			continue
		}
		switch c := in[i]; {
		case c == '\\':
			if i+1 == len(in) {
				return false
			}
			switch e := in[i+1]; e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r := hex4(in[i:])
				if r < 0 {
					return false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if d := utf16.DecodeRune(r, hex4(in[i:])); d != unicode.ReplacementChar {
						b.WriteRune(d)
						i += 6
						continue
					}
					r = unicode.ReplacementChar
				}
				b.WriteRune(r)
				continue
			default:
				return false
			}
			i += 2
		case c < utf8.RuneSelf: // a quote or a control character
			return false
		default:
			r, size := utf8.DecodeRune(in[i:])
			b.WriteRune(r) // U+FFFD if invalid
			i += size
		}
	}
	return true
}

// hex4 decodes the escape \uXXXX at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// maxDate bounds numeric dates to year 9999 so conversions cannot overflow.
const maxDate = 253402300799

func decodeTime(m map[string]json.RawMessage, name string) (time.Time, error) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return time.Time{}, nil
	}
	return numericDate(name, raw)
}

// numericDate decodes the member name, a JSON number of seconds since the
// epoch (not null), fractions allowed.
func numericDate(name string, raw []byte) (time.Time, error) {
	raw = trimSpace(raw)
	// Whole seconds, the common case: up to 15 digits are exact in a
	// float64, so this is what the conversion below would return.
	if n := len(raw); n > 0 && n <= 15 {
		sec := int64(0)
		for _, c := range raw {
			if !isDigit(c) {
				sec = -1
				break
			}
			sec = sec*10 + int64(c-'0')
		}
		if sec >= 0 && sec <= maxDate {
			return time.Unix(sec, 0).UTC(), nil
		}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxDate {
		return time.Time{}, fmt.Errorf("%w: %q is not a NumericDate", ErrMalformedResponse, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// decodeStrings accepts a string (split on spaces when split is set, else one
// value) or an array of strings.
func decodeStrings(m map[string]json.RawMessage, name string, split bool) ([]string, error) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	return stringList(name, raw, split)
}

// stringList decodes the member name (not null) as decodeStrings does.
func stringList(name string, raw []byte, split bool) ([]string, error) {
	raw = trimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, err := unquote(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
		}
		if split {
			return splitScopes(s), nil
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: %q is neither a string nor an array of strings", ErrMalformedResponse, name)
	}
	if split {
		// Each element is one scope token. One holding a space would be one
		// scope here and several once the scopes are written as the string
		// RFC 7662 defines (MarshalJSON, a cache storing answers as JSON, a
		// header for a service): "files:x admin" would grant "admin". An
		// empty element (or null) is no scope, as in the string.
		kept := list[:0]
		for _, s := range list {
			if strings.IndexByte(s, ' ') >= 0 {
				return nil, fmt.Errorf("%w: an element of %q holds a space", ErrMalformedResponse, name)
			}
			if s != "" {
				kept = append(kept, s)
			}
		}
		return kept, nil
	}
	return list, nil
}

// splitScopes splits a "scope" string into scope tokens at SP (0x20) and
// nowhere else (RFC 6749 §3.3): other white space (TAB, LF, NO-BREAK SPACE,
// U+2028, U+0085, ...) is part of a token, so "files:x\u00a0admin" is one
// scope that matches no scope a guard can require, never "files:x" and
// "admin". Runs of spaces and spaces at either end make no empty scope.
func splitScopes(s string) []string {
	scopes := make([]string, countScopes(s))
	fillScopes(scopes, s)
	return scopes
}

// countScopes is the number of scope tokens in s (see splitScopes).
func countScopes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && (i == 0 || s[i-1] == ' ') {
			n++
		}
	}
	return n
}

// fillScopes sets the elements of scopes, countScopes(s) of them, to the
// scope tokens of s.
func fillScopes(scopes []string, s string) {
	k := 0
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' {
			j++
		}
		scopes[k] = s[i:j]
		k++
		i = j
	}
}

// confirmation decodes the "cnf" member. As at the top level, a member given
// twice is malformed.
//
// A binding that is there but cannot be checked is kept so that the binding
// check refuses the token: a "cnf" that is null or not an object decodes to
// an empty Confirmation, and an "x5t#S256" or "jkt" that is null, empty or
// not a string goes to Extra, as a method this package does not know would.
func confirmation(raw []byte) (*Confirmation, error) {
	raw = trimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return &Confirmation{}, nil
	}
	var (
		x5t, jkt []byte // nil if absent
		twice    bool
		others   []member
	)
	it := objectMembers(raw, 0, 1)
	for it.next() {
		name := it.name
		var decoded string
		if it.special {
			decoded = it.decodedName()
			name = []byte(decoded)
		}
		switch string(name) {
		case "x5t#S256":
			twice = twice || x5t != nil
			x5t = it.value
		case "jkt":
			twice = twice || jkt != nil
			jkt = it.value
		default:
			others = it.add(others, decoded)
		}
	}
	if it.bad || it.i != len(raw) {
		return nil, fmt.Errorf("%w: \"cnf\" is not an object", ErrMalformedResponse)
	}
	extra, ok := collectMembers(others)
	if twice || !ok {
		return nil, fmt.Errorf("%w: a member of \"cnf\" is given twice", ErrMalformedResponse)
	}
	c := &Confirmation{Extra: extra}
	c.X5TS256 = c.method("x5t#S256", x5t)
	c.JKT = c.method("jkt", jkt)
	return c, nil
}

// method returns the value of the confirmation method name, raw in the data
// (nil if absent), when it is a non-empty string. Otherwise a present value
// is kept in Extra, where it makes the binding check refuse the token.
func (c *Confirmation) method(name string, raw []byte) string {
	if raw == nil {
		return ""
	}
	if raw[0] == '"' {
		if v, err := unquote(raw); err == nil && v != "" {
			return v
		}
	}
	if c.Extra == nil {
		c.Extra = make(map[string]json.RawMessage, 1)
	}
	c.Extra[name] = slices.Clone(raw)
	return ""
}

// objectIter walks the members of a JSON object, checking the JSON grammar
// on the way as encoding/json does (its limit on nesting depth included;
// like encoding/json, it lets invalid UTF-8 through). Once next reports no
// more members, bad tells whether the object was malformed, and if not, i
// is just past its closing brace.
type objectIter struct {
	data  []byte
	i     int
	depth int  // nesting depth of the object, 1 at the top level
	first bool // no member read yet
	bad   bool

	// The current member:
	name    []byte // between the quotes, escapes not decoded
	special bool   // name has an escape or a byte outside ASCII
	value   []byte // without surrounding whitespace
}

// objectMembers returns an iterator over the members of the object whose
// opening brace is data[i], at nesting depth depth.
func objectMembers(data []byte, i, depth int) objectIter {
	return objectIter{data: data, i: i + 1, depth: depth, first: true}
}

// next moves to the next member, and reports false at the end of the object
// or at the first error.
func (it *objectIter) next() bool {
	d := it.data
	i := skipSpace(d, it.i)
	switch {
	case i == len(d):
		it.bad = true
		return false
	case d[i] == '}':
		it.i = i + 1
		return false
	case !it.first:
		if d[i] != ',' {
			it.bad = true
			return false
		}
		i = skipSpace(d, i+1)
	}
	it.first = false
	if i == len(d) || d[i] != '"' {
		it.bad = true
		return false
	}
	nameEnd, special := stringEnd(d, i)
	if nameEnd < 0 {
		it.bad = true
		return false
	}
	it.name, it.special = d[i+1:nameEnd-1], special
	i = skipColon(d, nameEnd)
	end := valueEnd(d, i, it.depth)
	if end < 0 {
		it.bad = true
		return false
	}
	it.value, it.i = d[i:end], end
	return true
}

// decodedName returns the current member's name decoded as encoding/json
// decodes it.
func (it *objectIter) decodedName() string {
	s, _ := unescape(it.name)
	return s
}

// skipColon returns the position of the value after the colon that follows
// a member name ending before d[i], or -1 if there is no colon.
func skipColon(d []byte, i int) int {
	if i = skipSpace(d, i); i == len(d) || d[i] != ':' {
		return -1
	}
	return skipSpace(d, i+1)
}

// maxDepth is encoding/json's limit on the nesting of arrays and objects.
const maxDepth = 10000

// valueEnd returns the position just past the JSON value that starts at
// d[i], or -1 if there is none or it is malformed. depth is the nesting depth
// of the enclosing arrays and objects.
func valueEnd(d []byte, i, depth int) int {
	if i >= 0 && i < len(d) && d[i] == '"' { // the common case
		i, _ = stringEnd(d, i)
		return i
	}
	var buf [32]bool
	open := buf[:0] // the arrays and objects open in the value: true for an object
	for {
		if i < 0 || i >= len(d) {
			return -1
		}
		switch c := d[i]; c {
		case '{', '[':
			if depth+len(open) >= maxDepth {
				return -1
			}
			obj := c == '{'
			if i = skipSpace(d, i+1); i < len(d) && d[i] == closer(obj) {
				i++ // empty
				break
			}
			open = append(open, obj)
			if obj {
				i = memberValue(d, i)
			}
			continue // to the first element
		case '"':
			i, _ = stringEnd(d, i)
		case 't':
			i = literalEnd(d, i, "true")
		case 'f':
			i = literalEnd(d, i, "false")
		case 'n':
			i = literalEnd(d, i, "null")
		default:
			i = numberEnd(d, i)
		}
		// A value ends at i: close what it ends, move to the next element.
		for {
			if i < 0 || len(open) == 0 {
				return i
			}
			obj := open[len(open)-1]
			if i = skipSpace(d, i); i == len(d) {
				return -1
			}
			if d[i] == ',' {
				i = skipSpace(d, i+1)
				if obj {
					i = memberValue(d, i)
				}
				break
			}
			if d[i] != closer(obj) {
				return -1
			}
			i++
			open = open[:len(open)-1]
		}
	}
}

func closer(obj bool) byte {
	if obj {
		return '}'
	}
	return ']'
}

// memberValue reads a member name and its colon from d[i], and returns the
// position of the value, or -1 if malformed.
func memberValue(d []byte, i int) int {
	if i == len(d) || d[i] != '"' {
		return -1
	}
	if i, _ = stringEnd(d, i); i < 0 {
		return -1
	}
	return skipColon(d, i)
}

// plain marks the ASCII bytes that stand for themselves in a JSON string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainEnd returns the position of the first byte from i on that is not plain.
func plainEnd(d []byte, i int) int {
	// Eight bytes at a time while none is a control character, a quote, a
	// backslash or outside ASCII: (x-lsb*n)&^x has the top bit of some byte
	// set exactly when a byte of x is below n (for n <= 0x80), and a byte
	// equal to c is a zero byte of x^(lsb*c).
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	for ; len(d)-i >= 8; i += 8 {
		x := binary.LittleEndian.Uint64(d[i:])
		q, b := x^(lsb*'"'), x^(lsb*'\\')
		if ((x-lsb*0x20)&^x|(q-lsb)&^q|(b-lsb)&^b|x)&msb != 0 {
			break
		}
	}
	for i < len(d) && plain[d[i]] {
		i++
	}
	return i
}

// stringEnd returns the position just past the JSON string that starts at
// d[i] (a quote), or -1 if it is malformed, and whether it has an escape or
// a byte outside ASCII.
func stringEnd(d []byte, i int) (int, bool) {
	special := false
	for i = plainEnd(d, i+1); i < len(d); i = plainEnd(d, i+1) {
		switch c := d[i]; {
		case c == '"':
			return i + 1, special
		case c == '\\':
			special = true
			if i++; i == len(d) {
				return -1, false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(d)-i <= 4 || !isHex(d[i+1]) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) {
					return -1, false
				}
				i += 4
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		default:
			special = true
		}
	}
	return -1, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func literalEnd(d []byte, i int, lit string) int {
	if len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// numberEnd returns the position just past the JSON number that starts at
// d[i], or -1 if there is none.
func numberEnd(d []byte, i int) int {
	if d[i] == '-' {
		i++
	}
	switch {
	case i == len(d):
		return -1
	case d[i] == '0':
		i++
	case isDigit(d[i]):
		i = digitsEnd(d, i)
	default:
		return -1
	}
	if i < len(d) && d[i] == '.' {
		if i++; i == len(d) || !isDigit(d[i]) {
			return -1
		}
		i = digitsEnd(d, i)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		if i++; i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i == len(d) || !isDigit(d[i]) {
			return -1
		}
		i = digitsEnd(d, i)
	}
	return i
}

func digitsEnd(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

// skipSpace returns the position of the first byte from i on that is not
// JSON whitespace.
func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
