package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"catsdogs/api/auth"
)

// A sane incoming X-Request-Id is kept and echoed; anything else is replaced
// by a fresh 128-bit hex id, different per request.
func TestRequestIDEchoAndGeneration(t *testing.T) {
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{})
	get := func(id string) string {
		req := httptest.NewRequest(http.MethodGet, "/health", nil)
		if id != "" {
			req.Header.Set(RequestIDHeader, id)
		}
		return do(r, req).Header().Get(RequestIDHeader)
	}
	for _, id := range []string{"abc-123", "0b7c6a2e-5f0e-4f7a-9d55-1b1d7a5e2c3f", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", strings.Repeat("a", 128)} {
		if got := get(id); got != id {
			t.Errorf("sane id %q echoed as %q", id, got)
		}
	}
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for _, id := range []string{"", "has space", "<script>", "a/b", "quote\"d", "ünï", strings.Repeat("a", 129)} {
		got := get(id)
		if !generated.MatchString(got) || seen[got] {
			t.Errorf("id %q: got %q, want a fresh 32-hex id", id, got)
		}
		seen[got] = true
	}
}

// The id is in the error body and in every log line of the request: the
// request line and the ERROR line fail writes.
func TestRequestIDInErrorBodyAndLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{err: fmtErr(auth.ErrUnavailable)}, func(d *Deps) { d.Logger = log })
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/upload", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set(RequestIDHeader, "trace-42")
	w := do(r, req)
	if e := errorBody(t, w); e.RequestID != "trace-42" {
		t.Errorf("error body request_id %q, want trace-42", e.RequestID)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("want an error line and a request line, got:\n%s", buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "request_id=trace-42") {
			t.Errorf("log line without the request id: %s", l)
		}
	}
}

// The request line of an upload has the route, label, stage timings and
// bytes; a refused token's line has the bounded auth reason.
func TestRequestLogUploadAndAuthFields(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.Logger = log })
	upload(t, r, [2]string{"file", "x"})
	for _, want := range []string{"route=/upload", "status=200", "label=Dog", "queue_ms=0.1", "decode_ms=1", "preprocess_ms=0.5", "inference_ms=4", "bytes_in=", "request_id="} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("upload line lacks %q: %s", want, buf.String())
		}
	}
	if regexp.MustCompile(`bytes_out=0\b`).MatchString(buf.String()) {
		t.Errorf("bytes_out is 0 for a JSON answer: %s", buf.String())
	}
	buf.Reset()
	r = newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{scopes: []string{"other"}}, func(d *Deps) { d.Logger = log })
	upload(t, r, [2]string{"file", "x"})
	if s := buf.String(); !strings.Contains(s, "status=403") || !strings.Contains(s, "auth_reason=insufficient_scope") || strings.Contains(s, "label=") {
		t.Errorf("403 line: %s", s)
	}
}
