//go:build linux

// The OpenAPI document's examples are answers the real binary gives: each
// documented example is provoked over HTTP and compared with it.

package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	svc "catsdogs/server"
	"catsdogs/tests/bombs"
)

// specExample is one example from docs/openapi.json.
type specExample struct {
	where  string // "POST /upload 400", "default"
	status string // documented status; "default" for the shared answers
	name   string
	value  any
}

func loadSpecExamples(t *testing.T) []specExample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "docs", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	type media struct {
		Examples map[string]struct {
			Value any `json:"value"`
		} `json:"examples"`
	}
	type response struct {
		Ref     string           `json:"$ref"`
		Content map[string]media `json:"content"`
	}
	var doc struct {
		Paths      map[string]map[string]struct{ Responses map[string]response } `json:"paths"`
		Components struct{ Responses map[string]response }                       `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []specExample
	add := func(where, status string, r response) {
		for name, e := range r.Content["application/json"].Examples {
			out = append(out, specExample{where, status, name, e.Value})
		}
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for status, r := range op.Responses {
				if r.Ref == "" {
					add(strings.ToUpper(method)+" "+path+" "+status, status, r)
				}
			}
		}
	}
	for name, r := range doc.Components.Responses {
		add("components.responses."+name, "default", r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].where+out[i].name < out[j].where+out[j].name })
	return out
}

func TestSpecExamplesMatchServer(t *testing.T) {
	token := "Bearer " + iss.Token(nil)
	cat := photo(t, "cat", 0)
	fixedCat, err := os.ReadFile(filepath.Join(root, "tests/testdata/images/test/cat/01cb10075c5ea8f9.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	postTo := func(path string, s *server, authz string, parts ...formPart) func(*testing.T) (*http.Response, []byte) {
		return func(t *testing.T) (*http.Response, []byte) {
			body, ct := multipartBody(parts...)
			return do(t, s, "POST", path, authz, body, ct)
		}
	}
	post := func(s *server, authz string, parts ...formPart) func(*testing.T) (*http.Response, []byte) {
		return postTo("/upload", s, authz, parts...)
	}
	get := func(s *server, method, path string) func(*testing.T) (*http.Response, []byte) {
		return func(t *testing.T) (*http.Response, []byte) { return do(t, s, method, path, "", nil, "") }
	}
	file := func(data []byte) formPart {
		return formPart{field: "file", filename: "photo.jpg", ctype: "image/jpeg", data: data}
	}
	// How to provoke each example, by name (names are unique in the document).
	recipes := map[string]func(*testing.T) (*http.Response, []byte){
		"ok":             get(mainSrv, "GET", "/health"),
		"auth_disabled":  get(openSrv, "GET", "/health"),
		"ready":          get(mainSrv, "GET", "/ready"),
		"default_model":  get(mainSrv, "GET", "/model"),
		"cat":            post(mainSrv, token, file(cat)),
		"file_missing":   post(mainSrv, token, formPart{field: "note", data: []byte("x")}),
		"file_empty":     post(mainSrv, token, formPart{field: "file", filename: "empty.jpg"}),
		"multiple_files": post(mainSrv, token, file(cat), file(cat)),
		"bad_request": func(t *testing.T) (*http.Response, []byte) {
			return do(t, mainSrv, "POST", "/upload", token, []byte("no boundary anywhere"), "multipart/form-data; boundary=XYZ")
		},
		"no_token":        post(mainSrv, "", file(cat)),
		"malformed_token": post(mainSrv, "Bearer abc.def.ghi", file(cat)),
		"two_authorization_headers": func(t *testing.T) (*http.Response, []byte) {
			body, ct := multipartBody(file(cat))
			req, _ := http.NewRequest("POST", mainSrv.URL+"/upload", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header["Authorization"] = []string{token, token}
			return send(t, req)
		},
		"insufficient_scope": post(mainSrv, "Bearer "+iss.Token(map[string]any{"scope": "other"}), file(cat)),
		// openSrv runs with the default MAX_UPLOAD_BYTES the example names.
		"payload_too_large": post(openSrv, "", file(make([]byte, 10<<20+1))),
		"image_too_large":   post(mainSrv, token, formPart{field: "file", filename: "big.png", data: bombs.PNGHeader(10000, 10000)}),
		"unsupported_media_type": func(t *testing.T) (*http.Response, []byte) {
			return do(t, mainSrv, "POST", "/upload", token, []byte("cat.jpg"), "text/plain")
		},
		"image_not_base64": func(t *testing.T) (*http.Response, []byte) {
			return do(t, mainSrv, "POST", "/upload", token, []byte(`{"image":"/9j/*4AAQ"}`), "application/json")
		},
		"unsupported_image": post(mainSrv, token, formPart{field: "file", filename: "a.txt", data: []byte("hello, not an image")}),
		"corrupt_image":     post(mainSrv, token, file(fixedCat[:3000])),
		"auth_unavailable":  post(downSrv, token, file(cat)),
		"one_cat_one_text_file": postTo("/predict", mainSrv, token, file(cat),
			formPart{field: "file", filename: "notes.txt", data: []byte("hello, not an image")}),
		"predict_file_missing":       postTo("/predict", mainSrv, token, formPart{field: "note", data: []byte("x")}),
		"predict_no_token":           postTo("/predict", mainSrv, "", file(cat)),
		"predict_insufficient_scope": postTo("/predict", mainSrv, "Bearer "+iss.Token(map[string]any{"scope": "other"}), file(cat)),
		"too_many_files":             postTo("/predict", mainSrv, token, slices.Repeat([]formPart{file([]byte("x"))}, 33)...),
		"predict_unsupported_media_type": func(t *testing.T) (*http.Response, []byte) {
			return do(t, mainSrv, "POST", "/predict", token, []byte("cat.jpg"), "text/plain")
		},
		"predict_auth_unavailable": postTo("/predict", downSrv, token, file(cat)),
		"not_found":                get(mainSrv, "GET", "/no/such/route"),
		"method_not_allowed":       get(mainSrv, "DELETE", "/health"),
	}
	examples := loadSpecExamples(t)
	if len(examples) < len(recipes) {
		t.Fatalf("the document has %d examples, fewer than the %d this test provokes: were some dropped?", len(examples), len(recipes))
	}
	for _, ex := range examples {
		t.Run(ex.where+" "+ex.name, func(t *testing.T) {
			if ex.name == "not_ready" {
				// Only while draining on shutdown, when no new connection is
				// accepted; the text must still be the server's.
				v, _ := ex.value.(map[string]any)
				if v["error"] != "not_ready" || v["detail"] != svc.ErrDraining.Error() {
					t.Errorf("example %v, want error not_ready and detail %q", ex.value, svc.ErrDraining.Error())
				}
				return
			}
			recipe, ok := recipes[ex.name]
			if !ok {
				t.Fatalf("no recipe provokes the example %q: add one to this test", ex.name)
			}
			resp, body := recipe(t)
			if ex.status != "default" && fmt.Sprint(resp.StatusCode) != ex.status {
				t.Fatalf("status %d, documented %s; body %s", resp.StatusCode, ex.status, body)
			}
			var got any
			mustJSON(t, body, &got)
			// Errors: the code and the words exactly; success bodies (and
			// any per-request field of an error) by shape.
			if resp.StatusCode >= 400 {
				g, _ := got.(map[string]any)
				w, _ := ex.value.(map[string]any)
				if g == nil || w == nil || g["error"] != w["error"] || g["detail"] != w["detail"] {
					t.Errorf("the server answers\n  %s\nthe document shows\n  %s\n(update tools/openapi/examples.go, then make docs)", body, mustMarshal(ex.value))
					return
				}
			}
			if err := sameShape(got, ex.value, "$"); err != nil {
				t.Errorf("%v\nserver: %s\ndocument: %s", err, body, mustMarshal(ex.value))
			}
		})
	}
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

func mustMarshal(v any) []byte { b, _ := json.Marshal(v); return b }

// sameShape: the same keys at every level, the same JSON types, arrays
// compared element by element up to the shorter one's length.
func sameShape(got, want any, at string) error {
	if reflect.TypeOf(got) != reflect.TypeOf(want) {
		return fmt.Errorf("%s: server sends %T, the document shows %T", at, got, want)
	}
	switch g := got.(type) {
	case map[string]any:
		w := want.(map[string]any)
		var gk, wk []string
		for k := range g {
			gk = append(gk, k)
		}
		for k := range w {
			wk = append(wk, k)
		}
		sort.Strings(gk)
		sort.Strings(wk)
		if !slices.Equal(gk, wk) {
			return fmt.Errorf("%s: server sends keys %v, the document shows %v", at, gk, wk)
		}
		for _, k := range gk {
			if err := sameShape(g[k], w[k], at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		w := want.([]any)
		for i := 0; i < len(g) && i < len(w); i++ {
			if err := sameShape(g[i], w[i], fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
