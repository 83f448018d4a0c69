package uplink

// No CDDL validator runs here: no Go one exists in the module set, the npm
// "cddl" package (0.21.2) only parses and rejects integer map keys
// ("Expected property name, received NUMBER"), PyPI is unreachable and
// building the Rust tool is too slow for a test. So this file holds a small
// checker for the subset of CDDL that schema.cddl uses (see the note at its
// top): it parses the rules and validates the CBOR the Go types produce,
// decoded generically, against them. It also checks that every key of every
// map rule was exercised, so the schema and the Go tags cannot drift apart
// in either direction.

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
)

type cddlType struct {
	kind    string // choice, map, array, tuple, enum, range, prim, ref
	choices []*cddlType
	entries []cddlEntry
	elem    *cddlType
	tuple   []*cddlType
	names   []string
	values  []int64
	lo, hi  int64
	name    string
	size    int
}

type cddlEntry struct {
	key      int64 // -1: wildcard "* keyType"
	keyType  *cddlType
	optional bool
	val      *cddlType
}

type cddlParser struct {
	toks []string
	pos  int
}

var cddlTok = regexp.MustCompile(`=>|\.\.|\.size|[{}\[\]()&,/?*:]|[0-9]+|[A-Za-z][A-Za-z0-9_-]*`)

func (p *cddlParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *cddlParser) next() string { s := p.peek(); p.pos++; return s }

func (p *cddlParser) accept(s string) bool {
	if p.peek() == s {
		p.pos++
		return true
	}
	return false
}

func (p *cddlParser) expect(s string) {
	if got := p.next(); got != s {
		panic(fmt.Sprintf("want %q, got %q at token %d", s, got, p.pos-1))
	}
}

func (p *cddlParser) number() int64 {
	s := p.next()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("want a number, got %q", s))
	}
	return n
}

func (p *cddlParser) typ() *cddlType {
	t := p.typ1()
	if p.peek() != "/" {
		return t
	}
	c := &cddlType{kind: "choice", choices: []*cddlType{t}}
	for p.accept("/") {
		c.choices = append(c.choices, p.typ1())
	}
	return c
}

func (p *cddlParser) typ1() *cddlType {
	switch tok := p.next(); {
	case tok == "{":
		m := &cddlType{kind: "map"}
		for !p.accept("}") {
			e := cddlEntry{optional: p.accept("?")}
			if p.accept("*") {
				e.key, e.keyType = -1, p.typ1()
			} else {
				e.key = p.number()
			}
			p.expect("=>")
			e.val = p.typ()
			m.entries = append(m.entries, e)
			p.accept(",")
		}
		return m
	case tok == "[":
		if p.accept("*") {
			t := &cddlType{kind: "array", elem: p.typ()}
			p.expect("]")
			return t
		}
		t := &cddlType{kind: "tuple"}
		for !p.accept("]") {
			p.next() // member name
			p.expect(":")
			t.tuple = append(t.tuple, p.typ())
			p.accept(",")
		}
		return t
	case tok == "&":
		p.expect("(")
		t := &cddlType{kind: "enum"}
		for !p.accept(")") {
			t.names = append(t.names, p.next())
			p.expect(":")
			t.values = append(t.values, p.number())
			p.accept(",")
		}
		return t
	case tok != "" && tok[0] >= '0' && tok[0] <= '9':
		p.pos--
		lo := p.number()
		if p.accept("..") {
			return &cddlType{kind: "range", lo: lo, hi: p.number()}
		}
		return &cddlType{kind: "enum", values: []int64{lo}, names: []string{tok}}
	default:
		t := &cddlType{kind: "ref", name: tok, size: -1}
		switch tok {
		case "uint", "int", "tstr", "bstr", "bool":
			t.kind = "prim"
		}
		if p.accept(".size") {
			t.size = int(p.number())
		}
		return t
	}
}

