package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Source is one layer of values: a values file or one --set expression. Later
// layers override earlier ones, maps merge key by key, as in Helm.
type Source struct {
	// Name says where the values came from in error messages: the file name
	// as the user gave it, or "--set".
	Name string
	tree map[string]any
	set  bool
	// into: the layer's keys are set into the values before it, as Helm
	// does for --set and --set-file: list[1]=x changes one element of the
	// list a file gave, and the other elements stay. A list given whole
	// ({a,b}, at the paths in whole) replaces the one before.
	into  bool
	whole map[string]bool
}

// ParseValuesFile reads a values file (YAML or JSON) named name.
func ParseValuesFile(name string, data []byte) (Source, error) {
	tree, err := decodeYAMLMap(data)
	if err != nil {
		return Source{}, &ValueError{Source: name, Msg: err.Error()}
	}
	return Source{Name: name, tree: tree}, nil
}

func decodeYAMLMap(data []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "), "yaml: "))
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return map[string]any{}, nil // an empty file sets nothing
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid values: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a map of values at the top level, got %s", describe(v))
	}
	return m, nil
}

// ParseSet reads one --set argument in Helm's basic syntax: key=value pairs
// separated by commas, dotted keys (a backslash escapes a dot or comma), list
// indexes as key[0], lists as {a,b}; true, false, null and integers are typed.
func ParseSet(expr string) (Source, error) {
	return parseSet("--set", expr, typedValue)
}

// ParseSetString reads one --set-string argument: --set's syntax, every
// value a string, as Helm takes it.
func ParseSetString(expr string) (Source, error) {
	return parseSet("--set-string", expr, func(s string) any { return s })
}

// parseSet reads --set's syntax for flag, each value (and each element of a
// {a,b} list) as value makes it.
func parseSet(flag, expr string, typed func(string) any) (Source, error) {
	src := Source{Name: flag, tree: map[string]any{}, set: true, into: true, whole: map[string]bool{}}
	// Errors name keys, never values: a value may be a secret.
	fail := func(key, msg string) (Source, error) {
		where := flag
		if key != "" {
			where += " " + key
		}
		return Source{}, &ValueError{Source: where, Msg: msg}
	}
	for _, part := range splitUnescaped(expr, ',', true) {
		if part == "" {
			continue
		}
		kv := splitUnescaped(part, '=', false)
		if len(kv) < 2 || kv[0] == "" {
			// Only the key is named: what follows it (a ':' or a space
			// typed for '=') may be a token.
			key := keyPrefix(part)
			if path, err := parseKeyPath(key); err == nil && secretKey(path) {
				return fail(key, "want key=value; and a secret on the command line is visible to every user in the process list: give the token with --token-file FILE (or - for stdin), or in a values file")
			}
			if key != "" && chartKey(key) {
				return fail(key, "want key=value")
			}
			return fail("", "an entry has no key=value form")
		}
		value := strings.Join(kv[1:], "=")
		path, err := parseKeyPath(kv[0])
		if err != nil {
			return fail("", err.Error())
		}
		if secretKey(path) {
			return fail(kv[0], "a secret on the command line is visible to every user in the process list: give the token with --token-file FILE (or - for stdin), or in a values file")
		}
		var v any
		if strings.HasPrefix(value, "{") && strings.HasSuffix(value, "}") {
			list := []any{}
			for _, e := range splitUnescaped(value[1:len(value)-1], ',', false) {
				list = append(list, typed(e))
			}
			v = list
			src.whole[pathString(path)] = true
		} else {
			// The first split kept "\," for lists; anywhere else it is ",".
			v = typed(strings.ReplaceAll(value, `\,`, ","))
		}
		if err := setPath(src.tree, path, v); err != nil {
			return fail(kv[0], err.Error())
		}
	}
	return src, nil
}

