package api

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"catsdogs/admission"
	"catsdogs/api/auth"
)

// These tests use the FAKE classifier of handlers_test.go: the HTTP layer
// of /predict without ONNX Runtime. tests/e2e covers the real thing.

func predict(t testing.TB, r http.Handler, fields ...[2]string) *httptest.ResponseRecorder {
	t.Helper()
	return postForm(t, r, "/predict", fields...)
}

func TestPredictPerImage(t *testing.T) {
	f := &fakeClassifier{res: okResult()}
	r := newTestRouter(f, &fakeAuth{})
	w := predict(t, r, [2]string{"file", "img-a"}, [2]string{"note", "ignored"}, [2]string{"file", "not an image"},
		[2]string{"file", ""}, [2]string{"file", "img-b"})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp PredictResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Count != 4 || resp.Failed != 2 || len(resp.Results) != 4 {
		t.Fatalf("count %d failed %d results %d, want 4, 2, 4: %s", resp.Count, resp.Failed, len(resp.Results), w.Body)
	}
	// The empty part never reaches the model; the others do, in order.
	if len(f.gotMany) != 3 || string(f.gotMany[0]) != "img-a" || string(f.gotMany[2]) != "img-b" {
		t.Errorf("model got %q", f.gotMany)
	}
	want := []struct {
		status int
		code   string
	}{{0, ""}, {415, codeUnsupportedImage}, {400, codeFileEmpty}, {0, ""}}
	for i, it := range resp.Results {
		if it.Index != i || it.Filename != "upload.bin" {
			t.Errorf("item %d: index %d filename %q", i, it.Index, it.Filename)
		}
		if it.Status != want[i].status || it.Error != want[i].code {
			t.Errorf("item %d: status %d error %q, want %d %q", i, it.Status, it.Error, want[i].status, want[i].code)
		}
		if want[i].code == "" && (it.PredictionResponse == nil || it.Prediction != "Dog" || len(it.Values) != 3 || math.Abs(it.TimingsMS.Total-5.6) > 1e-9) {
			t.Errorf("item %d: no prediction: %+v", i, it)
		}
		if want[i].code != "" && (it.PredictionResponse != nil || it.Detail == "") {
			t.Errorf("item %d: error item %+v", i, it)
		}
	}
	// A raw look: an error item carries no prediction fields at all.
	var raw struct{ Results []map[string]any }
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	if _, ok := raw.Results[1]["prediction"]; ok {
		t.Errorf("error item has a prediction: %v", raw.Results[1])
	}
}

func TestPredictRequestErrors(t *testing.T) {
	limits := func(d *Deps) { d.PredictMaxFiles = 3; d.PredictMaxBytes = 4096 }
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, limits)
	files := func(n, size int) [][2]string {
		var f [][2]string
		for i := 0; i < n; i++ {
			f = append(f, [2]string{"file", strings.Repeat("x", size)})
		}
		return f
	}
	for _, c := range []struct {
		name   string
		w      *httptest.ResponseRecorder
		status int
		code   string
		detail string
	}{
		{"four files", predict(t, r, files(4, 10)...), 413, codeTooManyFiles, "PREDICT_MAX_FILES"},
		{"over the byte cap", predict(t, r, files(2, 3000)...), 413, codeTooLarge, "PREDICT_MAX_BYTES"},
		// Hit inside the multipart reader, which wraps the cap's error.
		{"a large other field", predict(t, r, [2]string{"note", strings.Repeat("x", 5000)}), 413, codeTooLarge, "PREDICT_MAX_BYTES"},
		{"no file part", predict(t, r, [2]string{"other", "x"}), 400, codeFileMissing, "\"file\""},
		{"not multipart", do(r, httptest.NewRequest(http.MethodPost, "/predict", strings.NewReader("x"))), 415, codeNotMultipart, "multipart"},
	} {
		if c.w.Code != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, c.w.Code, c.status, c.w.Body)
			continue
		}
		if e := errorBody(t, c.w); e.Error != c.code || !strings.Contains(e.Detail, c.detail) {
			t.Errorf("%s: %+v, want %s naming %s", c.name, e, c.code, c.detail)
		}
	}
	if w := predict(t, r, files(3, 10)...); w.Code != 200 {
		t.Errorf("three files, at the limit: %d %s", w.Code, w.Body)
	}
}

// The request as a whole is refused when the service is full, and /predict
// needs the same token and scope as /upload.
func TestPredictBusyAndAuth(t *testing.T) {
	busy := newTestRouter(&fakeClassifier{err: admission.ErrBusy}, &fakeAuth{})
	w := predict(t, busy, [2]string{"file", "x"})
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || errorBody(t, w).Error != codeBusy {
		t.Errorf("busy: %d %s (Retry-After %q)", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	f := &fakeClassifier{res: okResult()}
	noToken := newTestRouter(f, &fakeAuth{err: auth.ErrMissingToken})
	if w := predict(t, noToken, [2]string{"file", "x"}); w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", w.Code, w.Header())
	}
	noScope := newTestRouter(f, &fakeAuth{scopes: []string{"other"}})
	if w := predict(t, noScope, [2]string{"file", "x"}); w.Code != 403 {
		t.Errorf("without the scope: %d", w.Code)
	}
	if f.calls.Load() != 0 {
		t.Error("the model ran for a refused caller")
	}
}

func TestClip(t *testing.T) {
	if got := clip(strings.Repeat("é", 200), 255); len(got) != 254 || !strings.HasPrefix(strings.Repeat("é", 200), got) {
		t.Errorf("clip cut a rune: %d bytes", len(got))
	}
	if clip("cat.jpg", 255) != "cat.jpg" {
		t.Error("clip changed a short name")
	}
}

// Images refused because the service was busy say when to send them again,
// as /upload's 503 would: retry_after on the item, Retry-After on the answer.
func TestPredictBusyItemsSayWhenToRetry(t *testing.T) {
	f := &fakeClassifier{err: admission.ErrMemoryFull} // each image: memory budget in use
	w := predict(t, newTestRouter(f, &fakeAuth{}), [2]string{"file", "img-a"}, [2]string{"file", "img-b"})
	if w.Code != http.StatusOK || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("status %d, Retry-After %q: want 200 with Retry-After 1", w.Code, w.Header().Get("Retry-After"))
	}
	var resp PredictResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	for _, it := range resp.Results {
		if it.Status != 503 || it.RetryAfter != 1 {
			t.Errorf("item %d: status %d retry_after %d, want 503 and 1", it.Index, it.Status, it.RetryAfter)
		}
	}
	ok := predict(t, newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}), [2]string{"file", "img-a"})
	if ok.Header().Get("Retry-After") != "" {
		t.Error("Retry-After on an answer with no busy image")
	}
}
