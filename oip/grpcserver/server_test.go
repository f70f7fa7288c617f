package grpcserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"catsdogs/admission"
	"catsdogs/api"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/model/spec"
	"catsdogs/oip"
	pb "catsdogs/oip/inferencepb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// fakeModel is a FAKE classifier: every image is a Dog, "bad" is not an
// image; it records what it got.
type fakeModel struct {
	got    [][]byte
	tensor []float32
	busy   bool
}

var dog = &model.Result{Label: "Dog", Index: 1, Probabilities: []float32{0.2, 0.7, 0.1}, Batch: 1}

func (f *fakeModel) Classify(ctx context.Context, data []byte) (*model.Result, error) {
	items, err := f.ClassifyMany(ctx, [][]byte{data})
	if err != nil {
		return nil, err
	}
	return items[0].Result, items[0].Err
}

func (f *fakeModel) ClassifyMany(_ context.Context, images [][]byte) ([]model.Item, error) {
	if f.busy {
		return nil, admission.ErrBusy
	}
	f.got = append(f.got, images...)
	out := make([]model.Item, len(images))
	for i, im := range images {
		if string(im) == "bad" {
			out[i].Err = model.ErrUnsupportedFormat
		} else {
			out[i].Result = dog
		}
	}
	return out, nil
}

func (f *fakeModel) ClassifyTensor(_ context.Context, in []float32) ([]model.Item, error) {
	f.tensor = in
	return slices.Repeat([]model.Item{{Result: dog}}, len(in)/12), nil
}

// fakeAuth lets in the token "good" with the scope, "noscope" without it.
type fakeAuth struct{}

func (fakeAuth) Authenticate(r *http.Request) (*auth.Principal, error) {
	tok, err := auth.BearerToken(r)
	switch {
	case err != nil:
		return nil, err
	case tok == "good":
		return &auth.Principal{Subject: "s", Scopes: []string{"get::prediction"}}, nil
	case tok == "noscope":
		return &auth.Principal{Subject: "s", Scopes: []string{"other"}}, nil
	}
	return nil, auth.ErrInvalidToken
}

var info = model.Info{Name: "m", Version: "3", Labels: []string{"Cat", "Dog", "Other"},
	Spec: spec.Spec{Layout: spec.LayoutNCHW, Width: 2, Height: 2}}

func start(t *testing.T, f *fakeModel, ready func() error) (pb.GRPCInferenceServiceClient, *api.Metrics) {
	t.Helper()
	m := api.NewMetrics()
	s, err := New(Options{Model: oip.New(f, info, 3), Auth: fakeAuth{}, Scope: "get::prediction",
		Budget: admission.NewBudget(1 << 20), Ready: ready, MaxMessageBytes: 4096, Version: "v9", Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, lis, 0, time.Minute) }()
	conn, err := grpc.NewClient("passthrough:///buf", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return lis.DialContext(ctx)
	}), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return pb.NewGRPCInferenceServiceClient(conn), m
}

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

func imageInput(images ...string) *pb.ModelInferRequest_InferInputTensor {
	contents := &pb.InferTensorContents{}
	for _, im := range images {
		contents.BytesContents = append(contents.BytesContents, []byte(im))
	}
	return &pb.ModelInferRequest_InferInputTensor{Name: "image", Datatype: "BYTES", Shape: []int64{int64(len(images))}, Contents: contents}
}

func TestHealthAndMetadata(t *testing.T) {
	var notReady error
	c, _ := start(t, &fakeModel{}, func() error { return notReady })
	ctx := context.Background()
	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("live: %v %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ready: %v %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "m", Version: "3"}); err != nil || !r.Ready {
		t.Errorf("model ready: %v %v", r, err)
	}
	if r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{}); err != nil || r.Name != "catsdogs" || r.Version != "v9" {
		t.Errorf("server metadata: %v %v", r, err)
	}
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "m"})
	if err != nil || md.Platform != "onnx_onnxv1" || len(md.Inputs) != 2 || !slices.Equal(md.Inputs[1].Shape, []int64{-1, 3, 2, 2}) ||
		md.Outputs[0].Name != "probabilities" || !slices.Equal(md.Versions, []string{"3"}) {
		t.Errorf("model metadata: %v %v", md, err)
	}
	for _, err := range []error{
		func() error { _, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "x"}); return err }(),
		func() error { _, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "m", Version: "4"}); return err }(),
	} {
		if status.Code(err) != codes.NotFound {
			t.Errorf("unknown model: %v", err)
		}
	}
	notReady = errors.New("draining")
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || r.Ready {
		t.Errorf("not ready: %v %v", r, err)
	}
}

