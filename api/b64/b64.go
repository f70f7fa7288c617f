// Package b64 decodes images that callers send as base64 text inside JSON
// (/upload's and /predict's JSON bodies, the Open Inference Protocol's BYTES
// tensors). Callers encode with whatever their platform has at hand, so it
// takes the standard or the URL-safe alphabet, with or without padding, with
// line breaks (MIME encoders wrap at 76 columns) and with a data: URL prefix
// (what a browser's FileReader.readAsDataURL gives). It imports nothing of
// the service.
package b64

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotString is a JSON value that is not a string where base64 text is due.
var ErrNotString = errors.New("not a JSON string")

// DecodeJSON decodes a JSON string literal (quotes included, as
// json.RawMessage holds it) of base64 text.
func DecodeJSON(lit []byte) ([]byte, error) {
	lit = bytes.TrimSpace(lit)
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return nil, ErrNotString
	}
	text := lit[1 : len(lit)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		// Escapes ("\/" from PHP, "\n" line breaks) are rare: let the JSON
		// package undo them.
		var s string
		if err := json.Unmarshal(lit, &s); err != nil {
			return nil, ErrNotString
		}
		text = []byte(s)
	}
	return Decode(text)
}

// Decode decodes base64 text in any of the forms above. It does not modify text.
func Decode(text []byte) ([]byte, error) {
	if rest, ok := bytes.CutPrefix(text, []byte("data:")); ok {
		meta, data, found := bytes.Cut(rest, []byte(","))
		if !found || !bytes.HasSuffix(meta, []byte(";base64")) {
			return nil, errors.New("a data: URL must be base64, as in data:image/jpeg;base64,/9j/4AAQ...")
		}
		text = data
	}
	if bytes.ContainsAny(text, " \t\r\n") {
		text = bytes.Join(bytes.Fields(text), nil) // a copy: text stays as it was
	}
	text = bytes.TrimRight(text, "=")
	enc := base64.RawStdEncoding
	if bytes.ContainsAny(text, "-_") {
		enc = base64.RawURLEncoding
	}
	out := make([]byte, enc.DecodedLen(len(text)))
	n, err := enc.Decode(out, text)
	if err != nil {
		var at base64.CorruptInputError
		if errors.As(err, &at) {
			return nil, fmt.Errorf("not base64: an illegal character at offset %d", int64(at))
		}
		return nil, errors.New("not base64")
	}
	return out[:n], nil
}
