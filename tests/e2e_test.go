//go:build linux

// End-to-end tests: build the real binary, run it as a subprocess against a
// real OIDC issuer on loopback, and talk to it over HTTP only.
//
//	CATSDOGS_TEST_MODEL  model to serve (default resources/catsdogs-resnet.onnx,
//	                     relative to the repo root). When set, the model is
//	                     assumed untrained and prediction accuracy is not checked.
//	-short               skips the key-rotation test, which waits out the
//	                     service's 30 s JWKS refetch limit.
package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"catsdogs/tests/issuer"
	"catsdogs/tests/pets"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

const (
	audience  = issuer.DefaultAudience
	scope     = "get::prediction"
	maxUpload = 2 << 20 // MAX_UPLOAD_BYTES of the main instance
	// staticIssuer is the issuer of the JWKS-URI instance. ".invalid" never
	// resolves, so any attempt at OIDC discovery would fail with 503.
	staticIssuer = "https://issuer.invalid/"
	readyTimeout = 30 * time.Second
)

var (
	root       string // repository root
	modelPath  string
	smokeModel bool // CATSDOGS_TEST_MODEL is set: untrained model, skip accuracy
	binPath    string
	tmpDir     string

	iss      *issuer.Issuer
	mainSrv  *server // OIDC discovery, MAX_UPLOAD_BYTES=2 MiB
	jwksSrv  *server // OAUTH2_JWKS_URI, issuer unreachable, two audiences
	openSrv  *server // AUTH_DISABLED=true
	downSrv  *server // issuer unreachable
	client   = &http.Client{Timeout: 30 * time.Second}
	noFollow = &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	started := time.Now()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", a...)
		return 1
	}
	var err error
	if root, err = filepath.Abs(".."); err != nil {
		return fail("%v", err)
	}
	modelPath = filepath.Join(root, "resources", "catsdogs-resnet.onnx")
	if p := os.Getenv("CATSDOGS_TEST_MODEL"); p != "" {
		smokeModel = true
		modelPath = p
		if !filepath.IsAbs(p) {
			modelPath = filepath.Join(root, p)
		}
	}
	if _, err := os.Stat(modelPath); err != nil {
		return fail("model: %v (set CATSDOGS_TEST_MODEL to an exported .onnx)", err)
	}
	if tmpDir, err = os.MkdirTemp("", "catsdogs-e2e-"); err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmpDir)

	binPath = filepath.Join(tmpDir, "catsdogs")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fail("go build: %v\n%s", err, out)
	}
	buildTime := time.Since(started)

	if iss, err = issuer.Start(); err != nil {
		return fail("issuer: %v", err)
	}
	defer iss.Close()

	// The three instances load their models in parallel.
	mainSrv, err = launch("main", map[string]string{
		"OAUTH2_ISSUER": iss.URL, "OAUTH2_AUDIENCE": audience, "MAX_UPLOAD_BYTES": strconv.Itoa(maxUpload),
		"OAUTH2_JWKS_MIN_REFRESH": jwksMinRefresh.String(),
	})
	if err != nil {
		return fail("%v", err)
	}
	defer mainSrv.stop()
	jwksSrv, err = launch("jwks-uri", map[string]string{
		"OAUTH2_ISSUER": staticIssuer, "OAUTH2_AUDIENCE": "other-api, " + audience,
		"OAUTH2_JWKS_URI": iss.JWKSURL, "INFERENCE_WORKERS": "1",
	})
	if err != nil {
		return fail("%v", err)
	}
	defer jwksSrv.stop()
	openSrv, err = launch("auth-disabled", map[string]string{"AUTH_DISABLED": "true", "INFERENCE_WORKERS": "1"})
	if err != nil {
		return fail("%v", err)
	}
	defer openSrv.stop()
	downSrv, err = launch("idp-down", map[string]string{
		"OAUTH2_ISSUER": "http://" + closedAddr(), "OAUTH2_AUDIENCE": audience, "INFERENCE_WORKERS": "1",
	})
	if err != nil {
		return fail("%v", err)
	}
	defer downSrv.stop()
	servers := []*server{mainSrv, jwksSrv, openSrv, downSrv}
	for _, s := range servers {
		if err := s.waitReady(readyTimeout); err != nil {
			return fail("%v\n--- %s log ---\n%s", err, s.name, s.logs.String())
		}
	}
	// Make the main instance fetch its keys now, so later tests see a warm
	// key cache (and a partly spent refetch budget, as in production).
	if st := probeAuth(mainSrv, "Bearer "+iss.Token(nil)); st != http.StatusUnsupportedMediaType {
		fmt.Fprintf(os.Stderr, "e2e setup: priming keys: got status %d, want 415\n", st)
	}
	fmt.Fprintf(os.Stderr, "e2e setup: build %s, servers ready after %s, model %s\n",
		buildTime.Round(time.Millisecond), time.Since(started).Round(time.Millisecond), modelPath)

	code := m.Run()
	if code != 0 {
		for _, s := range servers {
			fmt.Fprintf(os.Stderr, "\n--- %s server log ---\n%s", s.name, s.logs.String())
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: total %s\n", time.Since(started).Round(time.Millisecond))
	return code
}

// ---------------------------------------------------------------------------
// Service basics and docs

func TestHealth(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	wantJSONType(t, resp)
	var h struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	mustJSON(t, body, &h)
	if h.Status != "OK" {
		t.Errorf(`status = %q, want "OK"`, h.Status)
	}
	if len(h.Warnings) != 0 {
		t.Errorf("warnings on an authenticated instance: %v", h.Warnings)
	}
}

func TestReady(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/ready", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var r struct {
		Status string `json:"status"`
		Model  struct {
			Name   string   `json:"name"`
			Labels []string `json:"labels"`
		} `json:"model"`
	}
	mustJSON(t, body, &r)
	if r.Status != "ready" {
		t.Errorf("status = %q, want ready", r.Status)
	}
	if want := []string{"Cat", "Dog", "Other"}; !slices.Equal(r.Model.Labels, want) {
		t.Errorf("labels = %v, want %v", r.Model.Labels, want)
	}
	if r.Model.Name == "" {
		t.Error("model name is empty")
	}
}

