package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"catsdogs/admission"
	"catsdogs/api/auth"
	"catsdogs/model"

	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	gin.DefaultErrorWriter = io.Discard // the panic test's stack trace
	os.Exit(m.Run())
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeClassifier is a FAKE model: it returns a canned result or error and
// records what it was given, so the HTTP layer is tested without ONNX Runtime.
type fakeClassifier struct {
	res   *model.Result
	err   error
	panic bool
	calls atomic.Int32
	got   []byte
	// client is the admission client name the request's context carried.
	client string
	// ClassifyMany: gotMany records its images; an image that is exactly
	// "not an image" gets ErrUnsupportedFormat, the others res (or err).
	gotMany [][]byte
	// gotTensor is what ClassifyTensor was given.
	gotTensor []float32
}

func (f *fakeClassifier) ClassifyMany(ctx context.Context, images [][]byte) ([]model.Item, error) {
	f.calls.Add(1)
	f.client = admission.ClientOf(ctx)
	f.gotMany = images
	if f.err != nil && errors.Is(f.err, admission.ErrBusy) {
		return nil, f.err
	}
	out := make([]model.Item, len(images))
	for i, data := range images {
		switch {
		case string(data) == "not an image":
			out[i].Err = model.ErrUnsupportedFormat
		case f.err != nil:
			out[i].Err = f.err
		default:
			out[i].Result = f.res
		}
	}
	return out, nil
}

// ClassifyTensor answers res for every image of oipInfo's 3×2×2 size.
func (f *fakeClassifier) ClassifyTensor(ctx context.Context, in []float32) ([]model.Item, error) {
	f.calls.Add(1)
	f.gotTensor = in
	if f.err != nil {
		return nil, f.err
	}
	out := make([]model.Item, len(in)/12)
	for i := range out {
		out[i].Result = f.res
	}
	return out, nil
}

