//go:build linux

// Helpers of the end-to-end tests: HTTP, answers, photos and crafted files,
// token surgery.

package tests

import (
	"bytes"
	"catsdogs/tests/pets"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

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

// probeAuth POSTs a text body to /upload: 415 means the token passed
// authentication and authorisation, 401/403 that it did not. No inference runs.
func probeAuth(s *server, authz string) int {
	req, _ := http.NewRequest("POST", s.URL+"/upload", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "text/plain")
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
	if id, _ := e["request_id"].(string); id == "" || id != resp.Header.Get("X-Request-Id") {
		t.Errorf("request_id %v is not the X-Request-Id header %q; body: %s", e["request_id"], resp.Header.Get("X-Request-Id"), body)
	}
	if len(e) != 3 {
		t.Errorf("error body has fields other than error, detail and request_id: %s", body)
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