func TestModelInfer(t *testing.T) {
	f := &fakeModel{}
	c, _ := start(t, f, nil)
	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(withToken("good"), "x-request-id", "abc-1")
	r, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "m", Id: "7", Inputs: []*pb.ModelInferRequest_InferInputTensor{imageInput("a", "b")}},
		grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	if r.ModelName != "m" || r.ModelVersion != "3" || r.Id != "7" || len(r.Outputs) != 2 || len(r.RawOutputContents) != 0 {
		t.Fatalf("%v", r)
	}
	p, l := r.Outputs[0], r.Outputs[1]
	if !slices.Equal(p.Shape, []int64{2, 3}) || !slices.Equal(p.Contents.Fp32Contents, []float32{0.2, 0.7, 0.1, 0.2, 0.7, 0.1}) ||
		p.Parameters["labels"].GetStringParam() != "Cat,Dog,Other" {
		t.Errorf("probabilities %v", p)
	}
	if !slices.Equal(l.Shape, []int64{2}) || string(l.Contents.BytesContents[1]) != "Dog" {
		t.Errorf("label %v", l)
	}
	if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "abc-1" {
		t.Errorf("x-request-id %v", got)
	}

	// Raw inputs: the bare image file, or length-prefixed elements; the
	// answer comes raw too, and only the requested output.
	prefixed := binary.LittleEndian.AppendUint32(nil, 1)
	prefixed = append(binary.LittleEndian.AppendUint32(append(prefixed, 'x'), 2), "yz"...)
	for name, c2 := range map[string]struct {
		raw   []byte
		shape []int64
		want  []string
	}{"bare": {[]byte("\xff\xd8 the file"), []int64{1}, []string{"\xff\xd8 the file"}}, "prefixed": {prefixed, []int64{2}, []string{"x", "yz"}}} {
		f.got = nil
		r, err := c.ModelInfer(withToken("good"), &pb.ModelInferRequest{ModelName: "m",
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "BYTES", Shape: c2.shape}},
			Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "probabilities"}},
			RawInputContents: [][]byte{c2.raw}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(f.got) != len(c2.want) || string(f.got[len(f.got)-1]) != c2.want[len(c2.want)-1] || len(r.Outputs) != 1 || len(r.RawOutputContents) != 1 {
			t.Errorf("%s: model got %q; %v", name, f.got, r)
		}
		if v := math.Float32frombits(binary.LittleEndian.Uint32(r.RawOutputContents[0][4:])); v != 0.7 {
			t.Errorf("%s: raw p[1] %v", name, v)
		}
	}
	// FP32, typed.
	tensor := make([]float32, 12)
	tensor[11] = 5
	if _, err := c.ModelInfer(withToken("good"), &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "tensor", Datatype: "FP32", Shape: []int64{1, 3, 2, 2}, Contents: &pb.InferTensorContents{Fp32Contents: tensor}}}}); err != nil || f.tensor[11] != 5 {
		t.Errorf("tensor: %v %v", err, f.tensor)
	}
}

func TestModelInferErrors(t *testing.T) {
	f := &fakeModel{}
	c, m := start(t, f, nil)
	req := &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{imageInput("a")}}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		req  *pb.ModelInferRequest
		code codes.Code
	}{
		{"no token", context.Background(), req, codes.Unauthenticated},
		{"bad token", withToken("forged"), req, codes.Unauthenticated},
		{"no scope", withToken("noscope"), req, codes.PermissionDenied},
		{"unknown model", withToken("good"), &pb.ModelInferRequest{ModelName: "x", Inputs: req.Inputs}, codes.NotFound},
		{"not an image", withToken("good"), &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{imageInput("bad")}}, codes.InvalidArgument},
		{"too many", withToken("good"), &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{imageInput("a", "b", "c", "d")}}, codes.InvalidArgument},
		{"over the message cap", withToken("good"), &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{imageInput(string(make([]byte, 5000)))}}, codes.ResourceExhausted},
		{"raw and typed", withToken("good"), &pb.ModelInferRequest{ModelName: "m", Inputs: req.Inputs, RawInputContents: [][]byte{{1}}}, codes.InvalidArgument},
	} {
		if _, err := c.ModelInfer(tc.ctx, tc.req); status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if len(f.got) != 1 {
		t.Errorf("the model ran %d times, want once (not an image)", len(f.got))
	}
	f.busy = true
	var trailer metadata.MD
	if _, err := c.ModelInfer(withToken("good"), req, grpc.Trailer(&trailer)); status.Code(err) != codes.Unavailable || len(trailer.Get("retry-after")) != 1 {
		t.Errorf("busy: %v, trailer %v", err, trailer)
	}
	// Counted by method and code, with auth's and the queue's reasons.
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`catsdogs_grpc_requests_total{code="PermissionDenied",method="ModelInfer"} 1`,
		`catsdogs_grpc_requests_total{code="Unavailable",method="ModelInfer"} 1`,
		`catsdogs_auth_failures_total{reason="insufficient_scope"} 1`,
		`catsdogs_rejected_total{reason="queue_full"} 1`,
	} {
		if !strings.Contains(w.Body.String(), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}