// ParseSetJSON reads one --set-json argument as Helm does: key=JSON pairs
// separated by commas, dotted keys as in --set, each value one JSON value
// (a list or an object is set whole), e.g.
// tolerations=[{"operator":"Exists"}],replicas=3.
func ParseSetJSON(expr string) (Source, error) {
	src := Source{Name: "--set-json", tree: map[string]any{}, into: true, whole: map[string]bool{}}
	fail := func(key, msg string) (Source, error) {
		where := "--set-json"
		if key != "" {
			where += " " + key
		}
		return Source{}, &ValueError{Source: where, Msg: msg}
	}
	rest := strings.TrimSpace(expr)
	if strings.HasPrefix(rest, "{") {
		// A whole JSON object, merged as a values file is (Helm 3.17+).
		dec := json.NewDecoder(strings.NewReader(rest))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || dec.More() {
			return fail("", "the value is not one JSON object")
		}
		if secretIn(nil, m) {
			return fail("", "a secret on the command line is visible to every user in the process list: give the token with --token-file FILE (or - for stdin), or in a values file")
		}
		return Source{Name: "--set-json", tree: m}, nil
	}
	for rest != "" {
		key, value, ok := strings.Cut(rest, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.Contains(key, ",") {
			if k := keyPrefix(key); k != "" && chartKey(k) && !strings.Contains(key, ",") {
				return fail(k, "want key=JSON")
			}
			return fail("", "an entry has no key=JSON form")
		}
		path, err := parseKeyPath(key)
		if err != nil {
			return fail("", err.Error())
		}
		dec := json.NewDecoder(strings.NewReader(value))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			// Not the decoder's text: it may quote the value.
			return fail(key, "the value is not JSON")
		}
		if secretIn(path, v) {
			return fail(key, "a secret on the command line is visible to every user in the process list: give the token with --token-file FILE (or - for stdin), or in a values file")
		}
		switch v.(type) {
		case []any, map[string]any:
			src.whole[pathString(path)] = true
		}
		if err := setPath(src.tree, path, v); err != nil {
			return fail(key, err.Error())
		}
		rest = strings.TrimSpace(value[dec.InputOffset():])
		if rest != "" {
			if rest[0] != ',' {
				return fail(key, "want a comma after the JSON value")
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return src, nil
}

// secretIn reports a secret value at path, or inside v at it.
func secretIn(path []pathElem, v any) bool {
	if secretKey(path) {
		return true
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if secretIn(append(slices.Clone(path), pathElem{key: k, index: -1}), e) {
				return true
			}
		}
	case []any:
		for i, e := range t {
			if secretIn(append(slices.Clone(path), pathElem{index: i}), e) {
				return true
			}
		}
	}
	return false
}

// ParseSetFile reads one --set-file argument as Helm does: key=FILE pairs
// separated by commas, each key (dotted, as in --set) set to the content of
// its FILE as a string, e.g. config.kasCaCert=ca.pem. read reads a file.
func ParseSetFile(expr string, read func(path string) ([]byte, error)) (Source, error) {
	src := Source{Name: "--set-file", tree: map[string]any{}, into: true}
	for _, part := range splitUnescaped(expr, ',', false) {
		if part == "" {
			continue
		}
		key, file, ok := strings.Cut(part, "=")
		if !ok || key == "" || file == "" {
			// Named by its key alone, if it has one: what was given may be
			// the secret itself.
			msg := "an entry has no key=FILE form"
			if k := keyPrefix(key); k != "" && chartKey(k) {
				msg = fmt.Sprintf("%q: want key=FILE", k)
			}
			return Source{}, &ValueError{Source: "--set-file", Msg: msg}
		}
		path, err := parseKeyPath(key)
		if err != nil {
			return Source{}, &ValueError{Source: "--set-file", Msg: err.Error()}
		}
		data, err := read(file)
		if err != nil {
			return Source{}, err
		}
		if err := setPath(src.tree, path, string(data)); err != nil {
			return Source{}, &ValueError{Source: "--set-file " + key, Msg: err.Error()}
		}
	}
	return src, nil
}

// keyPrefix is the leading part of s made of the characters a key has:
// what comes after (a ':' or a space typed for '=') may be a secret.
func keyPrefix(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._[]-"))]
}

// chartKey reports a dotted key whose first part is a chart value (so that
// echoing it cannot show a secret typed in the wrong place).
func chartKey(s string) bool {
	first, _, _ := strings.Cut(s, ".")
	first, _, _ = strings.Cut(first, "[")
	_, ok := chart2150.defaults[first] // the newest chart has every key
	return ok
}

// secretKey reports the values that hold secrets: the agent token and the
// observability TLS key.
func secretKey(path []pathElem) bool {
	var keys []string
	for _, p := range path {
		if p.index >= 0 {
			return false
		}
		keys = append(keys, p.key)
	}
	switch strings.Join(keys, ".") {
	case "config.token", "config.observability.tls.key", "config.api.tls.key", "config.privateApi.tls.key":
		return true
	}
	return false
}

// splitUnescaped splits s at sep where it is not escaped by a backslash and,
// with braces, not inside {...}. Escapes of sep are removed.
func splitUnescaped(s string, sep byte, braces bool) []string {
	var parts []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == sep:
			if braces && depth > 0 {
				cur.WriteByte('\\') // kept for the list's own split: {a\,b,c}
			}
			cur.WriteByte(sep)
			i++
			continue
		case braces && c == '{':
			depth++
		case braces && c == '}' && depth > 0:
			depth--
		case c == sep && depth == 0:
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(parts, cur.String())
}

// pathElem is a map key, or a list index when index >= 0.
type pathElem struct {
	key   string
	index int
}

var indexRE = regexp.MustCompile(`^(.*?)((?:\[[0-9]+\])+)$`)

func parseKeyPath(key string) ([]pathElem, error) {
	var path []pathElem
	for _, seg := range splitUnescaped(key, '.', false) {
		if seg == "" {
			return nil, fmt.Errorf("key %q has an empty part", key)
		}
		m := indexRE.FindStringSubmatch(seg)
		if m == nil {
			path = append(path, pathElem{key: seg, index: -1})
			continue
		}
		if m[1] == "" {
			return nil, fmt.Errorf("key %q: an index needs a name before it", key)
		}
		path = append(path, pathElem{key: m[1], index: -1})
		for _, idx := range strings.Split(strings.Trim(m[2], "[]"), "][") {
			n, err := strconv.Atoi(idx)
			if err != nil || n > 1000 {
				return nil, fmt.Errorf("key %q: bad list index %q", key, idx)
			}
			path = append(path, pathElem{index: n})
		}
	}
	return path, nil
}

var intRE = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)

// typedValue guesses a --set value's type the way Helm does.
func typedValue(s string) any {
	switch { // any case, as Helm reads them
	case strings.EqualFold(s, "true"):
		return true
	case strings.EqualFold(s, "false"):
		return false
	case strings.EqualFold(s, "null"):
		return nil
	}
	if intRE.MatchString(s) {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return json.Number(strings.TrimPrefix(s, "+"))
		}
	}
	return s
}

