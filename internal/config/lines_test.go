package config

import (
	"maps"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestKeyLines(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     map[string]int
	}{
		{"empty", "", map[string]int{}},
		{"tables and keys", "# c\n[daemon]\nspin = \"1us\" # c\n\n[vm.vm0]\nrings=1\n",
			map[string]int{"daemon": 2, "daemon.spin": 3, "vm": 5, "vm.vm0": 5, "vm.vm0.rings": 6}},
		{"first mention wins", "[vm.a]\n[vm.b]\n[vm]\n", map[string]int{"vm": 1, "vm.a": 1, "vm.b": 2}},
		{"dotted keys with spaces", "vm . a . rings = 1\n", map[string]int{"vm": 1, "vm.a": 1, "vm.a.rings": 1}},
		{"quoted keys", "[vm.\"a b\"]\n'x.y' = 1\n\"\\u0063\" = 2\n",
			map[string]int{"vm": 1, `vm."a b"`: 1, `vm."a b"."x.y"`: 2, `vm."a b".c`: 3}},
		{"inline tables over lines", "vm = { a = { rings = 1 },\n  b = {\n    slots = 64,\n  } }\nx = 1\n",
			map[string]int{"vm": 1, "vm.a": 1, "vm.a.rings": 1, "vm.b": 2, "vm.b.slots": 3, "x": 5}},
		{"multi-line strings", "a = \"\"\"\nb = 1\n\\\" \"\"\"\nc = '''\nd = 2 ''''\ne = \"\"\"\"\"\"\nf = 3\n",
			map[string]int{"a": 1, "c": 4, "e": 6, "f": 7}},
		{"strings with quotes and hashes", "a = \"\\\"#[x]\"\nb = '#'\nc = 1\n",
			map[string]int{"a": 1, "b": 2, "c": 3}},
		{"arrays", "a = [\n  1, # x = 1\n  { y = 2 },\n  [\"z = 3\"],\n]\nb = 1\n",
			map[string]int{"a": 1, "b": 6}},
		{"date-time with a space", "a = 1979-05-27 07:32:00Z\nb = 1\n", map[string]int{"a": 1, "b": 2}},
		{"array of tables", "[[t]]\nx = 1\n[[t]]\nx = 2\n", map[string]int{"t": 1, "t.x": 2}},
		{"CRLF", "[vm.a]\r\nrings = 1\r\n", map[string]int{"vm": 1, "vm.a": 1, "vm.a.rings": 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if _, err := toml.Decode(tt.in, &doc); err != nil {
				t.Fatalf("test input is not valid TOML: %v", err)
			}
			if got := keyLines(tt.in); !maps.Equal(got, tt.want) {
				t.Errorf("keyLines(%q)\n got %v\nwant %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestKeyLinesGarbage checks the scanner stops on input the TOML parser
// would reject; FuzzParse covers more.
func TestKeyLinesGarbage(t *testing.T) {
	for _, in := range []string{"[", "[[", "a", "a =", "a = \"", "a = \"\"\"", "a = '''x", "a = {", "a = [", "a = {b", "\"", "= = =", "a = \"\\", "}]", "a.", "[a.\"b"} {
		keyLines(in)
	}
}
