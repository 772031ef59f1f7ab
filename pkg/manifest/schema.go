package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// ValueError is a value that the chart's schema does not accept. Its text
// names where the value came from and its key:
// `values.yaml: replicas: want an integer, got "two"`.
type ValueError struct {
	Source string // a values file as given, or "--set"
	Key    string // dotted key path
	Msg    string
}

func (e *ValueError) Error() string {
	if e.Key == "" {
		return e.Source + ": " + e.Msg
	}
	return e.Source + ": " + e.Key + ": " + e.Msg
}

type kind int

const (
	kString kind = iota
	kInt
	kIntOrPercent
	kBool
	kStringList
	kStringMap
	kObject
	kFree
	kNullableInt // an integer or null (the chart's `if` skips both 0 and null)
)

// field is one key of the values schema.
type field struct {
	kind   kind
	fields map[string]*field // kObject
	free   func() any        // kFree: a pointer to the Kubernetes type to decode into
	enum   []string          // kString: the accepted values, if limited
	// printed (kString): the chart prints the value into a text, so a
	// number or a boolean is the text Helm prints for it (image.tag: 18
	// makes agentk:18), not an error.
	printed bool
}

func str() *field                         { return &field{kind: kString} }
func printedStr() *field                  { return &field{kind: kString, printed: true} }
func enum(vals ...string) *field          { return &field{kind: kString, enum: vals} }
func obj(fields map[string]*field) *field { return &field{kind: kObject, fields: fields} }
func free(newValue func() any) *field     { return &field{kind: kFree, free: newValue} }
func boolean() *field                     { return &field{kind: kBool} }
func integer() *field                     { return &field{kind: kInt} }
func nullableInt() *field                 { return &field{kind: kNullableInt} }
func intOrPercent() *field                { return &field{kind: kIntOrPercent} }
func stringList() *field                  { return &field{kind: kStringList} }
func stringMap() *field                   { return &field{kind: kStringMap} }
func freeOf[T any]() *field               { return free(func() any { return new(T) }) }
func toggle() *field                      { return obj(map[string]*field{"enabled": boolean()}) }

// schema262 lists every key of chart 2.6.2's values.yaml with its type.
// Fields the chart passes to Kubernetes verbatim are checked against the
// Kubernetes type. Each call builds a new tree.
func schema262() *field {
	return obj(map[string]*field{
		"image": obj(map[string]*field{
			"repository": str(),
			"pullPolicy": enum("Always", "IfNotPresent", "Never"),
			"tag":        printedStr(), // {{ .Values.image.repository }}:{{ .Values.image.tag ... }}
		}),
		"imagePullSecrets": freeOf[[]corev1.LocalObjectReference](),
		"nameOverride":     str(),
		"fullnameOverride": str(),
		"replicas":         integer(),
		"maxSurge":         intOrPercent(),
		"maxUnavailable":   intOrPercent(),
		"rbac": obj(map[string]*field{
			"create":          boolean(),
			"useExistingRole": str(),
		}),
		"serviceAccount": obj(map[string]*field{
			"create":      boolean(),
			"annotations": stringMap(),
			"name":        str(),
		}),
		"podSecurityContext": freeOf[corev1.PodSecurityContext](),
		"securityContext":    freeOf[corev1.SecurityContext](),
		"podAnnotations":     stringMap(),
		"serviceMonitor":     toggle(),
		"config": obj(map[string]*field{
			"kasAddress": str(),
			"kasHeaders": stringList(),
			"token":      str(),
			"secretName": str(),
			"kasCaCert":  str(),
			"observability": obj(map[string]*field{
				"enabled": boolean(),
				"tls": obj(map[string]*field{
					"enabled": boolean(),
					"cert":    str(),
					"key":     str(),
					"secret": obj(map[string]*field{
						"create": boolean(),
						"name":   str(),
					}),
				}),
			}),
			"operational_container_scanning": toggle(),
		}),
		"extraEnv":                 freeOf[[]corev1.EnvVar](),
		"extraArgs":                stringList(),
		"extraVolumeMounts":        freeOf[[]corev1.VolumeMount](),
		"extraVolumes":             freeOf[[]corev1.Volume](),
		"resources":                freeOf[corev1.ResourceRequirements](),
		"nodeSelector":             stringMap(),
		"tolerations":              freeOf[[]corev1.Toleration](),
		"affinity":                 freeOf[corev1.Affinity](),
		"priorityClassName":        str(),
		"runtimeClassName":         str(),
		"hostAliases":              freeOf[[]corev1.HostAlias](),
		"podLabels":                stringMap(),
		"additionalLabels":         stringMap(),
		"initContainers":           freeOf[[]corev1.Container](),
		"terminationMessagePolicy": enum("File", "FallbackToLogsOnError"),
	})
}

