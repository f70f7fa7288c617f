package api

import (
	"catsdogs/admission"
	"context"
	"net/http"
	"testing"

	"catsdogs/model"
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

// The body's bytes are reserved before it is read: with the budget full the
// upload is shed with 503 + Retry-After and never reaches the classifier.
func TestUploadReservesBodyFromMemoryBudget(t *testing.T) {
	adm := admission.New(admission.Config{MemoryBudget: 1 << 20})
	fc := &budgetClassifier{fakeClassifier: fakeClassifier{res: okResult()}, b: adm.Budget}
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.Admission = adm })

	w := upload(t, r, [2]string{"file", "some image bytes"})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// httptest requests carry their Content-Length: that is what is held,
	// not MAX_UPLOAD_BYTES, and all of it is given back afterwards.
	if fc.heldSeen <= 0 || fc.heldSeen > 1024 {
		t.Errorf("held %d bytes while classifying, want the body's length", fc.heldSeen)
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