func TestModelInfo(t *testing.T) {
	resp, body := do(t, mainSrv, "GET", "/model", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var info map[string]any
	mustJSON(t, body, &info)
	if file, _ := info["file"].(string); file == "" || strings.Contains(file, "/") {
		t.Errorf("file = %q, want the model's base name (no server paths on a public route)", file)
	}
	if _, ok := info["onnxruntime_library"]; ok {
		t.Error("/model publishes the ONNX Runtime library path")
	}
	if bytes.Contains(body, []byte(root)) {
		t.Errorf("/model leaks a server path: %s", body)
	}
}

func TestDocs(t *testing.T) {
	for _, path := range []string{"/docs", "/docs/"} {
		resp, err := noFollow.Get(mainSrv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/docs/index.html" {
			t.Errorf("GET %s = %d Location %q, want a redirect to /docs/index.html", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	resp, body := do(t, mainSrv, "GET", "/docs/index.html", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("index.html Content-Type = %q", ct)
	}
	if !bytes.Contains(bytes.ToLower(body), []byte("swagger")) {
		t.Error("index.html does not look like Swagger UI")
	}

	resp, body = do(t, mainSrv, "GET", "/docs/doc.json", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var spec struct {
		SecurityDefinitions map[string]struct {
			Type string `json:"type"`
			In   string `json:"in"`
			Name string `json:"name"`
		} `json:"securityDefinitions"`
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Type     string `json:"type"`
				Required bool   `json:"required"`
			} `json:"parameters"`
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	mustJSON(t, body, &spec)
	bearer, ok := spec.SecurityDefinitions["BearerAuth"]
	if !ok {
		t.Fatalf("securityDefinitions has no BearerAuth: %v", spec.SecurityDefinitions)
	}
	if bearer.In != "header" || bearer.Name != "Authorization" {
		t.Errorf("BearerAuth = %+v, want an Authorization header", bearer)
	}
	post, ok := spec.Paths["/upload"]["post"]
	if !ok {
		t.Fatal(`no "post" operation on "/upload" in doc.json`)
	}
	if !slices.ContainsFunc(post.Parameters, func(p struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Type     string `json:"type"`
		Required bool   `json:"required"`
	}) bool {
		return p.Name == "file" && p.In == "formData" && p.Type == "file" && p.Required
	}) {
		t.Errorf(`/upload has no required formData "file" parameter of type file: %+v`, post.Parameters)
	}
	if !slices.ContainsFunc(post.Security, func(s map[string][]string) bool { _, ok := s["BearerAuth"]; return ok }) {
		t.Errorf("/upload is not marked with BearerAuth security: %v", post.Security)
	}
}

// ---------------------------------------------------------------------------
// Authentication and authorisation

func TestUploadWithoutToken(t *testing.T) {
	resp, body := upload(t, mainSrv, "", "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	wantChallenge(t, resp, `realm="catsdogs"`)
	if h := resp.Header.Get("WWW-Authenticate"); strings.Contains(h, "error=") {
		t.Errorf("WWW-Authenticate = %q: no credentials were sent, so no error code (RFC 6750 §3.1)", h)
	}
}

func TestRejectedTokens(t *testing.T) {
	img := photo(t, "cat", 0)
	past := time.Now().Add(-10 * time.Minute)
	cases := []struct {
		name, header string
	}{
		{"expired", "Bearer " + iss.Token(map[string]any{"exp": past.Unix(), "iat": past.Add(-time.Hour).Unix()})},
		{"not yet valid", "Bearer " + iss.Token(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})},
		{"no exp", "Bearer " + iss.Token(map[string]any{"exp": nil})},
		{"wrong audience", "Bearer " + iss.Token(map[string]any{"aud": "someone-else"})},
		{"wrong audience array", "Bearer " + iss.Token(map[string]any{"aud": []string{"a", "b"}})},
		{"no audience", "Bearer " + iss.Token(map[string]any{"aud": nil})},
		{"wrong issuer", "Bearer " + iss.Token(map[string]any{"iss": "https://evil.example/"})},
		{"issuer with trailing slash", "Bearer " + iss.Token(map[string]any{"iss": iss.URL + "/"})},
		{"unpublished key", "Bearer " + iss.TokenUnpublishedKey(nil)},
		{"HS256", "Bearer " + iss.TokenHS256(nil, []byte("0123456789abcdef0123456789abcdef"))},
		{"alg none", "Bearer " + unsigned(iss.Token(nil))},
		{"tampered payload", "Bearer " + tamper(iss.Token(map[string]any{"scope": "read::other"}))},
		{"garbage", "Bearer not-a-jwt"},
		{"garbage with dots", "Bearer aaa.bbb.ccc"},
		{"empty bearer", "Bearer "},
		{"basic", "Basic xyz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, c.header, "cat.jpg", img)
			wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
			wantChallenge(t, resp, `error="invalid_token"`)
		})
	}
}

func TestInsufficientScope(t *testing.T) {
	for name, claims := range map[string]map[string]any{
		"other scope":          {"scope": "read::other"},
		"scope prefix":         {"scope": "get::prediction:all get::"},
		"case differs":         {"scope": "GET::PREDICTION"},
		"no scope claim":       {"scope": nil},
		"permissions other":    {"scope": nil, "permissions": []string{"read::other"}},
		"scope empty string":   {"scope": ""},
		"scp array without it": {"scope": nil, "scp": []string{"openid", "profile"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, "Bearer "+iss.Token(claims), "cat.jpg", photo(t, "cat", 0))
			wantError(t, resp, body, http.StatusForbidden, "insufficient_scope")
			wantChallenge(t, resp, `error="insufficient_scope"`, `scope="get::prediction"`)
		})
	}
}

func TestAcceptedTokens(t *testing.T) {
	img := photo(t, "dog", 0)
	cases := []struct {
		name, header string
	}{
		{"scope among others", "Bearer " + iss.Token(map[string]any{"scope": "openid profile get::prediction offline_access"})},
		{"scp array", "Bearer " + iss.Token(map[string]any{"scope": nil, "scp": []string{"openid", scope}})},
		{"scp string", "Bearer " + iss.Token(map[string]any{"scope": nil, "scp": "openid " + scope})},
		{"permissions array", "Bearer " + iss.Token(map[string]any{"scope": "openid", "permissions": []string{"read::other", scope}})},
		{"aud array", "Bearer " + iss.Token(map[string]any{"aud": []string{"https://idp.example/userinfo", audience}})},
		{"ES256", "Bearer " + iss.TokenES256(nil)},
		{"bare token", iss.Token(nil)},
		{"lowercase scheme", "bearer " + iss.Token(nil)},
		{"expired within leeway", "Bearer " + iss.Token(map[string]any{"exp": time.Now().Add(-5 * time.Second).Unix()})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := upload(t, mainSrv, c.header, "dog.jpg", img)
			wantPrediction(t, resp, body)
		})
	}
}

// TestJWKSURIWithoutDiscovery uses the instance configured with
// OAUTH2_JWKS_URI and an issuer that does not resolve: a 200 proves the keys
// came from the JWKS URI and discovery was never needed.
func TestJWKSURIWithoutDiscovery(t *testing.T) {
	img := photo(t, "other", 0)
	resp, body := upload(t, jwksSrv, "Bearer "+iss.Token(map[string]any{"iss": staticIssuer}), "x.jpg", img)
	wantPrediction(t, resp, body)

	// OAUTH2_AUDIENCE is a list: any entry is accepted.
	resp, body = upload(t, jwksSrv, "Bearer "+iss.Token(map[string]any{"iss": staticIssuer, "aud": "other-api"}), "x.jpg", img)
	wantPrediction(t, resp, body)

	// The issuer must still match exactly (trailing slash included).
	for _, bad := range []string{iss.URL, strings.TrimSuffix(staticIssuer, "/")} {
		resp, body = upload(t, jwksSrv, "Bearer "+iss.Token(map[string]any{"iss": bad}), "x.jpg", img)
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	}
}

// TestIdentityProviderDown: when the issuer cannot be reached the service
// answers 503 with Retry-After (its problem, not the caller's) and never
// lets the request through.
func TestIdentityProviderDown(t *testing.T) {
	resp, body := upload(t, downSrv, "Bearer "+iss.Token(nil), "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusServiceUnavailable, "auth_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// No token at all is still the caller's problem.
	resp, body = upload(t, downSrv, "", "cat.jpg", photo(t, "cat", 0))
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_token")
	// Readiness does not depend on the identity provider.
	resp, body = do(t, downSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
}

// ---------------------------------------------------------------------------
// Predictions on real photos

func TestRealPhotos(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	var wrong []string
	for _, class := range []string{"cat", "dog", "other"} {
		want := strings.ToUpper(class[:1]) + class[1:]
		for i, path := range testPhotos(t, class, 3) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s/%d", class, i)
			t.Run(name, func(t *testing.T) {
				resp, body := upload(t, mainSrv, tok, filepath.Base(path), data)
				p := wantPrediction(t, resp, body)
				if p.Image.Format != "jpeg" {
					t.Errorf("image.format = %q, want jpeg", p.Image.Format)
				}
				if p.Prediction != want {
					wrong = append(wrong, fmt.Sprintf("%s: %s (%.3f), want %s", rel(path), p.Prediction, p.Confidence, want))
				}
			})
		}
	}
	switch {
	case len(wrong) == 0:
	case smokeModel:
		t.Logf("CATSDOGS_TEST_MODEL is set (untrained model?): not checking accuracy; %d/9 misclassified:\n%s",
			len(wrong), strings.Join(wrong, "\n"))
	default:
		t.Errorf("default model misclassified %d/9 test photos:\n%s", len(wrong), strings.Join(wrong, "\n"))
	}
}

// TestParityOverHTTP uploads the images named in the model's parity file
// (written by the training pipeline next to the .onnx) and checks the served
// probabilities against the ones PyTorch computed: the whole serving path
// (multipart, decode, preprocess, ONNX Runtime, softmax, JSON) must agree
// with training, whatever the model's accuracy.
func TestParityOverHTTP(t *testing.T) {
	var pf struct {
		Atol   float64 `json:"atol"`
		Images []struct {
			File          string    `json:"file"`
			Probabilities []float64 `json:"probabilities"`
		} `json:"images"`
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(modelPath), "parity.json"))
	if err != nil {
		t.Fatalf("parity file next to the model: %v", err)
	}
	mustJSON(t, b, &pf)
	if len(pf.Images) == 0 {
		t.Fatal("parity file lists no images")
	}
	tok := "Bearer " + iss.Token(nil)
	checked := 0
	for _, im := range pf.Images {
		path, ok, err := pets.Find(root, im.File)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Logf("%s: only in the dataset, which is absent; not checked", im.File)
			continue
		}
		checked++
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := upload(t, mainSrv, tok, filepath.Base(im.File), data)
		p := wantPrediction(t, resp, body)
		if len(p.Values) != len(im.Probabilities) {
			t.Fatalf("%s: %d values, parity file has %d", im.File, len(p.Values), len(im.Probabilities))
		}
		for i, want := range im.Probabilities {
			if math.Abs(p.Values[i]-want) > pf.Atol {
				t.Errorf("%s: values[%d] = %.6f, PyTorch %.6f (atol %g)", im.File, i, p.Values[i], want, pf.Atol)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("none of the %d parity images is in the fixtures and the dataset is absent", len(pf.Images))
	}
}

// ---------------------------------------------------------------------------
// Client errors must be 4xx with a JSON body, never 5xx, and leave the
// server healthy.

func TestUploadErrors(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	jpg := photo(t, "cat", 0)

	t.Run("file field missing", func(t *testing.T) {
		body, ct := multipartBody(formPart{field: "other", data: []byte("hello")})
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, body, ct)
		wantError(t, resp, rb, http.StatusBadRequest, "file_missing")
	})
	t.Run("no parts at all", func(t *testing.T) {
		body, ct := multipartBody()
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, body, ct)
		wantError(t, resp, rb, http.StatusBadRequest, "file_missing")
	})
	t.Run("empty file", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "empty.jpg", nil)
		wantError(t, resp, rb, http.StatusBadRequest, "file_empty")
	})
	t.Run("malformed multipart", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte("this is not multipart"), "multipart/form-data; boundary=xyz")
		wantError(t, resp, rb, http.StatusBadRequest, "bad_request")
	})
	t.Run("multipart without boundary", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte("x"), "multipart/form-data")
		wantError(t, resp, rb, http.StatusBadRequest, "bad_request")
	})
	t.Run("json body", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, []byte(`{"file":"aGVsbG8="}`), "application/json")
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
	t.Run("raw jpeg body", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/upload", tok, jpg, "image/jpeg")
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
	t.Run("text file", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "notes.txt", []byte("these are notes, not an image\n"))
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_image")
	})
	t.Run("text file named jpg", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "cat.jpg", []byte("<html>not a cat</html>"))
		wantError(t, resp, rb, http.StatusUnsupportedMediaType, "unsupported_image")
	})
	t.Run("truncated jpeg", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "half.jpg", jpg[:len(jpg)/2])
		wantError(t, resp, rb, http.StatusUnprocessableEntity, "corrupt_image")
	})
	t.Run("truncated png", func(t *testing.T) {
		p := encodePNG(t, decodeJPEG(t, jpg))
		resp, rb := upload(t, mainSrv, tok, "half.png", p[:len(p)/2])
		wantError(t, resp, rb, http.StatusUnprocessableEntity, "corrupt_image")
	})
	t.Run("body over MAX_UPLOAD_BYTES", func(t *testing.T) {
		big := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0xE0}, (maxUpload+(1<<20))/4)
		resp, rb := upload(t, mainSrv, tok, "big.jpg", big)
		wantError(t, resp, rb, http.StatusRequestEntityTooLarge, "payload_too_large")
	})
	t.Run("too many pixels", func(t *testing.T) {
		resp, rb := upload(t, mainSrv, tok, "huge.png", hugePNGHeader(t, 100000, 100000))
		wantError(t, resp, rb, http.StatusRequestEntityTooLarge, "image_too_large")
	})
	t.Run("GET /upload", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "GET", "/upload", tok, nil, "")
		wantError(t, resp, rb, http.StatusMethodNotAllowed, "method_not_allowed")
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") {
			t.Errorf("Allow = %q, want POST", allow)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "GET", "/no/such/route", "", nil, "")
		wantError(t, resp, rb, http.StatusNotFound, "not_found")
	})
	t.Run("unknown route POST", func(t *testing.T) {
		resp, rb := do(t, mainSrv, "POST", "/predict", tok, []byte("x"), "text/plain")
		wantError(t, resp, rb, http.StatusNotFound, "not_found")
	})

	// Still alive and serving after all that.
	resp, body := do(t, mainSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = upload(t, mainSrv, tok, "cat.jpg", jpg)
	wantPrediction(t, resp, body)
	wantNoServerErrors(t, mainSrv)
}

