//go:build linux

// What an Insomnium user gets: the OpenAPI document the real binary serves,
// and the committed export (collections/insomnium), imported with Insomnia's
// own importer in Node (tests/insomnium/import.cjs), and the imported
// requests sent to the binary as Insomnium would send them.
//
//	CATSDOGS_INSOMNIA_IMPORTERS  the npm package insomnia-importers (make test:
//	                             build/node/node_modules/insomnia-importers);
//	                             when set and missing, the test fails instead
//	                             of skipping.

package tests

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// imported is import.cjs's answer.
type imported struct {
	Importer    string            `json:"importer"`
	Logged      []string          `json:"logged"`
	Environment map[string]any    `json:"environment"`
	Requests    []importedRequest `json:"requests"`
}

type importedRequest struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	URL    string `json:"url"`
	Body   struct {
		MimeType string          `json:"mimeType"`
		Params   []importedParam `json:"params"`
	} `json:"body"`
	Authentication struct {
		Type string `json:"type"`
	} `json:"authentication"`
	Rendered struct {
		URL     string `json:"url"`
		Headers []struct {
			Name, Value string
		} `json:"headers"`
		Authorization string `json:"authorization"`
	} `json:"rendered"`
}

type importedParam struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	FileName string `json:"fileName"`
	Disabled bool   `json:"disabled"`
}

func TestInsomnium(t *testing.T) {
	pkg := os.Getenv("CATSDOGS_INSOMNIA_IMPORTERS")
	required := pkg != ""
	if pkg == "" {
		pkg = filepath.Join(root, "build", "node", "node_modules", "insomnia-importers")
	}
	_, err := os.Stat(filepath.Join(pkg, "package.json"))
	if err == nil {
		_, err = exec.LookPath("node")
	}
	if err != nil {
		if required {
			t.Fatalf("CATSDOGS_INSOMNIA_IMPORTERS=%s: %v (make node-tools installs it)", pkg, err)
		}
		t.Skipf("no insomnia-importers at %s or no node: run `make node-tools` (make test does)", pkg)
	}
	token := iss.Token(nil)
	photoPath := testPhotos(t, "cat", 1)[0]

	// The served document names the address it was fetched from as its
	// server: the imported requests must go there, with no edit.
	for _, doc := range []string{"/openapi.yaml", "/openapi.json"} {
		t.Run(strings.TrimPrefix(doc, "/"), func(t *testing.T) {
			resp, body := do(t, mainSrv, "GET", doc, "", nil, "")
			wantStatus(t, resp, body, http.StatusOK)
			file := filepath.Join(t.TempDir(), filepath.Base(doc))
			if err := os.WriteFile(file, body, 0o644); err != nil {
				t.Fatal(err)
			}
			// The user pastes the token into the environment's bearerToken.
			got := runImporter(t, pkg, file, "bearerToken="+token)
			if got.Importer != "openapi3" {
				t.Fatalf("imported as %q, want openapi3", got.Importer)
			}
			if len(got.Logged) > 0 {
				t.Errorf("the importer logged (a document that fails its validation is imported half-resolved):\n%s", strings.Join(got.Logged, "\n"))
			}
			for _, path := range []string{"/upload", "/predict"} {
				r := wantImported(t, got, path, token)
				// Insomnia's OpenAPI importer gives a multipart body no
				// fields; the README tells the user to add `file`.
				if len(r.Body.Params) == 0 {
					r.Body.Params = []importedParam{{Name: "file", Type: "file"}}
				}
				wantFileField(t, r)
				if path == "/upload" {
					resp, body := sendImported(t, r, photoPath)
					wantPrediction(t, resp, body)
				}
			}
		})
	}

	// The export has the file fields; the user sets base_url and token.
	t.Run("collections/insomnium", func(t *testing.T) {
		// As imported, it points at make run's address.
		for _, r := range runImporter(t, pkg, filepath.Join(root, "collections", "insomnium", "catsdogs.yaml")).Requests {
			if !strings.HasPrefix(r.Rendered.URL, "http://localhost:8080/") {
				t.Errorf("%s: URL %q, want one on http://localhost:8080 (make run)", r.Name, r.Rendered.URL)
			}
		}
		got := runImporter(t, pkg, filepath.Join(root, "collections", "insomnium", "catsdogs.yaml"),
			"base_url="+mainSrv.URL, "token="+token)
		if got.Importer != "insomnia-4" {
			t.Fatalf("imported as %q, want insomnia-4 (Insomnia's export format)", got.Importer)
		}
		up := wantImported(t, got, "/upload", token)
		wantFileField(t, up)
		resp, body := sendImported(t, up, photoPath)
		wantPrediction(t, resp, body)

		pr := wantImported(t, got, "/predict", token)
		wantFileField(t, pr)
		resp, body = sendImported(t, pr, photoPath)
		wantStatus(t, resp, body, http.StatusOK)
		var ans predictAnswer
		mustJSON(t, body, &ans)
		if ans.Count != len(pr.Body.Params) || ans.Failed != 0 {
			t.Errorf("count %d failed %d, want %d and 0; body %s", ans.Count, ans.Failed, len(pr.Body.Params), body)
		}
	})
}

