package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"catsdogs/admission"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/model/spec"

	"github.com/getkin/kin-openapi/openapi3"
)

// oipInfo is a FAKE model of 2×2 NCHW inputs: 12 floats an image.
var oipInfo = model.Info{Name: "fake-model", Version: "3", Labels: []string{"Cat", "Dog", "Other"},
	Spec: spec.Spec{Layout: spec.LayoutNCHW, Width: 2, Height: 2}}

func oipRouter(fc Classifier, a auth.Authenticator, mut ...func(*Deps)) http.Handler {
	return newTestRouter(fc, a, append([]func(*Deps){func(d *Deps) {
		d.Model = oipInfo
		d.PredictMaxFiles = 3
		d.Build.Version = "v9"
	}}, mut...)...)
}

// kserveSchemas are the component schemas of the protocol's own OpenAPI
// document (oip/kserve, vendored from KServe).
func kserveSchemas(t *testing.T) openapi3.Schemas {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join("..", "oip", "kserve", "rest_predict_v2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}

// conforms checks a JSON body against one of the protocol's schemas.
func conforms(t *testing.T, schemas openapi3.Schemas, name string, body []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %s", name, body)
	}
	if err := schemas[name].Value.VisitJSON(v); err != nil {
		t.Errorf("%s: %s does not conform: %v", name, body, err)
	}
	return v
}

func oipDo(r http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(r, req)
}

func TestOIPHealthAndMetadata(t *testing.T) {
	schemas := kserveSchemas(t)
	var notReady error
	r := oipRouter(&fakeClassifier{res: okResult()}, &fakeAuth{err: auth.ErrMissingToken}, func(d *Deps) {
		d.Ready = func() error { return notReady }
	})
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/fake-model/ready", "/v2/models/fake-model/versions/3/ready"} {
		if w := oipDo(r, "GET", path, ""); w.Code != 200 || w.Body.Len() != 0 {
			t.Errorf("%s: %d %q, want 200 and no body", path, w.Code, w.Body)
		}
	}
	for _, path := range []string{"/v2", "/v2/"} {
		w := oipDo(r, "GET", path, "")
		v := conforms(t, schemas, "metadata_server_response", w.Body.Bytes())
		if w.Code != 200 || v["name"] != "catsdogs" || v["version"] != "v9" {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	for _, path := range []string{"/v2/models/fake-model", "/v2/models/fake-model/versions/3"} {
		w := oipDo(r, "GET", path, "") // open, as /model is: the token is never asked for
		v := conforms(t, schemas, "metadata_model_response", w.Body.Bytes())
		for _, list := range []string{"inputs", "outputs"} {
			for _, m := range v[list].([]any) {
				if err := schemas["metadata_tensor"].Value.VisitJSON(m); err != nil {
					t.Errorf("%s: %v", list, err)
				}
			}
		}
		var md struct {
			Name     string
			Versions []string
			Platform string
			Inputs   []struct {
				Name, Datatype string
				Shape          []int64
			}
			Outputs []struct {
				Name, Datatype string
				Shape          []int64
			}
		}
		_ = json.Unmarshal(w.Body.Bytes(), &md)
		if w.Code != 200 || md.Name != "fake-model" || md.Platform != "onnx_onnxv1" || len(md.Versions) != 1 || md.Versions[0] != "3" {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
		if got := mustJSON(md.Inputs); string(got) != `[{"Name":"image","Datatype":"BYTES","Shape":[-1]},{"Name":"tensor","Datatype":"FP32","Shape":[-1,3,2,2]}]` {
			t.Errorf("inputs %s", got)
		}
		if got := mustJSON(md.Outputs); string(got) != `[{"Name":"probabilities","Datatype":"FP32","Shape":[-1,3]},{"Name":"label","Datatype":"BYTES","Shape":[-1]}]` {
			t.Errorf("outputs %s", got)
		}
	}
	// Unknown model or version: 404 in the protocol's error shape.
	for _, path := range []string{"/v2/models/other", "/v2/models/fake-model/versions/4", "/v2/models/other/ready", "/v2/nope"} {
		w := oipDo(r, "GET", path, "")
		v := conforms(t, schemas, "metadata_model_error_response", w.Body.Bytes())
		if w.Code != 404 || len(v) != 1 {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	if w := oipDo(r, "DELETE", "/v2/health/live", ""); w.Code != 405 || !strings.HasPrefix(w.Body.String(), `{"error":`) {
		t.Errorf("DELETE: %d %s", w.Code, w.Body)
	}
	notReady = errors.New("the model is loading")
	for _, path := range []string{"/v2/health/ready", "/v2/models/fake-model/ready"} {
		w := oipDo(r, "GET", path, "")
		if v := conforms(t, schemas, "metadata_server_error_response", w.Body.Bytes()); w.Code != 503 || v["error"] != "the model is loading" {
			t.Errorf("not ready: %s: %d %s", path, w.Code, w.Body)
		}
	}
	if w := oipDo(r, "GET", "/v2/health/live", ""); w.Code != 200 {
		t.Errorf("live while not ready: %d", w.Code)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func imagesInput(images ...string) string {
	data := make([]string, len(images))
	for i, s := range images {
		data[i] = base64.StdEncoding.EncodeToString([]byte(s))
	}
	return `{"name":"image","datatype":"BYTES","shape":[` + string(mustJSON(len(images))) + `],"data":` + string(mustJSON(data)) + `}`
}

func TestOIPInfer(t *testing.T) {
	schemas := kserveSchemas(t)
	fc := &fakeClassifier{res: okResult()}
	r := oipRouter(fc, &fakeAuth{})
	type tensor struct {
		Name, Datatype string
		Shape          []int64
		Data           []any
		Parameters     map[string]any
	}
	type answer struct {
		ModelName    string `json:"model_name"`
		ModelVersion string `json:"model_version"`
		ID           string
		Outputs      []tensor
	}
	infer := func(body string) (*httptest.ResponseRecorder, answer) {
		t.Helper()
		w := oipDo(r, "POST", "/v2/models/fake-model/infer", body)
		var a answer
		if w.Code == 200 {
			conforms(t, schemas, "inference_response", w.Body.Bytes())
			_ = json.Unmarshal(w.Body.Bytes(), &a)
		} else {
			conforms(t, schemas, "inference_error_response", w.Body.Bytes())
		}
		return w, a
	}
	// One image: Classify, as /upload; both outputs; the id comes back.
	body := `{"id":"42","inputs":[` + imagesInput("img0") + `]}`
	conforms(t, schemas, "inference_request", []byte(body))
	w, a := infer(body)
	if w.Code != 200 || a.ModelName != "fake-model" || a.ModelVersion != "3" || a.ID != "42" || len(a.Outputs) != 2 || string(fc.got) != "img0" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	p, l := a.Outputs[0], a.Outputs[1]
	if p.Name != "probabilities" || p.Datatype != "FP32" || string(mustJSON(p.Shape)) != "[1,3]" || string(mustJSON(p.Data)) != "[0.2,0.7,0.1]" ||
		p.Parameters["labels"] != "Cat,Dog,Other" {
		t.Errorf("probabilities %+v", p)
	}
	if l.Name != "label" || l.Datatype != "BYTES" || string(mustJSON(l.Shape)) != "[1]" || string(mustJSON(l.Data)) != `["Dog"]` {
		t.Errorf("label %+v", l)
	}
	// A batch of three through the versioned path, label only.
	w = oipDo(r, "POST", "/v2/models/fake-model/versions/3/infer", `{"inputs":[`+imagesInput("a", "b", "c")+`],"outputs":[{"name":"label"}]}`)
	a = answer{}
	_ = json.Unmarshal(w.Body.Bytes(), &a)
	if w.Code != 200 || len(a.Outputs) != 1 || string(mustJSON(a.Outputs[0].Data)) != `["Dog","Dog","Dog"]` || len(fc.gotMany) != 3 || a.ID != "" {
		t.Errorf("batch: %d %s", w.Code, w.Body)
	}
	// FP32, nested, in the model's layout.
	nested := `[[[[1,2],[3,4]],[[5,6],[7,8]],[[9,10],[11,12]]]]`
	w, a = infer(`{"inputs":[{"name":"tensor","datatype":"FP32","shape":[1,3,2,2],"data":` + nested + `}],"outputs":[{"name":"probabilities"}]}`)
	if w.Code != 200 || len(a.Outputs) != 1 || a.Outputs[0].Name != "probabilities" || len(fc.gotTensor) != 12 || fc.gotTensor[11] != 12 {
		t.Errorf("tensor: %d %s, classifier got %v", w.Code, w.Body, fc.gotTensor)
	}

	for _, c := range []struct {
		name, body string
		status     int
		words      string
	}{
		{"not JSON", `{"inputs":`, 400, "not valid JSON"},
		{"no inputs", `{"id":"1"}`, 400, `"inputs" is required`},
		{"two inputs", `{"inputs":[` + imagesInput("a") + `,` + imagesInput("b") + `]}`, 400, "exactly one input"},
		{"unknown input", `{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":["aGk="]}]}`, 400, `no input "x"`},
		{"wrong datatype", `{"inputs":[{"name":"image","datatype":"INT64","shape":[1],"data":[1]}]}`, 400, "BYTES or FP32"},
		{"image as FP32", `{"inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":[1]}]}`, 400, "must be BYTES"},
		{"shape and data disagree", `{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["aGk="]}]}`, 400, "needs 2"},
		{"shape of rank 2", `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1,1],"data":["aGk="]}]}`, 400, "want [-1]"},
		{"not base64", `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["**"]}]}`, 400, "not base64"},
		{"a number for BYTES", `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[7]}]}`, 400, "string of base64"},
		{"empty image", `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[""]}]}`, 400, "empty"},
		{"tensor of the wrong size", `{"inputs":[{"name":"tensor","datatype":"FP32","shape":[1,3,4,4],"data":[1]}]}`, 400, "want [-1 3 2 2]"},
		{"tensor short of data", `{"inputs":[{"name":"tensor","datatype":"FP32","shape":[1,3,2,2],"data":[1,2]}]}`, 400, "needs 12"},
		{"unknown output", `{"inputs":[` + imagesInput("a") + `],"outputs":[{"name":"logits"}]}`, 400, `no output "logits"`},
		{"binary extension", `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]}`, 400, "binary tensor data extension"},
		{"too many images", `{"inputs":[` + imagesInput("a", "b", "c", "d") + `]}`, 413, "at most 3 images"},
	} {
		w, _ := infer(c.body)
		var e map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != c.status || len(e) != 1 || !strings.Contains(e["error"], c.words) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, w.Code, w.Body, c.status, c.words)
		}
	}
	for path, status := range map[string]int{"/v2/models/other/infer": 404, "/v2/models/fake-model/versions/9/infer": 404} {
		if w := oipDo(r, "POST", path, `{"inputs":[`+imagesInput("a")+`]}`); w.Code != status {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
}

// The model's errors keep their status, in the protocol's shape; an
// image's error names its element.
func TestOIPInferModelErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		images []string
		status int
		words  string
	}{
		{model.ErrUnsupportedFormat, []string{"a"}, 415, "not an image"},
		{model.ErrCorruptImage, []string{"a"}, 422, "corrupt"},
		{nil, []string{"a", "not an image"}, 415, `input "image" element 1: `},
	} {
		fc := &fakeClassifier{res: okResult(), err: c.err}
		w := oipDo(oipRouter(fc, &fakeAuth{}), "POST", "/v2/models/fake-model/infer", `{"inputs":[`+imagesInput(c.images...)+`]}`)
		var e map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != c.status || !strings.Contains(e["error"], c.words) || len(e) != 1 {
			t.Errorf("%v: %d %s, want %d naming %q", c.err, w.Code, w.Body, c.status, c.words)
		}
	}
	busy := oipRouter(&fakeClassifier{err: admission.ErrBusy}, &fakeAuth{})
	if w := oipDo(busy, "POST", "/v2/models/fake-model/infer", `{"inputs":[`+imagesInput("a", "b")+`]}`); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("busy: %d %v", w.Code, w.Header())
	}
}

// Infer needs /upload's token and scope (401/403 with their challenges, in
// the protocol's shape); health and metadata do not.
func TestOIPAuth(t *testing.T) {
	fc := &fakeClassifier{res: okResult()}
	body := `{"inputs":[` + imagesInput("a") + `]}`
	for _, c := range []struct {
		auth   *fakeAuth
		status int
	}{{&fakeAuth{err: auth.ErrMissingToken}, 401}, {&fakeAuth{scopes: []string{"other"}}, 403}} {
		w := oipDo(oipRouter(fc, c.auth), "POST", "/v2/models/fake-model/infer", body)
		var e map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") == "" || e["error"] == "" || len(e) != 1 {
			t.Errorf("%d %v %s, want %d", w.Code, w.Header(), w.Body, c.status)
		}
	}
	if fc.calls.Load() != 0 {
		t.Error("the model ran for a refused caller")
	}
	open := oipRouter(fc, nil, func(d *Deps) { d.AuthDisabled = true })
	if w := oipDo(open, "POST", "/v2/models/fake-model/infer", body); w.Code != 200 {
		t.Errorf("auth disabled: %d %s", w.Code, w.Body)
	}
}

// Infer's body is capped by PREDICT_MAX_BYTES and reserved from the budget.
func TestOIPInferBodyCap(t *testing.T) {
	r := oipRouter(&fakeClassifier{res: okResult()}, &fakeAuth{}, func(d *Deps) { d.PredictMaxBytes = 100 })
	w := oipDo(r, "POST", "/v2/models/fake-model/infer", `{"inputs":[`+imagesInput(strings.Repeat("x", 200))+`]}`)
	if e := map[string]string{}; w.Code != 413 || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e["error"], "PREDICT_MAX_BYTES") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}
