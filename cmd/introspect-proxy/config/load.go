package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is an invalid configuration: every problem found, each naming its
// setting.
type Error struct {
	Problems []error
}

// Error lists the problems, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// originKind says where a setting's value came from.
type originKind uint8

const (
	fromDefault originKind = iota
	fromFlag
	fromEnv
	fromFile
)

// origin is where a setting's value came from.
type origin struct {
	kind originKind
	file string
	line int
}

func (o origin) label(name string) string {
	switch o.kind {
	case fromEnv:
		return envName(name)
	case fromFile:
		return fmt.Sprintf("%s:%d: %s", o.file, o.line, name)
	}
	return "-" + name
}

// loader holds the values of the settings as given, before and while they
// are checked.
type loader struct {
	c      *Config
	values map[string][]string // every setting's values, defaults included
	env    map[string]string   // the INTROSPECT_ variables that are not empty
	// emptyEnv are the INTROSPECT_ variables set empty, which leave their
	// settings unset.
	emptyEnv map[string]bool
	errs     []error
}

// Load reads the configuration: the flags in args (without the program's
// name), the INTROSPECT_ variables of environ (as os.Environ gives it) and
// the YAML file named by -config or INTROSPECT_CONFIG, and checks it,
// reading the files it names (secrets, keys, certificates). The flag
// package's messages and the -help text go to output. With -help the
// error is flag.ErrHelp; with -version the configuration is not checked.
// An invalid configuration is an [*Error].
func Load(args, environ []string, output io.Writer) (*Config, error) {
	given, err := parseFlags(args, output)
	if err != nil {
		return nil, err
	}
	l := &loader{
		c:        &Config{origins: make(map[string]origin)},
		values:   make(map[string][]string),
		env:      make(map[string]string),
		emptyEnv: make(map[string]bool),
	}
	l.readEnv(environ)
	if v := given["version"]; len(v) > 0 {
		if b, err := strconv.ParseBool(v[0]); err == nil && b {
			l.c.Version = true
			return l.c, nil
		}
	}
	path, pathOrigin := "", origin{}
	if v, ok := given["config"]; ok {
		path, pathOrigin = v[0], origin{kind: fromFlag}
	} else if v, ok := l.env[envName("config")]; ok {
		path, pathOrigin = v, origin{kind: fromEnv}
	}
	var file map[string]fileValue
	if path != "" {
		file, err = readFile(path)
		if err != nil {
			return nil, &Error{Problems: []error{fmt.Errorf("%s: %w", pathOrigin.label("config"), err)}}
		}
	}
	for _, s := range settings {
		vals, o := l.pick(s, given, file)
		if fv, inFile := file[s.name]; inFile && o.kind == fromEnv {
			// The environment wins, as documented, but an image's or a
			// unit's variable may hide the operator's file.
			l.c.Warnings = append(l.c.Warnings, fmt.Sprintf("%s overrides %s", envName(s.name), fv.origin.label(s.name)))
		}
		l.c.origins[s.name] = o
		l.values[s.name] = vals
		if s.kind != kindList && s.kind != kindRules && len(vals) == 0 {
			vals = []string{""}
		}
		if err := s.apply(l.c, vals); err != nil {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", o.label(s.name), err))
		}
	}
	l.check()
	if len(l.errs) > 0 {
		return nil, &Error{Problems: l.errs}
	}
	return l.c, nil
}

// pick returns the values of s from the flags, else the environment, else
// the file, else its default, and where they came from.
func (l *loader) pick(s setting, given map[string][]string, file map[string]fileValue) ([]string, origin) {
	if v, ok := given[s.name]; ok {
		return v, origin{kind: fromFlag}
	}
	if !s.noEnv {
		if v, ok := l.env[envName(s.name)]; ok {
			switch s.kind {
			case kindList:
				return splitList(v), origin{kind: fromEnv}
			case kindRules:
				return splitLines(v), origin{kind: fromEnv}
			}
			return []string{strings.TrimSpace(v)}, origin{kind: fromEnv}
		}
	}
	if v, ok := file[s.name]; ok {
		return v.vals, v.origin
	}
	switch s.kind {
	case kindList:
		return splitList(s.def), origin{}
	case kindRules:
		return nil, origin{}
	}
	return []string{s.def}, origin{}
}