// setPath stores v at path inside tree, creating maps and lists on the way.
func setPath(tree map[string]any, path []pathElem, v any) error {
	var cur any = tree
	set := func(val any) {} // replaced below to write into the parent
	for i, p := range path {
		last := i == len(path)-1
		if p.index < 0 {
			m, ok := cur.(map[string]any)
			if !ok {
				return fmt.Errorf("%q is not a map", p.key)
			}
			if last {
				m[p.key] = v
				return nil
			}
			next, exists := m[p.key]
			if !exists || next == nil {
				if path[i+1].index >= 0 {
					next = []any{}
				} else {
					next = map[string]any{}
				}
				m[p.key] = next
			}
			key := p.key
			set = func(val any) { m[key] = val }
			cur = next
			continue
		}
		list, ok := cur.([]any)
		if !ok {
			return fmt.Errorf("index [%d] on a value that is not a list", p.index)
		}
		for len(list) <= p.index {
			list = append(list, nil)
		}
		set(list)
		if last {
			list[p.index] = v
			return nil
		}
		if list[p.index] == nil {
			if path[i+1].index >= 0 {
				list[p.index] = []any{}
			} else {
				list[p.index] = map[string]any{}
			}
		}
		idx, l := p.index, list
		set = func(val any) { l[idx] = val }
		cur = list[p.index]
	}
	return nil
}

// Load is LoadChart for the default chart version.
func Load(sources ...Source) (Values, error) {
	return LoadChart("", sources...)
}

