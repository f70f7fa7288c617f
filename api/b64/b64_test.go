package b64

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodeForms(t *testing.T) {
	data := []byte("\xff\xd8\xff\xe0 a JPEG, or so it says \xfe\xff")
	std := base64.StdEncoding.EncodeToString(data)
	url := base64.URLEncoding.EncodeToString(data)
	wrapped := std[:10] + "\r\n" + std[10:30] + "\n" + std[30:]
	for name, lit := range map[string]string{
		"standard":         `"` + std + `"`,
		"url-safe":         `"` + url + `"`,
		"unpadded":         `"` + strings.TrimRight(std, "=") + `"`,
		"line breaks":      `"` + strings.ReplaceAll(strings.ReplaceAll(wrapped, "\r", `\r`), "\n", `\n`) + `"`,
		"escaped slashes":  `"` + strings.ReplaceAll(std, "/", `\/`) + `"`,
		"data URL":         `"data:image/jpeg;base64,` + std + `"`,
		"spaces around it": " \"" + std + "\" ",
	} {
		got, err := DecodeJSON([]byte(lit))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, lit := range map[string]string{
		"number":            `12`,
		"array":             `["abc"]`,
		"illegal character": `"ab*d"`,
		"one char too many": `"abcde"`,
		"data URL, not b64": `"data:text/plain,hello"`,
		"unterminated":      `"abc`,
	} {
		if got, err := DecodeJSON([]byte(lit)); err == nil {
			t.Errorf("%s: decoded %q, want an error", name, got)
		}
	}
}

func TestDecodeLeavesInputAlone(t *testing.T) {
	in := []byte("aGVs\nbG8=")
	keep := bytes.Clone(in)
	if got, err := Decode(in); err != nil || string(got) != "hello" || !bytes.Equal(in, keep) {
		t.Errorf("got %q, %v; input now %q", got, err, in)
	}
}