// ---------------------------------------------------------------------------
// Image formats, generated from a real photo

func TestImageFormats(t *testing.T) {
	tok := "Bearer " + iss.Token(nil)
	src := photo(t, "cat", 0)
	img := decodeJPEG(t, src)
	b := img.Bounds()
	if b.Dx() == b.Dy() {
		t.Fatalf("want a non-square source photo to check EXIF rotation, got %v", b.Size())
	}

	// PNG with an alpha channel: a transparent frame and a half-transparent half.
	nrgba := image.NewNRGBA(b)
	draw.Draw(nrgba, b, img, b.Min, draw.Src)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			i := nrgba.PixOffset(x, y) + 3
			switch {
			case x-b.Min.X < 8 || y-b.Min.Y < 8:
				nrgba.Pix[i] = 0
			case x-b.Min.X > b.Dx()/2:
				nrgba.Pix[i] = 128
			}
		}
	}
	gray := image.NewGray(b)
	draw.Draw(gray, b, img, b.Min, draw.Src)
	paletted := encodeWith(t, func(w io.Writer) error { return gif.Encode(w, img, nil) })
	// Go cannot encode WebP or CMYK JPEG: tests/testdata/pick_fixtures.py made
	// these from the same photo with Pillow.
	made := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(root, "tests", "testdata", "formats", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	cases := []struct {
		name, filename, ctype, format string
		data                          []byte
		w, h                          int // expected upright size
	}{
		{"png with alpha", "cat.png", "image/png", "png", encodePNG(t, nrgba), b.Dx(), b.Dy()},
		{"gif", "cat.gif", "image/gif", "gif", paletted, b.Dx(), b.Dy()},
		{"bmp", "cat.bmp", "image/bmp", "bmp", encodeWith(t, func(w io.Writer) error { return bmp.Encode(w, img) }), b.Dx(), b.Dy()},
		{"tiff", "cat.tiff", "image/tiff", "tiff", encodeWith(t, func(w io.Writer) error {
			return tiff.Encode(w, img, &tiff.Options{Compression: tiff.Deflate})
		}), b.Dx(), b.Dy()},
		{"grayscale jpeg", "gray.jpg", "image/jpeg", "jpeg", encodeWith(t, func(w io.Writer) error {
			return jpeg.Encode(w, gray, &jpeg.Options{Quality: 90})
		}), b.Dx(), b.Dy()},
		{"jpeg exif orientation 6", "rotated.jpg", "image/jpeg", "jpeg", withEXIFOrientation(t, encodeWith(t, func(w io.Writer) error {
			return jpeg.Encode(w, img, &jpeg.Options{Quality: 90})
		}), 6), b.Dy(), b.Dx()},
		{"webp", "cat.webp", "image/webp", "webp", made("cat.webp"), b.Dx(), b.Dy()},
		{"cmyk jpeg", "cmyk.jpg", "image/jpeg", "jpeg", made("cat-cmyk.jpg"), b.Dx(), b.Dy()},
		{"jpeg named png", "cat.png", "image/png", "jpeg", src, b.Dx(), b.Dy()},
		{"jpeg without name or type", "", "", "jpeg", src, b.Dx(), b.Dy()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ct := multipartBody(formPart{field: "file", filename: c.filename, ctype: c.ctype, data: c.data})
			resp, rb := do(t, mainSrv, "POST", "/upload", tok, body, ct)
			p := wantPrediction(t, resp, rb)
			if p.Image.Format != c.format {
				t.Errorf("image.format = %q, want %q", p.Image.Format, c.format)
			}
			if p.Image.Width != c.w || p.Image.Height != c.h {
				t.Errorf("image size = %dx%d, want %dx%d (upright)", p.Image.Width, p.Image.Height, c.w, c.h)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Startup must fail closed and say why.

func TestFailClosed(t *testing.T) {
	notONNX := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(notONNX, []byte("this is a text file, not an ONNX model\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.onnx")
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no issuer or audience", map[string]string{}, []string{"OAUTH2_ISSUER"}},
		{"issuer without audience", map[string]string{"OAUTH2_ISSUER": iss.URL}, []string{"OAUTH2_AUDIENCE"}},
		{"audience without issuer", map[string]string{"OAUTH2_AUDIENCE": audience}, []string{"OAUTH2_ISSUER"}},
		{"AUTH_DISABLED typo", map[string]string{"AUTH_DISABLED": "ture"}, []string{"AUTH_DISABLED"}},
		{"model missing", map[string]string{"AUTH_DISABLED": "true", "MODEL_PATH": missing}, []string{missing, "no such file"}},
		{"model not ONNX", map[string]string{"AUTH_DISABLED": "true", "MODEL_PATH": notONNX}, []string{notONNX, "ONNX"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := serviceEnv(c.env)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath)
			cmd.Dir = root
			cmd.Env = env
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("want a non-zero exit, got err=%v after %s\n%s", err, took, out)
			}
			if took > 10*time.Second {
				t.Errorf("took %s to fail, want a quick exit", took)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "msg=listening") {
				t.Errorf("server started listening before failing:\n%s", out)
			}
		})
	}
}

func TestAuthDisabled(t *testing.T) {
	resp, body := upload(t, openSrv, "", "cat.jpg", photo(t, "cat", 1))
	wantPrediction(t, resp, body)

	resp, body = do(t, openSrv, "GET", "/health", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	var h struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	mustJSON(t, body, &h)
	if h.Status != "OK" || len(h.Warnings) == 0 || !strings.Contains(strings.ToLower(strings.Join(h.Warnings, " ")), "disabled") {
		t.Errorf("health = %+v, want status OK and a warning that authentication is disabled", h)
	}
	if !strings.Contains(openSrv.logs.String(), "AUTHENTICATION IS DISABLED") {
		t.Error("no startup warning about disabled authentication in the log")
	}
}

// ---------------------------------------------------------------------------
// JWKS behaviour. These run last: rotation changes the issuer's signing key.

// jwksMinRefresh is the main instance's OAUTH2_JWKS_MIN_REFRESH: short so
// TestKeyRotation is quick, long enough that TestUnknownKidFlood's burst
// fits inside one window.
const jwksMinRefresh = 3 * time.Second

// TestKeyRotation: after the issuer rotates, a token signed with the new key
// is accepted once the service refetches the JWKS, which an unknown kid does
// at once while the refetch budget lasts (auth_e2e_test.go checks the first
// request); the loop below tolerates a spent budget, refilled per
// OAUTH2_JWKS_MIN_REFRESH (jwksMinRefresh here, 30 s by default).
func TestKeyRotation(t *testing.T) {
	img := photo(t, "dog", 1)
	oldTok := "Bearer " + iss.Token(nil)
	before := iss.JWKSFetches()
	iss.Rotate()
	newTok := "Bearer " + iss.Token(nil)
	if kid := tokenKid(t, newTok); kid == "rsa-1" {
		t.Fatalf("Rotate did not change the kid (%s)", kid)
	}

	start := time.Now()
	for {
		st := probeAuth(mainSrv, newTok)
		if st == http.StatusUnsupportedMediaType { // authenticated; the empty body is what failed
			break
		}
		if st != http.StatusUnauthorized {
			t.Fatalf("token with the new key: status %d, want 401 until refetch, then success", st)
		}
		if time.Since(start) > jwksMinRefresh+10*time.Second {
			t.Fatalf("token with the rotated key still rejected after %s", time.Since(start).Round(time.Second))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("new key accepted %s after rotation", time.Since(start).Round(100*time.Millisecond))
	if got := iss.JWKSFetches(); got <= before {
		t.Errorf("JWKS fetches %d -> %d: the service did not refetch", before, got)
	}

	resp, body := upload(t, mainSrv, newTok, "dog.jpg", img)
	wantPrediction(t, resp, body)
	resp, body = upload(t, mainSrv, oldTok, "dog.jpg", img)
	wantPrediction(t, resp, body) // the old key is still published
}

// TestUnknownKidFlood: tokens naming keys that do not exist must not make the
// service hammer the issuer's JWKS endpoint.
func TestUnknownKidFlood(t *testing.T) {
	base := iss.Token(nil)
	before := iss.JWKSFetches()
	const n, workers = 50, 8
	toks := make([]string, n)
	for i := range toks {
		toks[i] = "Bearer " + withKid(t, base, fmt.Sprintf("unknown-%d-%d", i, rand.Int63()))
	}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				statuses[i] = probeAuth(mainSrv, toks[i])
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusUnauthorized {
			t.Errorf("token %d with an unknown kid: status %d, want 401", i, st)
		}
	}
	grew := iss.JWKSFetches() - before
	t.Logf("%d unknown-kid tokens caused %d JWKS fetches", n, grew)
	if grew > 2 {
		t.Errorf("%d unknown-kid tokens caused %d JWKS fetches, want at most 2 (refetches are rate-limited)", n, grew)
	}
	// Good tokens still work.
	if st := probeAuth(mainSrv, "Bearer "+iss.Token(nil)); st != http.StatusUnsupportedMediaType {
		t.Errorf("valid token after the flood: status %d, want 415 (authenticated, empty body)", st)
	}
	wantNoServerErrors(t, mainSrv)
}

// ---------------------------------------------------------------------------
// Server processes

type server struct {
	name string
	URL  string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // from Wait, valid after done
}

// logBuffer collects a server's stdout and stderr.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serviceEnv is the test process's environment without any setting the
// service reads (so the developer's shell cannot change the outcome), plus
// MODEL_PATH and the given settings.
func serviceEnv(set map[string]string) []string {
	own := regexp.MustCompile(`^(PORT|MODEL_\w*|OAUTH2_\w*|AUTH_DISABLED|MAX_UPLOAD_BYTES|MAX_IMAGE_PIXELS|INFERENCE_\w*|ORT_INTRA_OP_THREADS|TRUSTED_PROXIES|LOG_FORMAT|LISTEN_ADDR|DOCS_PERSIST_AUTHORIZATION)=`)
	var env []string
	for _, kv := range os.Environ() {
		if !own.MatchString(kv) {
			env = append(env, kv)
		}
	}
	if _, ok := set["MODEL_PATH"]; !ok {
		env = append(env, "MODEL_PATH="+modelPath)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// closedAddr is a loopback address nothing listens on.
func closedAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// launch starts the binary on a free port; call waitReady next.
func launch(name string, set map[string]string) (*server, error) {
	_, port, _ := net.SplitHostPort(closedAddr())
	set["PORT"] = port
	s := &server{name: name, URL: "http://127.0.0.1:" + port, logs: &logBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binPath)
	s.cmd.Dir = root
	s.cmd.Env = serviceEnv(set)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s server: %w", name, err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	return s, nil
}

// waitReady polls /health until it answers 200.
func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s server exited before it was ready: %v", s.name, s.err)
		default:
		}
		if resp, err := c.Get(s.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s server not ready after %s", s.name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks for a graceful shutdown, then kills.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// wantNoServerErrors checks the server is still running and has logged no
// 5xx answer and no panic.
func wantNoServerErrors(t *testing.T, s *server) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("%s server has exited: %v", s.name, s.err)
	default:
	}
	logs := s.logs.String()
	if m := regexp.MustCompile(`(?m)^.*(status=5\d\d|panic).*$`).FindAllString(logs, 5); len(m) > 0 {
		t.Errorf("%s server logged server errors:\n%s", s.name, strings.Join(m, "\n"))
	}
}

// ---------------------------------------------------------------------------
// HTTP helpers

type formPart struct {
	field, filename, ctype string
	data                   []byte
}

func multipartBody(parts ...formPart) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			disp += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", disp)
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			panic(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func do(t *testing.T, s *server, method, path, authz string, body []byte, ctype string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, rb
}

// upload POSTs data as the multipart field "file".
func upload(t *testing.T, s *server, authz, filename string, data []byte) (*http.Response, []byte) {
	t.Helper()
	if filename == "" {
		filename = "upload"
	}
	body, ct := multipartBody(formPart{field: "file", filename: filename, ctype: "application/octet-stream", data: data})
	return do(t, s, "POST", "/upload", authz, body, ct)
}

// probeAuth POSTs an empty JSON body to /upload: 415 means the token passed
// authentication and authorisation, 401/403 that it did not. No inference runs.
func probeAuth(s *server, authz string) int {
	req, _ := http.NewRequest("POST", s.URL+"/upload", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authz)
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body: %.500s", resp.StatusCode, status, body)
	}
}

func wantJSONType(t *testing.T, resp *http.Response) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func mustJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("response is not the expected JSON: %v; body: %.500s", err, body)
	}
}

// wantError checks the status and the {"error": code, "detail": ...} body.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	wantStatus(t, resp, body, status)
	wantJSONType(t, resp)
	var e map[string]any
	mustJSON(t, body, &e)
	if e["error"] != code {
		t.Errorf("error = %v, want %q; body: %s", e["error"], code, body)
	}
	if d, _ := e["detail"].(string); d == "" {
		t.Errorf("detail missing or empty; body: %s", body)
	}
	if len(e) != 2 {
		t.Errorf("error body has fields other than error and detail: %s", body)
	}
}

// wantChallenge checks the RFC 6750 WWW-Authenticate header.
func wantChallenge(t *testing.T, resp *http.Response, contains ...string) {
	t.Helper()
	h := resp.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", h)
	}
	for _, c := range contains {
		if !strings.Contains(h, c) {
			t.Errorf("WWW-Authenticate = %q, want it to contain %s", h, c)
		}
	}
}

