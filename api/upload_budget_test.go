package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"catsdogs/admission"
	"catsdogs/model"
	"catsdogs/tests/poll"
)

// budgetClassifier is a FAKE classifier that records how much of the
// admission's memory budget was held while it classified.
type budgetClassifier struct {
	fakeClassifier
	b        *admission.Budget
	heldSeen int64
}

func (f *budgetClassifier) Classify(ctx context.Context, data []byte) (*model.Result, error) {
	f.heldSeen = f.b.InUse()
	return f.fakeClassifier.Classify(ctx, data)
}

// The body's memory is reserved from the budget as it is read: with the
// budget full the upload is shed with 503 + Retry-After and never reaches
// the classifier; what it held is given back after the response.
func TestUploadReservesBodyFromMemoryBudget(t *testing.T) {
	adm := admission.New(admission.Config{MemoryBudget: 1 << 20})
	fc := &budgetClassifier{fakeClassifier: fakeClassifier{res: okResult()}, b: adm.Budget}
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.Admission = adm })

	w := upload(t, r, [2]string{"file", "some image bytes"})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// A small body holds its first chunk, not MAX_UPLOAD_BYTES.
	if fc.heldSeen <= 0 || fc.heldSeen > firstChunk {
		t.Errorf("held %d bytes while classifying, want at most one %d-byte chunk", fc.heldSeen, firstChunk)
	}
	if fc.b.InUse() != 0 {
		t.Errorf("%d bytes still held after the response", fc.b.InUse())
	}

	fc.b.TryAcquire(1<<20 - 10) // other uploads hold all but 10 bytes
	w = upload(t, r, [2]string{"file", "some image bytes"})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("budget full: status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if e := errorBody(t, w); e.Error != codeBusy {
		t.Errorf("code %q, want %q", e.Error, codeBusy)
	}
	if fc.calls.Load() != 1 {
		t.Errorf("classifier called %d times, want 1 (the shed upload must not reach it)", fc.calls.Load())
	}
}

// Bodies that announce more than they send hold only what arrived: eight
// /predict requests that declare 32 MiB, send a few hundred bytes and stall
// (hardening II) leave the budget to everyone else, and an upload that does
// send 1 MiB holds about that, not MAX_UPLOAD_BYTES.
func TestStalledBodiesHoldWhatTheySent(t *testing.T) {
	adm := admission.New(admission.Config{MemoryBudget: 8 << 20})
	fc := &budgetClassifier{fakeClassifier: fakeClassifier{res: okResult()}, b: adm.Budget}
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.Admission = adm; d.PredictMaxBytes = 32 << 20 })

	var stalled []*io.PipeWriter
	done := make(chan int, 8)
	for range 8 {
		pr, pw := io.Pipe()
		stalled = append(stalled, pw)
		req := httptest.NewRequest(http.MethodPost, "/predict", pr)
		req.ContentLength = 32<<20 - 1
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		go func() { done <- do(r, req).Code }()
		if _, err := pw.Write([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n" + strings.Repeat("x", 300))); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, "the eight bodies to start", func() bool { return adm.Budget.InUse() >= 8*firstChunk })
	if held := adm.Budget.InUse(); held != 8*firstChunk {
		t.Fatalf("eight stalled bodies hold %d bytes, want one %d-byte chunk each", held, firstChunk)
	}
	big := strings.Repeat("y", 1<<20)
	if w := upload(t, r, [2]string{"file", big}); w.Code != http.StatusOK {
		t.Fatalf("an upload beside the stalled bodies: %d %s", w.Code, w.Body)
	}
	if fc.heldSeen > 2<<20+8*firstChunk {
		t.Errorf("budget in use %d while classifying a 1 MiB upload, want about 1-2 MiB plus the stalled chunks", fc.heldSeen)
	}
	for _, pw := range stalled {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	for range 8 {
		if code := <-done; code != http.StatusBadRequest {
			t.Errorf("a body cut short: %d, want 400", code)
		}
	}
	if adm.Budget.InUse() != 0 {
		t.Errorf("%d bytes still held after every request ended", adm.Budget.InUse())
	}
}

func TestUploadMemoryFullIs503(t *testing.T) {
	r := newTestRouter(&fakeClassifier{err: admission.ErrMemoryFull}, &fakeAuth{})
	w := upload(t, r, [2]string{"file", "x"})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if e := errorBody(t, w); e.Error != codeBusy {
		t.Errorf("code %q", e.Error)
	}
}

// Admission learns who each request is from, for its fairness between
// clients: the token's subject, or the address when auth is off.
func TestRequestsNameTheirClient(t *testing.T) {
	fc := &fakeClassifier{res: okResult()}
	upload(t, newTestRouter(fc, &fakeAuth{}), [2]string{"file", "x"})
	if fc.client != "sub:tester" {
		t.Errorf("/upload with a token: client %q, want sub:tester", fc.client)
	}
	r := newTestRouter(fc, nil, func(d *Deps) { d.AuthDisabled = true })
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/predict", body)
	req.Header.Set("Content-Type", ct)
	do(r, req)
	if fc.client != "ip:192.0.2.1" { // httptest's RemoteAddr
		t.Errorf("/predict without auth: client %q, want ip:192.0.2.1", fc.client)
	}
}
