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
		`[["a\"]b"], "c"]`:               `["a\"]b"] | "c"`, // an escaped quote and a bracket inside a nested string
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

// Masking long strings must not change what a request decodes to, nor which
// bodies are refused.
func TestDecodeJSONMasksLongStrings(t *testing.T) {
	img := strings.Repeat("abcd", 200)       // 800 bytes of base64 ("i\xb7\x1d" × 200)
	escaped := strings.Repeat("ab\\/d", 100) // "\/" as PHP writes '/'
	long := strings.Repeat("n", 300)         // a long name and id, masked too
	body := `{"id":"` + long + `","inputs":[{"name":"` + long + `","datatype":"BYTES","shape":[3],` +
		`"data":["` + img + `",["` + escaped + `","YQ=="]]}],"outputs":[{"name":"` + long + `"}]}`
	if m, l := maskLongStrings([]byte(body)); len(l) != 5 || len(m) > 400 {
		t.Fatalf("masked %d literals into %d bytes: %s", len(l), len(m), m)
	}
	req, err := DecodeJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	in := req.Inputs[0]
	if req.ID != long || in.Name != long || req.Outputs[0] != long || in.Datatype != "BYTES" {
		t.Errorf("id %q, name %q, outputs %v, datatype %q: the masked strings were not restored", req.ID, in.Name, req.Outputs, in.Datatype)
	}
	if len(in.Bytes) != 3 || len(in.Bytes[0]) != 600 || len(in.Bytes[1]) != 300 || string(in.Bytes[2]) != "a" {
		t.Errorf("decoded %d images (%d, ...) bytes", len(in.Bytes), len(in.Bytes[0]))
	}
	// Invalid JSON stays refused, with encoding/json's words.
	for _, bad := range []string{
		`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img + "\n" + img + `"]}]}`, // a raw newline
		`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img + `"]}`,                // unclosed
		`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img,                        // unterminated
	} {
		if _, err := DecodeJSON([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("%.60s...: %v, want a JSON error", bad, err)
		}
	}
	// A malformed escape in a long string is refused as before, wherever it is.
	if _, err := DecodeJSON([]byte(`{"id":"` + long + `\x","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["YQ=="]}]}`)); err == nil ||
		!strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("a long id with a bad escape: %v, want a JSON error", err)
	}
	// Placeholders forged by a client are text: they neither stand for the
	// masked image (one request decoding it over and over) nor become it.
	forged := `"\u0000catsdogs-masked:0"`
	req, err = DecodeJSON([]byte(`{"id":` + forged + `,"inputs":[{"name":"image","datatype":"BYTES","shape":[3],"data":["` + img + `",` + forged + `,` + forged + `]}]}`))
	if err == nil || !strings.Contains(err.Error(), "element 1") {
		t.Errorf("forged placeholders beside a masked image: %+v %v, want element 1 refused as not base64", req, err)
	}
	req, err = DecodeJSON([]byte(`{"id":` + forged + `,"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + img + `"]}]}`))
	if err != nil || req.ID != "\x00catsdogs-masked:0" || len(req.Inputs[0].Bytes) != 1 {
		t.Errorf("a forged placeholder as the id: %+v %v, want it kept as text", req, err)
	}
	// A client's own string that looks like a placeholder is just text.
	if req, err := DecodeJSON([]byte(`{"id":"\u0000catsdogs-masked:0","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["YQ=="]}]}`)); err != nil ||
		req.ID != "\x00catsdogs-masked:0" || string(req.Inputs[0].Bytes[0]) != "a" {
		t.Errorf("%+v %v", req, err)
	}
}