func parseCDDL(t *testing.T, text string) map[string]*cddlType {
	t.Helper()
	var clean []string
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, ";")
		clean = append(clean, line)
	}
	text = strings.Join(clean, "\n")
	ruleStart := regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*)\s*=\s*`)
	locs := ruleStart.FindAllStringSubmatchIndex(text, -1)
	rules := map[string]*cddlType{}
	for i, l := range locs {
		name := text[l[2]:l[3]]
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		body := text[l[1]:end]
		p := &cddlParser{toks: cddlTok.FindAllString(body, -1)}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("schema.cddl rule %s: %v", name, r)
				}
			}()
			rules[name] = p.typ()
			if p.pos != len(p.toks) {
				t.Fatalf("schema.cddl rule %s: trailing tokens %q", name, p.toks[p.pos:])
			}
		}()
	}
	return rules
}

type cddlChecker struct {
	rules map[string]*cddlType
	seen  map[string]bool // "rule/key" exercised
}

func asInt(v any) (int64, bool, bool) { // value, ok, nonNegative
	switch x := v.(type) {
	case uint64:
		if x > 1<<63-1 {
			return 0, true, true // huge uint: only its sign matters here
		}
		return int64(x), true, true
	case int64:
		return x, true, x >= 0
	}
	return 0, false, false
}

func (c *cddlChecker) check(v any, t *cddlType, path, rule string) error {
	switch t.kind {
	case "choice":
		var errs []string
		for _, alt := range t.choices {
			err := c.check(v, alt, path, rule)
			if err == nil {
				return nil
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("%s: no choice matches: %s", path, strings.Join(errs, " | "))
	case "ref":
		r, ok := c.rules[t.name]
		if !ok {
			return fmt.Errorf("%s: undefined rule %s", path, t.name)
		}
		return c.check(v, r, path, t.name)
	case "map":
		m, ok := v.(map[any]any)
		if !ok {
			return fmt.Errorf("%s: want a map, got %T", path, v)
		}
		for k, val := range m {
			matched := false
			for _, e := range t.entries {
				if e.key >= 0 {
					if ki, ok := k.(uint64); ok && int64(ki) == e.key {
						if err := c.check(val, e.val, fmt.Sprintf("%s.%d", path, ki), rule); err != nil {
							return err
						}
						c.seen[fmt.Sprintf("%s/%d", rule, e.key)] = true
						matched = true
						break
					}
				} else if c.check(k, e.keyType, path, rule) == nil {
					if err := c.check(val, e.val, fmt.Sprintf("%s[%v]", path, k), rule); err != nil {
						return err
					}
					c.seen[rule+"/*"] = true
					matched = true
					break
				}
			}
			if !matched {
				return fmt.Errorf("%s: key %v (%T) not in rule %s", path, k, k, rule)
			}
		}
		for _, e := range t.entries {
			if e.key >= 0 && !e.optional {
				if _, ok := m[uint64(e.key)]; !ok {
					return fmt.Errorf("%s: required key %d of rule %s missing", path, e.key, rule)
				}
			}
		}
		return nil
	case "array", "tuple":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", path, v)
		}
		if t.kind == "tuple" && len(a) != len(t.tuple) {
			return fmt.Errorf("%s: array of %d, want %d", path, len(a), len(t.tuple))
		}
		for i, x := range a {
			et := t.elem
			if t.kind == "tuple" {
				et = t.tuple[i]
			}
			if err := c.check(x, et, fmt.Sprintf("%s[%d]", path, i), rule); err != nil {
				return err
			}
		}
		return nil
	case "enum", "range":
		n, ok, _ := asInt(v)
		if !ok {
			return fmt.Errorf("%s: want an integer, got %T", path, v)
		}
		if t.kind == "range" {
			if n < t.lo || n > t.hi {
				return fmt.Errorf("%s: %d not in %d..%d", path, n, t.lo, t.hi)
			}
			return nil
		}
		for _, x := range t.values {
			if x == n {
				return nil
			}
		}
		return fmt.Errorf("%s: %d not one of %v", path, n, t.values)
	case "prim":
		switch t.name {
		case "uint", "int":
			n, ok, nonNeg := asInt(v)
			if !ok || (t.name == "uint" && !nonNeg) {
				return fmt.Errorf("%s: want %s, got %T %v", path, t.name, v, v)
			}
			if t.size > 0 && t.size < 8 && (n < 0 || n >= 1<<(8*t.size)) {
				return fmt.Errorf("%s: %d does not fit .size %d", path, n, t.size)
			}
		case "tstr":
			if _, ok := v.(string); !ok {
				return fmt.Errorf("%s: want tstr, got %T", path, v)
			}
		case "bstr":
			b, ok := v.([]byte)
			if !ok {
				return fmt.Errorf("%s: want bstr, got %T", path, v)
			}
			if t.size >= 0 && len(b) != t.size {
				return fmt.Errorf("%s: bstr of %d bytes, want .size %d", path, len(b), t.size)
			}
		case "bool":
			if _, ok := v.(bool); !ok {
				return fmt.Errorf("%s: want bool, got %T", path, v)
			}
		}
		return nil
	}
	return fmt.Errorf("%s: unknown schema type %q", path, t.kind)
}

func loadSchema(t *testing.T) *cddlChecker {
	t.Helper()
	text, err := os.ReadFile("schema.cddl")
	if err != nil {
		t.Fatal(err)
	}
	return &cddlChecker{rules: parseCDDL(t, string(text)), seen: map[string]bool{}}
}

func TestSchemaMatchesEncoding(t *testing.T) {
	c := loadSchema(t)
	rng := rand.New(rand.NewSource(7))
	assets := sampleAssets(30, rng)
	assets[0].Router = true
	assets[1].OS = "VxWorks 6.9"
	assets = append(assets, asset.Asset{ID: "group:historian-cloud", Kind: asset.MonitoredExternal})
	b := fullBatch(t, assets, sampleTraffic(30, rng))
	// A second batch with the message kinds' other forms.
	enc, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeBatch(enc); err != nil {
		t.Fatal(err)
	}
	// The bytes on the wire, string table and all.
	raw := enc
	if bytes.HasPrefix(enc, zstdMagic) {
		if raw, err = zdec.DecodeAll(enc, nil); err != nil {
			t.Fatal(err)
		}
	}
	var generic any
	if err := Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	if err := c.check(generic, c.rules["batch"], "batch", "batch"); err != nil {
		t.Fatalf("encoded batch does not match schema.cddl: %v", err)
	}
	// Every key of every map rule reachable from batch was exercised.
	for name, r := range c.rules {
		if r.kind != "map" {
			continue
		}
		for _, e := range r.entries {
			k := fmt.Sprintf("%s/%d", name, e.key)
			if e.key < 0 {
				k = name + "/*"
			}
			if !c.seen[k] {
				t.Errorf("schema key %s never produced by the Go types (or the sample lacks it)", k)
			}
		}
	}
	// The message choice: each kind's key was seen.
	msgs, _ := generic.(map[any]any)[uint64(4)].([]any)
	kinds := map[uint64]bool{}
	for _, m := range msgs {
		for k := range m.(map[any]any) {
			kinds[k.(uint64)] = true
		}
	}
	if len(kinds) != 5 {
		t.Errorf("sample exercises message kinds %v, want all 5", kinds)
	}

	// The enums' names match the Go names.
	ev := c.rules["event-kind"]
	for i, name := range ev.names {
		if got := EventKind(ev.values[i]).String(); got != name {
			t.Errorf("event-kind %d: schema %q, Go %q", ev.values[i], name, got)
		}
	}
	if len(ev.names) != int(numEventKinds) {
		t.Errorf("schema has %d event kinds, Go %d", len(ev.names), numEventKinds)
	}
	ak := c.rules["asset-kind"]
	for i, name := range ak.names {
		if got := asset.Kind(ak.values[i]).String(); got != name {
			t.Errorf("asset-kind %d: schema %q, Go %q", ak.values[i], name, got)
		}
	}
}

// TestSchemaCheckerFails makes sure the checker catches what it should.
func TestSchemaCheckerFails(t *testing.T) {
	c := loadSchema(t)
	good := func() map[any]any {
		raw, err := Marshal(fullBatch(t, sampleAssets(2, rand.New(rand.NewSource(8))), nil))
		if err != nil {
			t.Fatal(err)
		}
		var g any
		if err := Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		return g.(map[any]any)
	}
	if err := c.check(good(), c.rules["batch"], "batch", "batch"); err != nil {
		t.Fatalf("good batch rejected: %v", err)
	}
	asset0 := func(g map[any]any) map[any]any {
		return g[uint64(4)].([]any)[2].(map[any]any)[uint64(3)].(map[any]any)[uint64(2)].([]any)[0].(map[any]any)
	}
	mutations := map[string]func(g map[any]any){
		"unknown batch key": func(g map[any]any) { g[uint64(9)] = uint64(1) },
		"missing sensor":    func(g map[any]any) { delete(g, uint64(2)) },
		"id of 15 bytes":    func(g map[any]any) { g[uint64(1)] = make([]byte, 15) },
		"mac of 5 bytes":    func(g map[any]any) { asset0(g)[uint64(3)] = make([]byte, 5) },
		"asset kind 9":      func(g map[any]any) { asset0(g)[uint64(2)] = uint64(9) },
		"hostname as bytes": func(g map[any]any) { asset0(g)[uint64(6)] = []byte("x") },
		"port 70000": func(g map[any]any) {
			asset0(g)[uint64(15)] = []any{[]any{uint64(6), uint64(70000)}}
		},
	}
	for name, mutate := range mutations {
		g := good()
		mutate(g)
		if err := c.check(g, c.rules["batch"], "batch", "batch"); err == nil {
			t.Errorf("%s: schema check passed", name)
		}
	}
}
