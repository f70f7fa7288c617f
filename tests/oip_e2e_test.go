//go:build linux

// End-to-end tests of the Open Inference Protocol: REST under /v2 and gRPC
// on GRPC_ADDR, against the real binary with auth on, through a generated Go
// client (oip/inferencepb), compared with /upload on the fixture photos.

package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "catsdogs/oip/inferencepb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A KServe-style REST infer with a base64 JPEG and a gRPC ModelInfer with
// the raw bytes return /upload's probabilities for the same photo, with
// auth enforced on both.
func TestOpenInferenceProtocolMatchesUpload(t *testing.T) {
	grpcAddr := closedAddr()
	s, err := launch("oip", map[string]string{"OAUTH2_ISSUER": iss.URL, "OAUTH2_AUDIENCE": audience,
		"GRPC_ADDR": grpcAddr, "INFERENCE_WORKERS": "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatalf("%v\n%s", err, s.logs.String())
	}
	token := "Bearer " + iss.Token(nil)
	noScope := "Bearer " + iss.Token(map[string]any{"scope": "read::other"})

	// The model's name is the served model's, whatever it is.
	var info struct{ Name, Version string }
	resp, body := do(t, s, "GET", "/model", "", nil, "")
	wantStatus(t, resp, body, http.StatusOK)
	mustJSON(t, body, &info)
	inferPath := "/v2/models/" + info.Name + "/infer"

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewGRPCInferenceServiceClient(conn)
	rpc := func(authz string) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		if authz != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
		}
		return ctx
	}

	within := func(what string, got []float32, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d probabilities, /upload has %d", what, len(got), len(want))
		}
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-6 {
				t.Errorf("%s: probabilities %v, /upload %v", what, got, want)
				return
			}
		}
	}
	for _, class := range []string{"cat", "dog", "other"} {
		data := photo(t, class, 0)
		resp, body := upload(t, s, token, "photo.jpg", data)
		want := wantPrediction(t, resp, body)

		// REST: the image as base64 in a BYTES tensor.
		req, _ := json.Marshal(map[string]any{"id": "req-" + class, "inputs": []map[string]any{{
			"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{base64.StdEncoding.EncodeToString(data)}}}})
		resp, body = do(t, s, "POST", inferPath, token, req, "application/json")
		wantStatus(t, resp, body, http.StatusOK)
		var rest struct {
			ModelName string `json:"model_name"`
			ID        string
			Outputs   []struct {
				Name  string
				Shape []int
				Data  json.RawMessage
			}
		}
		mustJSON(t, body, &rest)
		if rest.ModelName != info.Name || rest.ID != "req-"+class || len(rest.Outputs) != 2 {
			t.Fatalf("REST infer: %s", body)
		}
		var probs []float32
		var labels []string
		_ = json.Unmarshal(rest.Outputs[0].Data, &probs)
		_ = json.Unmarshal(rest.Outputs[1].Data, &labels)
		within(class+" REST", probs, want.Values)
		if len(labels) != 1 || labels[0] != want.Prediction {
			t.Errorf("%s REST label %v, /upload %q", class, labels, want.Prediction)
		}

		// gRPC: the file's bytes as they are, in raw_input_contents.
		r, err := client.ModelInfer(rpc(token), &pb.ModelInferRequest{ModelName: info.Name, Id: "rpc-" + class,
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{1}}},
			RawInputContents: [][]byte{data}})
		if err != nil {
			t.Fatalf("%s ModelInfer: %v", class, err)
		}
		if r.Id != "rpc-"+class || r.ModelName != info.Name || len(r.RawOutputContents) != 2 {
			t.Fatalf("%s ModelInfer: %v", class, r)
		}
		raw := r.RawOutputContents[0]
		got := make([]float32, len(raw)/4)
		for i := range got {
			got[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
		}
		within(class+" gRPC raw", got, want.Values)
		// And typed, as bytes_contents.
		r, err = client.ModelInfer(rpc(token), &pb.ModelInferRequest{ModelName: info.Name, Inputs: []*pb.ModelInferRequest_InferInputTensor{{
			Name: "image", Datatype: "BYTES", Shape: []int64{1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{data}}}}})
		if err != nil {
			t.Fatalf("%s ModelInfer (typed): %v", class, err)
		}
		within(class+" gRPC typed", r.Outputs[0].Contents.Fp32Contents, want.Values)
		if l := r.Outputs[1].Contents.BytesContents; len(l) != 1 || string(l[0]) != want.Prediction {
			t.Errorf("%s gRPC label %q, /upload %q", class, l, want.Prediction)
		}
	}

	// Auth: no token, and a token without the scope, on both.
	req := []byte(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + base64.StdEncoding.EncodeToString(photo(t, "cat", 0)) + `"]}]}`)
	for authz, status := range map[string]int{"": http.StatusUnauthorized, noScope: http.StatusForbidden} {
		resp, body := do(t, s, "POST", inferPath, authz, req, "application/json")
		var e map[string]string
		mustJSON(t, body, &e)
		if resp.StatusCode != status || e["error"] == "" || len(e) != 1 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("REST infer with %.10q: %d %v %s", authz, resp.StatusCode, resp.Header, body)
		}
	}
	infer := &pb.ModelInferRequest{ModelName: info.Name, Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: []int64{1}}},
		RawInputContents: [][]byte{photo(t, "cat", 0)}}
	for authz, code := range map[string]codes.Code{"": codes.Unauthenticated, noScope: codes.PermissionDenied, "Bearer forged.token.here": codes.Unauthenticated} {
		if _, err := client.ModelInfer(rpc(authz), infer); status.Code(err) != code {
			t.Errorf("ModelInfer with %.10q: %v, want %s", authz, err, code)
		}
	}

	// Health and metadata are open on both.
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/" + info.Name + "/ready", "/v2"} {
		if resp, body := do(t, s, "GET", path, "", nil, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if r, err := client.ServerReady(rpc(""), &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ServerReady: %v %v", r, err)
	}
	md, err := client.ModelMetadata(rpc(""), &pb.ModelMetadataRequest{Name: info.Name})
	if err != nil || md.Name != info.Name || md.Platform != "onnx_onnxv1" || len(md.Inputs) != 2 {
		t.Errorf("ModelMetadata: %v %v", md, err)
	}
	if _, err := client.ModelReady(rpc(""), &pb.ModelReadyRequest{Name: "no-such-model"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady of another model: %v", err)
	}

	// Metrics: REST by route template, never the raw path; gRPC by method.
	resp, body = do(t, s, "GET", "/metrics", "", nil, "")
	for _, want := range []string{
		`catsdogs_http_requests_total{method="POST",route="/v2/models/:name/infer",status="200"} 3`,
		`catsdogs_grpc_requests_total{code="OK",method="ModelInfer"} 6`,
		`catsdogs_grpc_requests_total{code="PermissionDenied",method="ModelInfer"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), fmt.Sprintf("route=%q", inferPath)) {
		t.Error("metrics carry a raw path")
	}
	wantNoServerErrors(t, s)
}