// LoadChart validates each source against the schema of chart version
// ("" for DefaultChartVersion), merges them over that chart's defaults in
// order, and returns the result.
func LoadChart(version string, sources ...Source) (Values, error) {
	c, err := LookupChart(version)
	if err != nil {
		return Values{}, err
	}
	// As Helm: the user's layers are merged first (a later one wins, maps
	// key by key, a map after a null replaces it), then over the chart's
	// defaults once, where a null removes a default.
	user := map[string]any{}
	for _, s := range sources {
		checked, err := c.schema.check(s.Name, "", s.tree, checkHow{coerce: s.set, holes: s.into})
		if err != nil {
			var ve *ValueError
			if errors.As(err, &ve) && strings.HasPrefix(ve.Msg, "unknown key") {
				ve.Msg += fmt.Sprintf("; gitlab-agent chart %s, the version followed, has no such key", c.Version)
				if newest := Charts[len(Charts)-1]; c != newest {
					ve.Msg += " (--chart-version " + newest.Version + " may have it)"
				} else {
					ve.Msg += " (a newer chart's keys are not modelled yet: leave it out)"
				}
			}
			return Values{}, err
		}
		if s.into {
			setInto(user, checked.(map[string]any), "", s.whole)
		} else {
			mergeLayer(user, checked.(map[string]any))
		}
	}
	merged := c.defaultsCopy()
	coalesce(merged, user)
	var v Values
	b, err := json.Marshal(merged)
	if err != nil {
		return Values{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return Values{}, fmt.Errorf("merging values: %w", err)
	}
	v.Chart = c.Version
	return v, nil
}

// mergeLayer merges a later layer of the user's values into dst: maps key
// by key, anything else (a null too) replaced, as Helm merges -f files and
// --set.
func mergeLayer(dst, src map[string]any) {
	for k, sv := range src {
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		switch {
		case sIsMap && dIsMap:
			mergeLayer(dm, sm)
		case sIsMap:
			cp := map[string]any{}
			mergeLayer(cp, sm)
			dst[k] = cp
		default:
			dst[k] = sv
		}
	}
}

// setInto is mergeLayer for a --set or --set-file layer: a list it indexes
// is the list before it with those elements set (an element that is a map
// merges key by key); the elements it did not name (null) stay. A list it
// gave whole (at a path in whole) replaces the one before.
func setInto(dst, src map[string]any, at string, whole map[string]bool) {
	for k, sv := range src {
		p := k
		if at != "" {
			p = at + "." + k
		}
		dst[k] = setValueInto(dst[k], sv, p, whole)
	}
}

func setValueInto(dv, sv any, at string, whole map[string]bool) any {
	switch s := sv.(type) {
	case map[string]any:
		d, ok := dv.(map[string]any)
		if ok {
			d = maps.Clone(d) // the layer before keeps its own tree
		} else {
			d = map[string]any{}
		}
		setInto(d, s, at, whole)
		return d
	case []any:
		d, ok := dv.([]any)
		if !ok || whole[at] {
			return sv
		}
		out := append([]any(nil), d...)
		for len(out) < len(s) {
			out = append(out, nil)
		}
		for i, e := range s {
			if e != nil {
				out[i] = setValueInto(out[i], e, fmt.Sprintf("%s[%d]", at, i), whole)
			}
		}
		return out
	}
	return sv
}

// pathString is a key path as setInto names it: "a.b[1].c".
func pathString(path []pathElem) string {
	var b strings.Builder
	for i, p := range path {
		switch {
		case p.index >= 0:
			fmt.Fprintf(&b, "[%d]", p.index)
		case i > 0:
			b.WriteString("." + p.key)
		default:
			b.WriteString(p.key)
		}
	}
	return b.String()
}

// coalesce merges src into dst: maps key by key, anything else replaced; a
// null removes the key, as in Helm.
func coalesce(dst, src map[string]any) {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		if sIsMap && dIsMap {
			coalesce(dm, sm)
			continue
		}
		if sIsMap {
			cp := map[string]any{}
			coalesce(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = sv
	}
}

// Keys are the dotted value keys the user set ("config.kasAddress") in values
// files, --set or a plain flag, so that what the user left alone can come
// from elsewhere (GitLab's KAS, the running agent).
type Keys map[string]bool

// The keys install and upgrade fill in when the user did not set them.
const (
	KeyKasAddress = "config.kasAddress"
	KeyImageTag   = "image.tag"
	KeyKasCaCert  = "config.kasCaCert"
	KeyKasHeaders = "config.kasHeaders"
	// A receptive agent's, which install takes from GitLab.
	KeyReceptiveEnabled = "config.receptive.enabled"
	KeyJWTPublicKey     = "config.api.jwtPublicKey"
)

// Has reports whether the user set key.
func (k Keys) Has(key string) bool { return k[key] }

// SetKeys lists the leaf keys the sources set; a list counts as one value.
func SetKeys(sources ...Source) Keys {
	keys := Keys{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := join(prefix, k)
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(key, sub)
				continue
			}
			keys[key] = true
		}
	}
	for _, s := range sources {
		walk("", s.tree)
	}
	return keys
}