func (f *fakeClassifier) Classify(ctx context.Context, data []byte) (*model.Result, error) {
	f.calls.Add(1)
	f.client = admission.ClientOf(ctx)
	f.got = append([]byte{}, data...)
	if f.panic {
		panic("fake classifier exploded")
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.res, nil
}

// fakeAuth is a FAKE Authenticator: it fails with err, or lets the caller in
// with scopes (default: the scope /upload requires).
type fakeAuth struct {
	err    error
	scopes []string
}

func (a *fakeAuth) Authenticate(*http.Request) (*auth.Principal, error) {
	if a.err != nil {
		return nil, a.err
	}
	if a.scopes == nil {
		return &auth.Principal{Subject: "tester", Scopes: []string{"get::prediction"}}, nil
	}
	return &auth.Principal{Subject: "tester", Scopes: a.scopes}, nil
}

var testInfo = model.Info{Name: "fake-model", Version: "3", Labels: []string{"Cat", "Dog", "Other"}}

func newTestRouter(c Classifier, a auth.Authenticator, mut ...func(*Deps)) *gin.Engine {
	d := Deps{Classifier: c, Model: testInfo, Admission: admission.New(admission.Config{MemoryBudget: 64 << 20}), Auth: a,
		Scope: "get::prediction", Logger: quietLog, MaxUploadBytes: 8 << 20, PredictMaxFiles: 16, PredictMaxBytes: 16 << 20}
	for _, f := range mut {
		f(&d)
	}
	return NewRouter(d)
}

// multipartBody builds a multipart/form-data body; fields are written in
// order, each as a file part when its name is "file".
func multipartBody(t testing.TB, fields ...[2]string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		var part io.Writer
		var err error
		if f[0] == "file" {
			part, err = w.CreateFormFile("file", "upload.bin")
		} else {
			part, err = w.CreateFormField(f[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = part.Write([]byte(f[1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, w.FormDataContentType()
}

func do(r http.Handler, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func upload(t testing.TB, r http.Handler, fields ...[2]string) *httptest.ResponseRecorder {
	t.Helper()
	return postForm(t, r, "/upload", fields...)
}

// postForm POSTs a multipart body of fields to path.
func postForm(t testing.TB, r http.Handler, path string, fields ...[2]string) *httptest.ResponseRecorder {
	t.Helper()
	body, ct := multipartBody(t, fields...)
	req := httptest.NewRequest(http.MethodPost, path, body)
	req.Header.Set("Content-Type", ct)
	return do(r, req)
}

func errorBody(t testing.TB, w *httptest.ResponseRecorder) ErrorResponse {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON; body %s", ct, w.Body)
	}
	var e ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: %v", w.Body, err)
	}
	if e.Error == "" || e.Detail == "" {
		t.Fatalf("error body %s lacks error or detail", w.Body)
	}
	return e
}

func okResult() *model.Result {
	return &model.Result{Label: "Dog", Index: 1, Probabilities: []float32{0.2, 0.7, 0.1}, Format: "jpeg", Width: 4032, Height: 3024,
		DecodedWidth: 504, DecodedHeight: 378, QueueMS: 0.1, DecodeMS: 1, PreprocessMS: 0.5, InferenceMS: 4}
}

func TestUploadSuccessBody(t *testing.T) {
	fc := &fakeClassifier{res: okResult()}
	r := newTestRouter(fc, &fakeAuth{})
	w := upload(t, r, [2]string{"note", "ignored"}, [2]string{"file", "IMAGEBYTES"})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if string(fc.got) != "IMAGEBYTES" {
		t.Errorf("classifier got %q, want the file part's bytes", fc.got)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"prediction", "values", "labels", "confidence", "scores", "model", "image", "timings_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("response lacks %q: %s", k, w.Body)
		}
	}
	var resp PredictionResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Prediction != "Dog" || resp.Confidence != 0.7 {
		t.Errorf("prediction %q confidence %v", resp.Prediction, resp.Confidence)
	}
	if !reflect.DeepEqual(resp.Values, []float32{0.2, 0.7, 0.1}) || !reflect.DeepEqual(resp.Labels, []string{"Cat", "Dog", "Other"}) {
		t.Errorf("values %v labels %v: values must stay in label order", resp.Values, resp.Labels)
	}
	wantScores := []Score{{"Dog", 0.7}, {"Cat", 0.2}, {"Other", 0.1}}
	if !reflect.DeepEqual(resp.Scores, wantScores) {
		t.Errorf("scores %v, want %v (descending)", resp.Scores, wantScores)
	}
	if resp.Model != (ModelRef{"fake-model", "3"}) || resp.Image != (ImageInfo{"jpeg", 4032, 3024, 504, 378}) {
		t.Errorf("model %+v image %+v", resp.Model, resp.Image)
	}
	if resp.TimingsMS.Inference != 4 || resp.TimingsMS.Total < 0 {
		t.Errorf("timings %+v", resp.TimingsMS)
	}
}

func TestUploadRequestErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"json body without image", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader(`{"file":"x"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 400, "file_missing"},
		{"text body", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("cat.jpg"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 415, "unsupported_media_type"},
		{"no content type", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("raw bytes"))
		}, 415, "unsupported_media_type"},
		{"multipart without boundary", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("x"))
			r.Header.Set("Content-Type", "multipart/form-data")
			return r
		}, 400, "bad_request"},
		{"garbage multipart", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("no boundary anywhere"))
			r.Header.Set("Content-Type", "multipart/form-data; boundary=XYZ")
			return r
		}, 400, "bad_request"},
		{"file missing", func() *http.Request {
			body, ct := multipartBody(t, [2]string{"image", "bytes"})
			r := httptest.NewRequest(http.MethodPost, "/upload", body)
			r.Header.Set("Content-Type", ct)
			return r
		}, 400, "file_missing"},
		{"no parts at all", func() *http.Request {
			body, ct := multipartBody(t)
			r := httptest.NewRequest(http.MethodPost, "/upload", body)
			r.Header.Set("Content-Type", ct)
			return r
		}, 400, "file_missing"},
		{"file empty", func() *http.Request {
			body, ct := multipartBody(t, [2]string{"file", ""})
			r := httptest.NewRequest(http.MethodPost, "/upload", body)
			r.Header.Set("Content-Type", ct)
			return r
		}, 400, "file_empty"},
		{"two file parts", func() *http.Request {
			body, ct := multipartBody(t, [2]string{"file", "first"}, [2]string{"note", "x"}, [2]string{"file", "second"})
			r := httptest.NewRequest(http.MethodPost, "/upload", body)
			r.Header.Set("Content-Type", ct)
			return r
		}, 400, "multiple_files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fc := &fakeClassifier{res: okResult()}
			w := do(newTestRouter(fc, &fakeAuth{}), c.req())
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if e := errorBody(t, w); e.Error != c.code {
				t.Errorf("code %q, want %q (%s)", e.Error, c.code, e.Detail)
			}
			if fc.calls.Load() != 0 {
				t.Error("the classifier ran on a bad request")
			}
		})
	}
}

func TestUploadTooLarge(t *testing.T) {
	fc := &fakeClassifier{res: okResult()}
	r := newTestRouter(fc, &fakeAuth{}, func(d *Deps) { d.MaxUploadBytes = 1024 })
	w := upload(t, r, [2]string{"file", strings.Repeat("x", 4096)})
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if e := errorBody(t, w); e.Error != "payload_too_large" || !strings.Contains(e.Detail, "1024") {
		t.Errorf("%+v", e)
	}
	// The cap is hit while reading a part header (before any file bytes).
	w = upload(t, r, [2]string{strings.Repeat("n", 2000), "v"}, [2]string{"file", "x"})
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("cap inside headers: status %d: %s", w.Code, w.Body)
	}
	// Just under the cap passes.
	w = upload(t, r, [2]string{"file", strings.Repeat("x", 512)})
	if w.Code != http.StatusOK {
		t.Errorf("under the cap: status %d: %s", w.Code, w.Body)
	}
	if fc.calls.Load() != 1 {
		t.Errorf("classifier ran %d times, want once", fc.calls.Load())
	}
}

func TestUploadModelErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{fmt.Errorf("%w: looks like text", model.ErrUnsupportedFormat), 415, "unsupported_image", ""},
		{fmt.Errorf("%w: unexpected EOF", model.ErrCorruptImage), 422, "corrupt_image", ""},
		{fmt.Errorf("%w: 20000x20000", model.ErrImageTooLarge), 413, "image_too_large", ""},
		{admission.ErrBusy, 503, "busy", "1"},
		{context.Canceled, 503, "busy", ""},
		{context.DeadlineExceeded, 503, "busy", ""},
		{errors.New("onnxruntime: secret internal path /opt/x"), 500, "internal_error", ""},
	} {
		w := upload(t, newTestRouter(&fakeClassifier{err: c.err}, &fakeAuth{}), [2]string{"file", "x"})
		if w.Code != c.status {
			t.Errorf("%v: status %d, want %d", c.err, w.Code, c.status)
			continue
		}
		e := errorBody(t, w)
		if e.Error != c.code {
			t.Errorf("%v: code %q, want %q", c.err, e.Error, c.code)
		}
		if got := w.Header().Get("Retry-After"); got != c.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", c.err, got, c.retryAfter)
		}
		if c.status == 500 && strings.Contains(w.Body.String(), "secret") {
			t.Errorf("internal error text leaked to the client: %s", w.Body)
		}
		if c.status < 500 && !strings.Contains(e.Detail, strings.SplitN(c.err.Error(), ":", 2)[0]) {
			t.Errorf("%v: detail %q should explain the problem", c.err, e.Detail)
		}
	}
}

func TestPanicBecomesJSON500(t *testing.T) {
	w := upload(t, newTestRouter(&fakeClassifier{panic: true}, &fakeAuth{}), [2]string{"file", "x"})
	if w.Code != 500 || errorBody(t, w).Error != "internal_error" {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
}

func TestAuthErrorMapping(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        error
		status     int
		code       string
		wwwAuth    []string
		retryAfter string
	}{
		{"missing token", auth.ErrMissingToken, 401, "invalid_token", []string{`Bearer realm="catsdogs"`}, ""}, // no error code: RFC 6750 §3.1
		{"invalid token", fmt.Errorf("%w: token expired at 2020-01-01T00:00:00Z", auth.ErrInvalidToken), 401, "invalid_token",
			[]string{`error="invalid_token"`, `error_description="invalid token: token expired at 2020-01-01T00:00:00Z"`}, ""},
		{"unknown error", errors.New("something internal: 10.0.0.7"), 401, "invalid_token",
			[]string{`error="invalid_token"`, `error_description="token could not be verified"`}, ""},
		{"duplicate header", fmt.Errorf("%w: send exactly one Authorization header", auth.ErrInvalidRequest), 401, "invalid_request",
			[]string{`error="invalid_request"`, `error_description="invalid request: send exactly one Authorization header"`}, ""},
		{"idp down", fmt.Errorf("%w: fetching JWKS", auth.ErrUnavailable), 503, "auth_unavailable", nil, "5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fc := &fakeClassifier{res: okResult()}
			fa := &fakeAuth{err: c.err}
			w := upload(t, newTestRouter(fc, fa), [2]string{"file", "x"})
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			e := errorBody(t, w)
			if e.Error != c.code {
				t.Errorf("code %q, want %q", e.Error, c.code)
			}
			h := w.Header().Get("WWW-Authenticate")
			for _, want := range c.wwwAuth {
				if !strings.Contains(h, want) {
					t.Errorf("WWW-Authenticate %q lacks %q", h, want)
				}
			}
			if c.wwwAuth == nil && h != "" {
				t.Errorf("unexpected WWW-Authenticate %q", h)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if strings.Contains(w.Body.String(), "10.0.0.7") || strings.Contains(h, "10.0.0.7") {
				t.Error("an unclassified error's text reached the client")
			}
			if fc.calls.Load() != 0 {
				t.Error("the classifier ran for an unauthenticated request")
			}
		})
	}
}

// Authorisation is its own step: a caller authenticated without the
// configured scope gets 403 naming that scope, and the classifier never runs.
func TestScopeRequired(t *testing.T) {
	for _, scope := range []string{"get::prediction", `read:"odd"`} {
		fc := &fakeClassifier{res: okResult()}
		w := upload(t, newTestRouter(fc, &fakeAuth{scopes: []string{"openid", "get::predictions"}}, func(d *Deps) { d.Scope = scope }), [2]string{"file", "x"})
		if w.Code != 403 || errorBody(t, w).Error != "insufficient_scope" {
			t.Fatalf("scope %q: %d %s, want 403 insufficient_scope", scope, w.Code, w.Body)
		}
		want := fmt.Sprintf(`Bearer realm="catsdogs", error="insufficient_scope", scope=%q`, scope)
		if h := w.Header().Get("WWW-Authenticate"); h != want {
			t.Errorf("WWW-Authenticate %q, want %q", h, want)
		}
		if fc.calls.Load() != 0 {
			t.Error("the classifier ran without the scope")
		}
	}
	// With auth disabled there is neither step.
	w := upload(t, newTestRouter(&fakeClassifier{res: okResult()}, nil, func(d *Deps) { d.AuthDisabled = true }), [2]string{"file", "x"})
	if w.Code != 200 {
		t.Errorf("auth disabled: %d %s", w.Code, w.Body)
	}
}

// Only /upload is protected.
func TestPublicRoutesNeedNoAuth(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{err: auth.ErrMissingToken})
	for _, p := range []string{"/health", "/ready", "/model"} {
		if w := do(r, httptest.NewRequest(http.MethodGet, p, nil)); w.Code != 200 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
}

func TestHealth(t *testing.T) {
	w := do(newTestRouter(&fakeClassifier{}, &fakeAuth{}), httptest.NewRequest(http.MethodGet, "/health", nil))
	if w.Code != 200 || w.Body.String() != `{"status":"OK"}` {
		t.Fatalf("auth on: %d %s, want exactly {\"status\":\"OK\"}", w.Code, w.Body)
	}
	w = do(newTestRouter(&fakeClassifier{}, &fakeAuth{}, func(d *Deps) { d.AuthDisabled = true }), httptest.NewRequest(http.MethodGet, "/health", nil))
	var h HealthResponse
	if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil || w.Code != 200 {
		t.Fatalf("%d %s %v", w.Code, w.Body, err)
	}
	if h.Status != "OK" || len(h.Warnings) == 0 || !strings.Contains(h.Warnings[0], "DISABLED") {
		t.Errorf("auth off: %+v, want status OK and a loud warning", h)
	}
}

func TestReadyAndModel(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{})
	w := do(r, httptest.NewRequest(http.MethodGet, "/ready", nil))
	var rr ReadyResponse
	if err := json.Unmarshal(w.Body.Bytes(), &rr); err != nil || rr.Status != "ready" || rr.Model.Name != "fake-model" {
		t.Errorf("/ready: %s %v", w.Body, err)
	}
	w = do(r, httptest.NewRequest(http.MethodGet, "/model", nil))
	var info model.Info
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil || info.Version != "3" || len(info.Labels) != 3 {
		t.Errorf("/model: %s %v", w.Body, err)
	}
}

// /ready follows Deps.Ready: 503 with its reason while the server drains.
func TestReadyWhileDraining(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{}, func(d *Deps) {
		d.Ready = func() error { return errors.New("shutting down") }
	})
	w := do(r, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if e := errorBody(t, w); w.Code != http.StatusServiceUnavailable || e.Error != "not_ready" || e.Detail != "shutting down" {
		t.Errorf("/ready while draining: %d %s", w.Code, w.Body)
	}
	if w := do(r, httptest.NewRequest(http.MethodGet, "/health", nil)); w.Code != 200 {
		t.Errorf("/health while draining: %d", w.Code)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{})
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"POST", "/classify", 404, "not_found"},
		{"GET", "/upload", 405, "method_not_allowed"},
		{"PUT", "/upload", 405, "method_not_allowed"},
		{"POST", "/health", 405, "method_not_allowed"},
		{"DELETE", "/model", 405, "method_not_allowed"},
	} {
		w := do(r, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
			continue
		}
		if e := errorBody(t, w); e.Error != c.code {
			t.Errorf("%s %s: code %q", c.method, c.path, e.Error)
		}
		if c.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without an Allow header", c.method, c.path)
		}
	}
}

func TestDocsRedirects(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{})
	for _, p := range []string{"/docs", "/docs/"} {
		w := do(r, httptest.NewRequest(http.MethodGet, p, nil))
		if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/docs/index.html" {
			t.Errorf("GET %s: %d Location %q, want 301 to /docs/index.html", p, w.Code, w.Header().Get("Location"))
		}
	}
	w := do(r, httptest.NewRequest(http.MethodGet, "/docs/index.html", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "swagger") {
		t.Errorf("GET /docs/index.html: %d", w.Code)
	}
}

// Timings are whole microseconds in the JSON: a sum of float milliseconds
// must not print as 0.30000000000000004.
func TestTimingsHaveNoFloatNoise(t *testing.T) {
	res := okResult()
	res.QueueMS = 0.1 + 0.2 // 0.30000000000000004 in float64
	res.DecodeMS, res.PreprocessMS, res.InferenceMS = 0.1, 0.2, 0.3
	r := newTestRouter(&fakeClassifier{res: res}, &fakeAuth{})
	if out := upload(t, r, [2]string{"file", "x"}).Body.String(); !strings.Contains(out, `"queue":0.3,`) {
		t.Errorf("queue not rounded to the microsecond: %s", out)
	}
	body, ct := multipartBody(t, [2]string{"file", "x"})
	req := httptest.NewRequest(http.MethodPost, "/predict", body)
	req.Header.Set("Content-Type", ct)
	out := do(r, req).Body.String()
	if !strings.Contains(out, `"total":0.9}`) { // 0.30000000000000004 + 0.1 + 0.2 + 0.3
		t.Errorf("/predict item total not rounded: %s", out)
	}
}

// Issue 22: a trailing-slash redirect passes through the middleware like any
// answer: request id and security headers, a 301 for GET and a 308 for POST.
func TestTrailingSlashRedirects(t *testing.T) {
	r := newTestRouter(&fakeClassifier{}, &fakeAuth{})
	for _, c := range []struct{ method, path, to string }{
		{http.MethodGet, "/health/", "/health"},
		{http.MethodGet, "/version/?x=1", "/version?x=1"},
		{http.MethodPost, "/upload/", "/upload"},
	} {
		w := do(r, httptest.NewRequest(c.method, c.path, nil))
		want := http.StatusMovedPermanently
		if c.method == http.MethodPost {
			want = http.StatusPermanentRedirect
		}
		if w.Code != want || w.Header().Get("Location") != c.to {
			t.Errorf("%s %s: %d to %q, want %d to %q", c.method, c.path, w.Code, w.Header().Get("Location"), want, c.to)
		}
		if w.Header().Get(RequestIDHeader) == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: redirect without request id or security headers: %v", c.method, c.path, w.Header())
		}
	}
	// Only registered routes redirect: never off-site, never to a 404.
	for _, p := range []string{"//evil.example/", "/nope/", "/static/"} {
		if w := do(r, httptest.NewRequest(http.MethodGet, p, nil)); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d %v, want 404", p, w.Code, w.Header())
		}
	}
}

// Issue 22: /ready tells anyone only what is not ready; the cause (the
// IdP's address, a dial error) goes to the log.
func TestReadyHidesCauses(t *testing.T) {
	var logs bytes.Buffer
	cause := errors.New("Get \"http://10.1.2.3:8443/.well-known/openid-configuration\": dial tcp 10.1.2.3:8443: connect: connection refused")
	ready := func() error {
		return errors.Join(errors.New("the model is loading and warming up"), &NotReady{Reason: "no signing keys yet", Err: cause})
	}
	for name, r := range map[string]http.Handler{
		"router":   newTestRouter(&fakeClassifier{}, &fakeAuth{}, func(d *Deps) { d.Ready = ready; d.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }),
		"starting": Starting(Deps{Ready: ready, Metrics: NewMetrics(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}),
	} {
		logs.Reset()
		w := do(r, httptest.NewRequest(http.MethodGet, "/ready", nil))
		if e := errorBody(t, w); w.Code != 503 || e.Detail != "the model is loading and warming up; no signing keys yet" {
			t.Errorf("%s: /ready %d %q", name, w.Code, e.Detail)
		}
		if strings.Contains(w.Body.String(), "10.1.2.3") || strings.Contains(w.Body.String(), "dial") {
			t.Errorf("%s: /ready shows the cause: %s", name, w.Body)
		}
		if !strings.Contains(logs.String(), "connection refused") {
			t.Errorf("%s: the cause is not in the log:\n%s", name, logs.String())
		}
		// The Open Inference Protocol's readiness says as much, and no more.
		w = do(r, httptest.NewRequest(http.MethodGet, "/v2/health/ready", nil))
		if w.Code != 503 || !strings.Contains(w.Body.String(), "no signing keys yet") || strings.Contains(w.Body.String(), "10.1.2.3") {
			t.Errorf("%s: /v2/health/ready %d %s", name, w.Code, w.Body)
		}
	}
}