// schema2150 is chart 2.15.0's: 2.6.2's and the keys it adds.
func schema2150() *field {
	s := schema262()
	s.fields["revisionHistoryLimit"] = nullableInt()
	cfg := s.fields["config"].fields
	cfg["receptive"] = toggle()
	cfg["api"] = obj(map[string]*field{
		"listenNetwork": str(),
		"listenAddress": str(),
		"jwtPublicKey":  str(),
		"tls": obj(map[string]*field{
			"enabled": boolean(),
			"cert":    str(),
			"key":     str(),
		}),
	})
	cfg["privateApi"] = obj(map[string]*field{
		"listenNetwork": str(),
		"listenAddress": str(),
		"tls": obj(map[string]*field{
			"enabled": boolean(),
			"cert":    str(),
			"key":     str(),
			"caCert":  str(),
		}),
	})
	// loadBalancerIP and loadBalancerSourceRanges are read by the
	// chart's service.yaml though values.yaml does not list them.
	s.fields["service"] = obj(map[string]*field{
		"type":                     enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
		"externalPort":             integer(),
		"internalPort":             integer(),
		"privateApiPort":           integer(),
		"loadBalancerIP":           str(),
		"loadBalancerSourceRanges": stringList(),
	})
	s.fields["ingress"] = obj(map[string]*field{
		"enabled":     boolean(),
		"provider":    str(),
		"annotations": stringMap(),
		"hostname":    str(),
		"tls":         toggle(),
	})
	// The vendored ingress-nginx subchart's values: accepted, so that a
	// chart values file loads, but enabling it is refused by Render.
	s.fields["ingress-nginx"] = freeOf[map[string]any]()
	return s
}

var (
	percentRE     = regexp.MustCompile(`^[0-9]+%$`)
	strictFieldRE = regexp.MustCompile(`^(unknown|duplicate) field "(.*)"$`)
)

// checkHow says how a layer's values are checked.
type checkHow struct {
	// coerce: the types are guessed from the text (--set), so scalars
	// given where a string is wanted are taken as strings, as
	// `--set-string` would.
	coerce bool
	// holes: the layer sets elements of a list by index (list[1]=x), and
	// the elements it did not name (null) are the layer's before.
	holes bool
}