type prediction struct {
	Prediction string    `json:"prediction"`
	Values     []float64 `json:"values"`
	Labels     []string  `json:"labels"`
	Confidence float64   `json:"confidence"`
	Scores     []struct {
		Label       string  `json:"label"`
		Probability float64 `json:"probability"`
	} `json:"scores"`
	Model struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"model"`
	Image struct {
		Format string `json:"format"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	} `json:"image"`
	TimingsMS map[string]float64 `json:"timings_ms"`
}

// wantPrediction checks a 200 answer's shape and consistency.
func wantPrediction(t *testing.T, resp *http.Response, body []byte) prediction {
	t.Helper()
	wantStatus(t, resp, body, http.StatusOK)
	wantJSONType(t, resp)
	var p prediction
	mustJSON(t, body, &p)
	labels := []string{"Cat", "Dog", "Other"}
	if !slices.Equal(p.Labels, labels) {
		t.Errorf("labels = %v, want %v", p.Labels, labels)
	}
	if !slices.Contains(labels, p.Prediction) {
		t.Errorf("prediction = %q, want one of %v", p.Prediction, labels)
	}
	if len(p.Values) != 3 {
		t.Fatalf("values = %v, want 3 probabilities", p.Values)
	}
	sum, best := 0.0, 0
	for i, v := range p.Values {
		if v < 0 || v > 1 || math.IsNaN(v) {
			t.Errorf("values[%d] = %v, not a probability", i, v)
		}
		sum += v
		if v > p.Values[best] {
			best = i
		}
	}
	if math.Abs(sum-1) > 1e-3 {
		t.Errorf("values sum to %v, want 1", sum)
	}
	if p.Prediction != labels[best] {
		t.Errorf("prediction %q is not the argmax of values %v", p.Prediction, p.Values)
	}
	if math.Abs(p.Confidence-p.Values[best]) > 1e-6 {
		t.Errorf("confidence %v != max value %v", p.Confidence, p.Values[best])
	}
	if len(p.Scores) != 3 {
		t.Fatalf("scores = %+v, want 3", p.Scores)
	}
	if !sort.SliceIsSorted(p.Scores, func(a, b int) bool { return p.Scores[a].Probability > p.Scores[b].Probability }) {
		t.Errorf("scores not sorted by descending probability: %+v", p.Scores)
	}
	for _, s := range p.Scores {
		i := slices.Index(labels, s.Label)
		if i < 0 || math.Abs(s.Probability-p.Values[i]) > 1e-6 {
			t.Errorf("score %+v does not match values %v", s, p.Values)
		}
	}
	if p.Scores[0].Label != p.Prediction {
		t.Errorf("top score %q != prediction %q", p.Scores[0].Label, p.Prediction)
	}
	if p.Model.Name == "" {
		t.Error("model.name is empty")
	}
	for _, k := range []string{"queue", "decode", "preprocess", "inference", "total"} {
		if v, ok := p.TimingsMS[k]; !ok || v < 0 {
			t.Errorf("timings_ms.%s = %v (present %v)", k, v, ok)
		}
	}
	if p.TimingsMS["total"] <= 0 {
		t.Errorf("timings_ms.total = %v, want > 0", p.TimingsMS["total"])
	}
	if p.Image.Width <= 0 || p.Image.Height <= 0 {
		t.Errorf("image size %dx%d", p.Image.Width, p.Image.Height)
	}
	return p
}

