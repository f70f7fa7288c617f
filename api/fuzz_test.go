package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzReadFilePart: any body and Content-Type yield either the file's bytes
// or a 4xx with a code and detail, never a panic. Seeds live in
// testdata/fuzz/FuzzReadFilePart.
func FuzzReadFilePart(f *testing.F) {
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/upload", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		req.Body = http.MaxBytesReader(w, req.Body, limit)
		data, status, code, detail := readFilePart(req, limit, int64(len(body)))
		switch {
		case status == 0 && len(data) == 0:
			t.Fatal("success without data")
		case status != 0 && (status < 400 || status > 499 || code == "" || detail == ""):
			t.Fatalf("status %d code %q detail %q", status, code, detail)
		case len(data) > limit:
			t.Fatalf("%d bytes read past the %d-byte limit", len(data), limit)
		}
	})
}