// check validates v against f and returns it normalised.
func (f *field) check(src, key string, v any, how checkHow) (any, error) {
	coerce := how.coerce
	fail := func(format string, args ...any) error {
		return &ValueError{Source: src, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if v == nil {
		// null resets a key, as in Helm; a count cannot be null.
		if f.kind == kInt || f.kind == kIntOrPercent {
			return nil, fail("want an integer, got null")
		}
		return nil, nil
	}
	switch f.kind {
	case kString:
		s, ok := v.(string)
		switch {
		case !ok && coerce:
			s, ok = scalarString(v)
		case !ok && f.printed:
			s, ok = helmText(v)
		}
		if !ok {
			return nil, fail("want a string, got %s", describe(v))
		}
		if f.enum != nil && !slices.Contains(f.enum, s) {
			return nil, fail("want one of %s, got %q", strings.Join(f.enum, ", "), s)
		}
		return s, nil
	case kInt, kNullableInt:
		// A quoted number reads as the number only where the chart writes
		// it as it is; a nullable one it tests with "if", where the string
		// "0" is true and 0 is not.
		if n, ok := intValue(v); ok && (f.kind == kInt || !isString(v)) {
			return n, nil
		}
		return nil, fail("want an integer, got %s", describeAs(v, true))
	case kIntOrPercent:
		if n, ok := intValue(v); ok {
			return n, nil
		}
		if s, ok := v.(string); ok && percentRE.MatchString(s) {
			return s, nil
		}
		return nil, fail("want an integer or a percentage such as \"25%%\", got %s", describeAs(v, true))
	case kBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fail("want true or false, got %s", describeAs(v, true))
	case kStringList:
		list, ok := v.([]any)
		if !ok {
			return nil, fail("want a list of strings, got %s", describe(v))
		}
		out := make([]any, len(list))
		for i, e := range list {
			if e == nil && how.holes {
				continue // --set list[1]=x: element 0 is the one before
			}
			s, ok := e.(string)
			if !ok && coerce {
				s, ok = scalarString(e)
			}
			if !ok {
				return nil, &ValueError{Source: src, Key: fmt.Sprintf("%s[%d]", key, i), Msg: "want a string, got " + describe(e)}
			}
			out[i] = s
		}
		return out, nil
	case kStringMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fail("want a map of strings, got %s", describe(v))
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			e := m[k]
			if e == nil { // null removes the key, as in Helm
				out[k] = nil
				continue
			}
			s, ok := e.(string)
			if !ok && coerce {
				s, ok = scalarString(e)
			}
			if !ok {
				return nil, &ValueError{Source: src, Key: key + "." + k, Msg: "want a string, got " + describe(e) + " (quote it)"}
			}
			out[k] = s
		}
		return out, nil
	case kObject:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fail("want a map, got %s", describe(v))
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			sub, known := f.fields[k]
			if !known {
				return nil, &ValueError{Source: src, Key: join(key, k), Msg: "unknown key" + suggest(k, f.fields)}
			}
			nv, err := sub.check(src, join(key, k), m[k], how)
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case kFree:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fail("%v", err)
		}
		strict, err := kjson.UnmarshalStrict(b, f.free())
		if err != nil {
			return nil, fail("%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		if len(strict) > 0 {
			msg := strings.TrimPrefix(strict[0].Error(), "json: ")
			// Name the field inside the Kubernetes type in the key path:
			// tolerations[0].efect: unknown field.
			if m := strictFieldRE.FindStringSubmatch(msg); m != nil {
				sub := m[2]
				if !strings.HasPrefix(sub, "[") {
					sub = "." + sub
				}
				return nil, &ValueError{Source: src, Key: key + sub, Msg: m[1] + " field"}
			}
			return nil, fail("%s", msg)
		}
		return v, nil
	}
	return nil, fail("unsupported value")
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// suggest points at the key the user probably meant: one that differs only in
// case or by a typo or two; otherwise it lists the keys allowed there when they
// are few.
func suggest(k string, fields map[string]*field) string {
	keys := sortedKeys(fields)
	best, bestDist := "", 3
	for _, name := range keys {
		d := editDistance(strings.ToLower(k), strings.ToLower(name))
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(keys) <= 8 {
		return " (known keys here: " + strings.Join(keys, ", ") + ")"
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalarString turns a number or bool that --set guessed into the text the
// user typed.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case json.Number:
		return t.String(), true
	case bool:
		return fmt.Sprint(t), true
	}
	return "", false
}

// helmText is the text Helm prints for a number or a boolean of a values
// file or --set-json: Helm reads their numbers as float64, and its
// templates print them as Go's fmt does (18, 1.2 for 1.20, 1e+07).
func helmText(v any) (string, bool) {
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(t.String(), 64)
		if err != nil {
			return "", false
		}
		return fmt.Sprint(f), true
	case bool:
		return fmt.Sprint(t), true
	}
	return "", false
}

func isString(v any) bool { _, ok := v.(string); return ok }

// intValue reads an integer, also one quoted ("3"): the chart writes these
// values unquoted, so Helm renders a quoted number as the number.
func intValue(v any) (json.Number, bool) {
	n, ok := v.(json.Number)
	if s, isString := v.(string); isString && intRE.MatchString(s) {
		n, ok = json.Number(strings.TrimPrefix(s, "+")), true
	}
	if !ok {
		return "", false
	}
	if _, err := n.Int64(); err != nil {
		return "", false
	}
	return n, true
}

// describe shows a wrong value in an error message without echoing large or
// nested content, or a string that may be a secret in the wrong place (a
// header with a proxy's credential where a list belongs): a string is quoted
// only as the short word typed for a number or a boolean ("two", "yes").
func describe(v any) string {
	return describeAs(v, false)
}

// describeAs is describe; word allows a short string to be quoted.
func describeAs(v any, word bool) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if !word || len(t) > 12 {
			return "a string"
		}
		return fmt.Sprintf("%q", t)
	case json.Number:
		return t.String()
	case bool:
		return fmt.Sprint(t)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