// value returns the single value of a setting.
func (l *loader) value(name string) string {
	if v := l.values[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// given reports whether a setting was given, in any form.
func (l *loader) given(name string) bool { return l.c.origins[name].kind != fromDefault }

// secretFlags are flags that do not exist because their value would be a
// secret; a mistaken attempt is refused without echoing the value.
var secretFlags = []string{"client-secret", "redis-secret", "redis-password", "redis-encryption-key", "dpop-nonce-secret"}

// parseFlags returns the values of the flags given in args, by name: one
// for a scalar setting (the last), each given for a list or a rule.
func parseFlags(args []string, output io.Writer) (map[string][]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && slices.Contains(secretFlags, name) {
			return nil, fmt.Errorf("-%s: a secret on the command line shows in the process list: use %s", name, secretKeys[name])
		}
	}
	fs := flag.NewFlagSet("introspect-proxy", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() { writeUsage(output) }
	given := make(map[string][]string)
	for _, s := range settings {
		record := func(v string) error {
			switch s.kind {
			case kindRules:
				given[s.name] = append(given[s.name], v)
			case kindList:
				given[s.name] = append(slices.Clip(given[s.name]), splitList(v)...)
				if given[s.name] == nil {
					given[s.name] = []string{}
				}
			default:
				given[s.name] = []string{v}
			}
			return nil
		}
		if s.kind == kindBool {
			fs.BoolFunc(s.name, s.usage, record)
		} else {
			fs.Func(s.name, s.usage, record)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s (every setting is a flag)", quote(strings.Join(fs.Args(), " ")))
	}
	return given, nil
}

// readEnv keeps the INTROSPECT_ variables of environ that are not empty,
// and warns about those that name no setting and no secret.
func (l *loader) readEnv(environ []string) {
	known := map[string]bool{
		EnvClientSecret: true, EnvRedisSecret: true, EnvRedisPassword: true,
		EnvRedisEncryptionKey: true, EnvDPoPNonceSecret: true,
	}
	for _, s := range settings {
		if !s.noEnv {
			known[envName(s.name)] = true
		}
	}
	var unknown []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		if v == "" { // an empty variable is not set; a later entry wins, as in a shell
			delete(l.env, k)
			l.emptyEnv[k] = true
			continue
		}
		delete(l.emptyEnv, k)
		l.env[k] = v
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range slices.Compact(unknown) {
		l.c.Warnings = append(l.c.Warnings, fmt.Sprintf("%s names no setting of introspect-proxy: ignored", k))
	}
}

// DPoPExternalURLs is the list of -dpop-external-url, comma-separated.
func DPoPExternalURLs(s string) []string { return splitList(s) }

// splitList splits a comma-separated list, leaving out empty items.
func splitList(s string) []string {
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// splitLines splits one rule per line, leaving out empty lines.
func splitLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// fileValue is the value of a key of the configuration file.
type fileValue struct {
	vals []string
	origin
}

// readFile reads the YAML configuration file: a mapping whose keys are the
// settings' names and whose values are scalars, or sequences of scalars for
// lists and rules.
func readFile(path string) (map[string]fileValue, error) {
	data, err := ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document", path)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of settings (listen: \":8080\", ...)", path, root.Line)
	}
	out := make(map[string]fileValue)
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		at := fmt.Sprintf("%s:%d", path, k.Line)
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s: a key must be a setting's name", at))
			continue
		}
		name := k.Value
		if where, ok := secretKeys[name]; ok {
			errs = append(errs, fmt.Errorf("%s: %s: secrets are not read from the configuration file: use %s", at, name, where))
			continue
		}
		s, ok := lookup(name)
		if !ok || s.noFile {
			errs = append(errs, fmt.Errorf("%s: %s is not a setting of the configuration file", at, quote(name)))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("%s: %s: given twice", at, name))
			continue
		}
		fv := fileValue{origin: origin{kind: fromFile, file: path, line: k.Line}}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			// "key:" with nothing: an empty list to some, the default to
			// others; it says neither.
			errs = append(errs, fmt.Errorf("%s: %s: no value: give one (an empty list is []), or leave the key out for the default", at, name))
			continue
		case v.Kind == yaml.ScalarNode:
			switch s.kind {
			case kindList:
				fv.vals = splitList(v.Value)
			case kindRules:
				fv.vals = splitLines(v.Value)
			default:
				fv.vals = []string{strings.TrimSpace(v.Value)}
			}
		case v.Kind == yaml.SequenceNode && (s.kind == kindList || s.kind == kindRules):
			fv.vals = []string{}
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("%s: %s: each item must be a plain value", at, name))
					continue
				}
				if t := strings.TrimSpace(item.Value); t != "" {
					fv.vals = append(fv.vals, t)
				}
			}
		case v.Kind == yaml.SequenceNode:
			errs = append(errs, fmt.Errorf("%s: %s: takes one value, not a list", at, name))
			continue
		default:
			errs = append(errs, fmt.Errorf("%s: %s: want a plain value", at, name))
			continue
		}
		out[name] = fv
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// writeUsage prints the usage text: every setting with its variable and
// default.
func writeUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: introspect-proxy -upstream URL | -forward-auth, -endpoint URL | -issuer URL, -client-id ID [flags]
       introspect-proxy -upstream URL | -forward-auth, -validate jwt, -issuer URL | -jwt-issuers URL,..., -jwt-audience ID [flags]

Protects a service with OAuth 2.0 token introspection (RFC 7662), or by
validating JWT access tokens (RFC 9068) locally: as a reverse proxy in front of
it, or as the auth service of an ingress (forward-auth).
Every flag is also the variable INTROSPECT_<NAME> (upper case, '-' as '_') and
the key <name> of the -config YAML file; a flag wins over a variable, which
wins over the file. Secrets come from the environment or files only:
%s (or -client-secret-file), %s,
%s, %s, %s.

`, EnvClientSecret, EnvRedisSecret, EnvRedisPassword, EnvRedisEncryptionKey, EnvDPoPNonceSecret)
	for _, s := range settings {
		head := "  -" + s.name
		switch {
		case s.kind == kindBool:
		case s.arg != "":
			head += " " + s.arg
		default:
			head += " VALUE"
		}
		fmt.Fprintln(w, head)
		extra := ""
		if s.def != "" && s.def != "false" && s.def != "0s" && s.def != "0" {
			extra = "default " + s.def
		}
		if !s.noEnv {
			if extra != "" {
				extra += "; "
			}
			extra += "$" + envName(s.name)
		}
		line := s.usage
		if extra != "" {
			line += " (" + extra + ")"
		}
		fmt.Fprintf(w, "    \t%s\n", line)
	}
}
