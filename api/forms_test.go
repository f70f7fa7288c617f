package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"catsdogs/admission"
)

func post(r http.Handler, path, ctype, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return do(r, req)
}

func enc64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// /upload takes the image as the raw body or as base64 in JSON, and the
// classifier gets the same bytes as from a multipart form.
func TestUploadRawAndJSONBodies(t *testing.T) {
	img := "\xff\xd8\xff\xe0 the image's bytes"
	for name, c := range map[string]struct{ ctype, body string }{
		"image/jpeg":         {"image/jpeg", img},
		"image/png, params":  {"image/png; charset=binary", img},
		"octet-stream":       {"application/octet-stream", img},
		"json":               {"application/json", `{"image":"` + enc64(img) + `"}`},
		"json, url-safe b64": {"application/json; charset=utf-8", `{"image":"` + base64.RawURLEncoding.EncodeToString([]byte(img)) + `"}`},
		"json, data URL":     {"application/json", `{"image":"data:image/jpeg;base64,` + enc64(img) + `"}`},
	} {
		fc := &fakeClassifier{res: okResult()}
		w := post(newTestRouter(fc, &fakeAuth{}), "/upload", c.ctype, c.body)
		if w.Code != http.StatusOK || !bytes.Equal(fc.got, []byte(img)) {
			t.Errorf("%s: %d %s; classifier got %q", name, w.Code, w.Body, fc.got)
		}
	}
}

func TestUploadBodyFormErrors(t *testing.T) {
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.MaxUploadBytes = 1000 })
	for _, c := range []struct {
		name, ctype, body string
		status            int
		code, detail      string
	}{
		{"raw, empty", "image/jpeg", "", 400, codeFileEmpty, "empty"},
		{"raw, over the cap", "image/jpeg", strings.Repeat("x", 1001), 413, codeTooLarge, "MAX_UPLOAD_BYTES"},
		{"json, over the cap", "application/json", `{"image":"` + strings.Repeat("A", 1000) + `"}`, 413, codeTooLarge, "MAX_UPLOAD_BYTES"},
		{"json, not JSON", "application/json", `{"image":`, 400, codeBadRequest, "not valid JSON"},
		{"json, no image", "application/json", `{"file":"aGk="}`, 400, codeFileMissing, `"image"`},
		{"json, null image", "application/json", `{"image":null}`, 400, codeFileMissing, `"image"`},
		{"json, image not a string", "application/json", `{"image":12}`, 400, codeBadRequest, "string of base64"},
		{"json, not base64", "application/json", `{"image":"**"}`, 400, codeBadRequest, "not base64"},
		{"json, empty image", "application/json", `{"image":""}`, 400, codeFileEmpty, "empty"},
		{"json, an array", "application/json", `["aGk="]`, 400, codeBadRequest, "cannot be a array"},
		{"text", "text/plain", "cat.jpg", 415, codeNotMultipart, `application/json {"image": "<base64>"}`},
		{"no content type", "", "x", 415, codeNotMultipart, "image/jpeg"},
	} {
		w := post(r, "/upload", c.ctype, c.body)
		if w.Code != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, w.Code, c.status, w.Body)
			continue
		}
		if e := errorBody(t, w); e.Error != c.code || !strings.Contains(e.Detail, c.detail) {
			t.Errorf("%s: %+v, want %s naming %s", c.name, e, c.code, c.detail)
		}
	}
}

// A JSON body reserves what decoding it makes, besides the body itself:
// with room for the body alone it is shed, before any decoding.
func TestUploadJSONReservesDecoding(t *testing.T) {
	adm := admission.New(admission.Config{MemoryBudget: 1 << 20})
	fc := &budgetClassifier{fakeClassifier: fakeClassifier{res: okResult()}, b: adm.Budget}
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.Admission = adm })
	body := `{"image":"` + enc64("some image bytes") + `"}`
	if w := post(r, "/upload", "application/json", body); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if want := int64(firstChunk + 2*len(body)); fc.heldSeen != want {
		t.Errorf("held %d bytes while classifying, want %d (the body's chunk and twice its length)", fc.heldSeen, want)
	}
	adm.Budget.TryAcquire(int64(1<<20 - firstChunk - len(body))) // room for the chunk, not the decoding
	w := post(r, "/upload", "application/json", body)
	if w.Code != http.StatusServiceUnavailable || errorBody(t, w).Error != codeBusy {
		t.Fatalf("budget full: %d %s", w.Code, w.Body)
	}
	if fc.calls.Load() != 1 {
		t.Errorf("classifier called %d times, want 1", fc.calls.Load())
	}
}

// /predict takes {"images": [...]}: each item is one image, and an item
// that is not base64 gets its own error like a file that is not an image.
func TestPredictJSONBody(t *testing.T) {
	fc := &fakeClassifier{res: okResult()}
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.PredictMaxFiles = 3 })
	w := post(r, "/predict", "application/json", `{"images":["`+enc64("one")+`","**","`+enc64("not an image")+`"]}`)
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got PredictResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Count != 3 || got.Failed != 2 || got.Results[0].PredictionResponse == nil ||
		got.Results[1].Error != codeBadRequest || got.Results[1].Status != 400 ||
		got.Results[2].Error != codeUnsupportedImage {
		t.Errorf("%s", w.Body)
	}
	if len(fc.gotMany) != 2 || string(fc.gotMany[0]) != "one" {
		t.Errorf("classifier got %q", fc.gotMany)
	}
	for _, c := range []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"four images", "application/json", `{"images":["aGk=","aGk=","aGk=","aGk="]}`, 413, codeTooManyFiles},
		{"no images", "application/json", `{"images":[]}`, 400, codeFileMissing},
		{"images not a list", "application/json", `{"images":"aGk="}`, 400, codeBadRequest},
		{"text", "text/plain", "x", 415, codeNotMultipart},
	} {
		w := post(r, "/predict", c.ctype, c.body)
		if w.Code != c.status || errorBody(t, w).Error != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, w.Code, w.Body, c.status, c.code)
		}
	}
	// A raw image is one image.
	fc.gotMany = nil
	if w := post(r, "/predict", "image/jpeg", "raw"); w.Code != 200 || len(fc.gotMany) != 1 || string(fc.gotMany[0]) != "raw" {
		t.Errorf("raw body: %d %s; classifier got %q", w.Code, w.Body, fc.gotMany)
	}
}
