package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"catsdogs/admission"

	"github.com/gin-gonic/gin"
)

// FuzzReadFilePart: any body and Content-Type yield either the file's bytes
// or an error answered with a 4xx, a code and a detail, never a panic. Seeds live in
// testdata/fuzz/FuzzReadFilePart.
func FuzzReadFilePart(f *testing.F) {
	// A budget that holds any body under the cap.
	newTestBody := func(limit int64) *bodyBuffer {
		return &bodyBuffer{res: admission.NewBudget(2 * limit).Open(), max: limit + maxReadOver}
	}
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/upload", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		req.Body = http.MaxBytesReader(w, req.Body, limit)
		buf := newTestBody(limit)
		data, err := readFilePart(req, buf)
		if int64(cap(buf.buf)) != buf.res.Size() || buf.res.Size() > limit+maxReadOver {
			t.Fatalf("buffer of %d bytes, %d reserved: the reservation must follow it, within the cap", cap(buf.buf), buf.res.Size())
		}
		switch {
		case err == nil && len(data) == 0:
			t.Fatal("success without data")
		case len(data) > limit:
			t.Fatalf("%d bytes read past the %d-byte limit", len(data), limit)
		case err != nil:
			// The answer fail gives must be the client's: 4xx, code, detail.
			c, _ := gin.CreateTestContext(w)
			fail(c, quietLog, err)
			var e ErrorResponse
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || w.Code < 400 || w.Code > 499 || e.Error == "" || e.Detail == "" {
				t.Fatalf("%v: answered %d %s", err, w.Code, w.Body)
			}
		}
		// /predict's reader, on the same body: parts within the cap and
		// the count, or a client error.
		req = httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w = httptest.NewRecorder()
		req.Body = http.MaxBytesReader(w, req.Body, limit)
		parts, err := readFileParts(req, newTestBody(limit), 4, tooManyFiles{4}, "no file part")
		total := 0
		for _, p := range parts {
			total += len(p.data)
		}
		switch {
		case err == nil && len(parts) == 0:
			t.Fatal("/predict: success without parts")
		case len(parts) > 4 || total > limit:
			t.Fatalf("/predict: %d parts, %d bytes past the limits", len(parts), total)
		case err != nil:
			if a := describe(err); a.status < 400 || a.status > 499 || a.code == "" || a.detail == "" {
				t.Fatalf("/predict: %v: answered %+v", err, a)
			}
		}
	})
}