// ---------------------------------------------------------------------------
// Photos and crafted files

// testPhotos returns the first n fixture test photos of a class, by name.
func testPhotos(t *testing.T, class string, n int) []string {
	t.Helper()
	m := pets.Photos(root, class)
	if len(m) < n {
		t.Fatalf("need %d photos of %s in %s, found %d", n, class, pets.Fixtures(root), len(m))
	}
	return m[:n]
}

var photoCache sync.Map

// photo returns the bytes of the i-th test photo of a class.
func photo(t *testing.T, class string, i int) []byte {
	t.Helper()
	path := testPhotos(t, class, i+1)[i]
	if b, ok := photoCache.Load(path); ok {
		return b.([]byte)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	photoCache.Store(path, b)
	return b
}

func rel(path string) string {
	if r, err := filepath.Rel(pets.Fixtures(root), path); err == nil {
		return r
	}
	return path
}

func decodeJPEG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodeWith(t *testing.T, enc func(io.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t *testing.T, img image.Image) []byte {
	return encodeWith(t, func(w io.Writer) error { return png.Encode(w, img) })
}

// hugePNGHeader is a valid PNG whose header claims w x h pixels; only the
// header matters, the service must refuse before decoding.
func hugePNGHeader(t *testing.T, w, h uint32) []byte {
	t.Helper()
	small := image.NewRGBA(image.Rect(0, 0, 1, 1))
	small.Set(0, 0, color.White)
	b := encodePNG(t, small)
	// signature (8) | length (4) "IHDR" (4) width (4) height (4) ... crc
	if string(b[12:16]) != "IHDR" {
		t.Fatal("unexpected PNG layout")
	}
	binary.BigEndian.PutUint32(b[16:20], w)
	binary.BigEndian.PutUint32(b[20:24], h)
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// withEXIFOrientation inserts an APP1 Exif segment carrying only the
// orientation tag right after the JPEG's SOI marker.
func withEXIFOrientation(t *testing.T, jpg []byte, orientation uint16) []byte {
	t.Helper()
	if len(jpg) < 2 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		t.Fatal("not a JPEG")
	}
	le := binary.LittleEndian
	var tiffData []byte
	tiffData = append(tiffData, 'I', 'I')
	tiffData = le.AppendUint16(tiffData, 42)
	tiffData = le.AppendUint32(tiffData, 8) // IFD0 offset
	tiffData = le.AppendUint16(tiffData, 1) // one entry
	tiffData = le.AppendUint16(tiffData, 0x0112)
	tiffData = le.AppendUint16(tiffData, 3) // SHORT
	tiffData = le.AppendUint32(tiffData, 1) // count
	tiffData = le.AppendUint16(tiffData, orientation)
	tiffData = le.AppendUint16(tiffData, 0) // value padding
	tiffData = le.AppendUint32(tiffData, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiffData...)

	out := []byte{0xFF, 0xD8, 0xFF, 0xE1}
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(payload)))
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// ---------------------------------------------------------------------------
// Token surgery

func splitJWT(t *testing.T, tok string) (header map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(strings.TrimPrefix(tok, "Bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	return header, parts
}

func encodeSegment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenKid(t *testing.T, tok string) string {
	h, _ := splitJWT(t, tok)
	kid, _ := h["kid"].(string)
	return kid
}

// withKid re-labels a token's key ID (its signature no longer matches).
func withKid(t *testing.T, tok, kid string) string {
	h, parts := splitJWT(t, tok)
	h["kid"] = kid
	parts[0] = encodeSegment(h)
	return strings.Join(parts, ".")
}

// unsigned turns a token into an "alg":"none" token with no signature.
func unsigned(tok string) string {
	parts := strings.Split(tok, ".")
	return encodeSegment(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."
}

// tamper grants the required scope in the payload without re-signing.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	claims["scope"] = scope
	parts[1] = encodeSegment(claims)
	return strings.Join(parts, ".")
}