// runImporter imports file with import.cjs, setting the environment
// variables given as NAME=VALUE.
func runImporter(t *testing.T, pkg, file string, sets ...string) imported {
	t.Helper()
	args := append([]string{filepath.Join(root, "tests", "insomnium", "import.cjs"), pkg, file}, sets...)
	cmd := exec.Command("node", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("import.cjs %s: %v\n%s", filepath.Base(file), err, stderr.Bytes())
	}
	var got imported
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("import.cjs printed no JSON: %v\n%.2000s", err, out)
	}
	return got
}

// wantImported finds the request for path and checks what the user would
// send: the service's own address, POST, a multipart body, the bearer token.
func wantImported(t *testing.T, got imported, path, token string) importedRequest {
	t.Helper()
	var found []importedRequest
	for _, r := range got.Requests {
		if strings.HasSuffix(r.URL, path) {
			found = append(found, r)
		}
	}
	// The environment, less the token, says where a wrong URL came from.
	env := map[string]any{}
	for k, v := range got.Environment {
		if v != token {
			env[k] = v
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d imported requests for %s, want 1; environment %v", len(found), path, env)
	}
	r := found[0]
	u, err := url.Parse(r.Rendered.URL)
	want, _ := url.Parse(mainSrv.URL + path)
	if err != nil || u.Host == "" || *u != *want {
		t.Errorf("%s: URL %q renders to %q, want %q (environment %v)", path, r.URL, r.Rendered.URL, want, env)
	}
	if r.Method != http.MethodPost {
		t.Errorf("%s: method %q, want POST", path, r.Method)
	}
	if r.Body.MimeType != "multipart/form-data" {
		t.Errorf("%s: body type %q, want multipart/form-data", path, r.Body.MimeType)
	}
	if r.Authentication.Type != "bearer" || r.Rendered.Authorization != "Bearer "+token {
		t.Errorf("%s: authentication %q sends %q, want a bearer token", path, r.Authentication.Type, r.Rendered.Authorization)
	}
	return r
}

// wantFileField: every field of the form is a file named "file".
func wantFileField(t *testing.T, r importedRequest) {
	t.Helper()
	if len(r.Body.Params) == 0 {
		t.Errorf("%s: the form has no fields, want `file`", r.Name)
	}
	for _, p := range r.Body.Params {
		if p.Name != "file" || p.Type != "file" || p.Disabled {
			t.Errorf("%s: form field %+v, want `file` of type file", r.Name, p)
		}
	}
}

// sendImported sends r as Insomnium does once the user has chosen photo for
// each file field: the rendered URL and headers, the multipart body with its
// own boundary in Content-Type, the bearer token.
func sendImported(t *testing.T, r importedRequest, photo string) (*http.Response, []byte) {
	t.Helper()
	data, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	var parts []formPart
	for _, p := range r.Body.Params {
		if p.Disabled {
			continue
		}
		if p.Type == "file" {
			parts = append(parts, formPart{field: p.Name, filename: filepath.Base(photo),
				ctype: mime.TypeByExtension(filepath.Ext(photo)), data: data})
		} else {
			parts = append(parts, formPart{field: p.Name, data: []byte(p.Value)})
		}
	}
	body, ctype := multipartBody(parts...)
	req, err := http.NewRequest(r.Method, r.Rendered.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Rendered.Headers {
		req.Header.Add(h.Name, h.Value)
	}
	req.Header.Set("Content-Type", ctype)
	if r.Rendered.Authorization != "" {
		req.Header.Set("Authorization", r.Rendered.Authorization)
	}
	return send(t, req)
}
