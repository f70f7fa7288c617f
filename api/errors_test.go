package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Multipart parse errors are answered in words of our own: Go's parser text
// ("multipart: NextPart: EOF", a MIME header line echoed back) never reaches
// the client, and each kind of mistake says what to fix.
func TestMalformedMultipartDetails(t *testing.T) {
	const ct = "multipart/form-data; boundary=XYZ"
	for _, c := range []struct {
		name, contentType, body, want string
	}{
		{"no boundary parameter", "multipart/form-data", "x", "no boundary parameter"},
		{"no boundary line in the body", ct, "no boundary anywhere", "ends before its closing boundary"},
		{"empty body", ct, "", "ends before its closing boundary"},
		{"cut inside the file part", ct, "--XYZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", "ends before its closing boundary"},
		{"bad part header", ct, "--XYZ\r\nnot a header <script>\r\n\r\nabc\r\n--XYZ--\r\n", "multipart body is malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			w := do(newTestRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}), req)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
			}
			e := errorBody(t, w)
			if e.Error != "bad_request" || !strings.Contains(e.Detail, c.want) {
				t.Errorf("%+v, want bad_request saying %q", e, c.want)
			}
			for _, leak := range []string{"multipart:", "NextPart", "EOF", "MIME", "<script>", "missing colon"} {
				if strings.Contains(e.Detail, leak) {
					t.Errorf("detail %q carries Go's error text (%q)", e.Detail, leak)
				}
			}
		})
	}
}
