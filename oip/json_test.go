package oip

import (
	"strings"
	"testing"
)

func TestSplitStrings(t *testing.T) {
	for in, want := range map[string]string{
		`["YQ==","Yg=="]`:                `"YQ==" | "Yg=="`,
		` [ "YQ==" , ["Yg==","Yw=="] ] `: `"YQ==" | ["Yg==","Yw=="]`,
		`["a\"b\\\\", "c"]`:              `"a\"b\\\\" | "c"`,
		`[1, "x", true]`:                 `1 | "x" | true`,
		`[]`:                             ``,
	} {
		got, ok := splitStrings([]byte(in))
		var parts []string
		for _, g := range got {
			parts = append(parts, string(g))
		}
		if !ok || strings.Join(parts, " | ") != want {
			t.Errorf("%s: %q %v, want %s", in, parts, ok, want)
		}
	}
	for _, in := range []string{`"x"`, `{}`, `["unterminated]`} {
		if _, ok := splitStrings([]byte(in)); ok {
			t.Errorf("%s: split", in)
		}
	}
}

func TestDecodeJSONBytes(t *testing.T) {
	req, err := DecodeJSON([]byte(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[3],"data":["YQ==",["Yg","Yw\u003d\u003d"]]}]}`))
	if err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Bytes) != 3 || string(req.Inputs[0].Bytes[2]) != "c" {
		t.Fatalf("%+v %v", req, err)
	}
}
