// Package oip is the Open Inference Protocol (KServe's "v2" protocol, also
// Triton's and MLServer's) over the one model this service serves, free of
// any transport: the model's metadata, and an inference request and its
// answer as tensors. api serves it over REST (api/oip.go, with json.go's
// wire form) and oip/grpcserver over gRPC; both run it under the same auth,
// admission and error mapping as /upload.
//
// The model takes either input, one per request:
//   - "image": BYTES, shape [N], one encoded image (JPEG, PNG, ...) per
//     element, decoded and preprocessed as /upload does;
//   - "tensor": FP32 in the model's own input layout, [N,3,H,W] (or
//     [N,H,W,3]), already preprocessed.
//
// It answers "probabilities" (FP32 [N, labels], in the model's label order)
// and "label" (BYTES [N], the most probable label), or those requested.
package oip

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"catsdogs/model"
	"catsdogs/model/spec"
)

// Tensor names and the platform, as the model's metadata publishes them.
const (
	InputImage          = "image"
	InputTensor         = "tensor"
	OutputProbabilities = "probabilities"
	OutputLabel         = "label"
	Platform            = "onnx_onnxv1"
)

// The errors of a request, besides the model's (model/errors.go) and
// admission's, which keep their meaning here.
var (
	ErrModelNotFound = errors.New("model not found")           // 404, NOT_FOUND
	ErrInvalid       = errors.New("invalid inference request") // 400, INVALID_ARGUMENT
	ErrTooMany       = errors.New("too many images")           // 413, like /predict's too_many_files
)

// invalid is ErrInvalid (or another kind) with the words for the client.
type invalid struct {
	kind   error
	detail string
}

func (e invalid) Error() string { return e.detail }
func (e invalid) Unwrap() error { return e.kind }

func invalidf(format string, a ...any) error {
	return invalid{ErrInvalid, fmt.Sprintf(format, a...)}
}

// Classifier is what the protocol needs of the model (*model.Classifier).
type Classifier interface {
	// Classify classifies one encoded image.
	Classify(ctx context.Context, data []byte) (*model.Result, error)
	// ClassifyMany classifies several, admitted as one request, one Item
	// each in order; its error is for the request as a whole.
	ClassifyMany(ctx context.Context, images [][]byte) ([]model.Item, error)
	// ClassifyTensor classifies preprocessed images, as ClassifyMany.
	ClassifyTensor(ctx context.Context, in []float32) ([]model.Item, error)
}

// Model is the served model as the protocol sees it.
type Model struct {
	clf       Classifier
	info      model.Info
	maxImages int
	image     []int64 // one image's tensor shape, without the batch dimension
}

// New describes the model info names; maxImages bounds the images of one
// request (PREDICT_MAX_FILES, as for /predict).
func New(clf Classifier, info model.Info, maxImages int) *Model {
	image := []int64{3, int64(info.Spec.Height), int64(info.Spec.Width)}
	if info.Spec.Layout == spec.LayoutNHWC {
		image = []int64{int64(info.Spec.Height), int64(info.Spec.Width), 3}
	}
	return &Model{clf: clf, info: info, maxImages: max(1, maxImages), image: image}
}

// Name and Version of the model, from its metadata.
func (m *Model) Name() string    { return m.info.Name }
func (m *Model) Version() string { return m.info.Version }

// Find checks that a request names this model (and, if it names one, its
// version).
func (m *Model) Find(name, version string) error {
	if name != m.info.Name {
		return invalid{ErrModelNotFound, fmt.Sprintf("no model %q: this server serves %q", name, m.info.Name)}
	}
	if version != "" && version != m.info.Version {
		return invalid{ErrModelNotFound, fmt.Sprintf("model %q has no version %q: it serves version %q", name, version, m.info.Version)}
	}
	return nil
}

// TensorMetadata describes one input or output; -1 is a variable dimension.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the model metadata answer.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// Metadata describes the model's inputs and outputs.
func (m *Model) Metadata() ModelMetadata {
	md := ModelMetadata{Name: m.info.Name, Platform: Platform,
		Inputs: []TensorMetadata{
			{InputImage, "BYTES", []int64{-1}},
			{InputTensor, "FP32", append([]int64{-1}, m.image...)},
		},
		Outputs: []TensorMetadata{
			{OutputProbabilities, "FP32", []int64{-1, int64(len(m.info.Labels))}},
			{OutputLabel, "BYTES", []int64{-1}},
		}}
	if m.info.Version != "" {
		md.Versions = []string{m.info.Version}
	}
	return md
}

// Input is one input tensor of a request, whichever transport brought it.
type Input struct {
	Name, Datatype string
	Shape          []int64
	Bytes          [][]byte  // BYTES elements
	FP32           []float32 // FP32 elements, row-major
}

// Request is an inference request.
type Request struct {
	ID      string
	Inputs  []Input
	Outputs []string // requested outputs; none: all
}

// Output is one output tensor.
type Output struct {
	Name, Datatype string
	Shape          []int64
	FP32           []float32
	Bytes          [][]byte
	// Labels of the probabilities' columns, as the output's "labels" parameter.
	Labels []string
}

// Response answers a Request.
type Response struct {
	ModelName, ModelVersion, ID string
	Outputs                     []Output
	// Results are the classified images, for metrics and logs.
	Results []*model.Result
}

// Infer runs a request that Find accepted.
func (m *Model) Infer(ctx context.Context, req *Request) (*Response, error) {
	outputs, err := m.outputs(req.Outputs)
	if err != nil {
		return nil, err
	}
	if len(req.Inputs) != 1 {
		return nil, invalidf("send exactly one input, %q (BYTES: encoded images) or %q (FP32: preprocessed), not %d", InputImage, InputTensor, len(req.Inputs))
	}
	in := req.Inputs[0]
	var results []*model.Result
	switch in.Name {
	case InputImage:
		results, err = m.images(ctx, in)
	case InputTensor:
		results, err = m.tensor(ctx, in)
	default:
		return nil, invalidf("no input %q: this model takes %q (BYTES) or %q (FP32)", in.Name, InputImage, InputTensor)
	}
	if err != nil {
		return nil, err
	}
	resp := &Response{ModelName: m.info.Name, ModelVersion: m.info.Version, ID: req.ID, Results: results}
	n := int64(len(results))
	for _, name := range outputs {
		o := Output{Name: name}
		switch name {
		case OutputProbabilities:
			o.Datatype, o.Shape, o.Labels = "FP32", []int64{n, int64(len(m.info.Labels))}, m.info.Labels
			for _, r := range results {
				o.FP32 = append(o.FP32, r.Probabilities...)
			}
		case OutputLabel:
			o.Datatype, o.Shape = "BYTES", []int64{n}
			for _, r := range results {
				o.Bytes = append(o.Bytes, []byte(r.Label))
			}
		}
		resp.Outputs = append(resp.Outputs, o)
	}
	return resp, nil
}

// outputs checks the requested outputs; none requested is all of them.
func (m *Model) outputs(requested []string) ([]string, error) {
	all := []string{OutputProbabilities, OutputLabel}
	if len(requested) == 0 {
		return all, nil
	}
	var out []string
	for _, name := range requested {
		if !slices.Contains(all, name) {
			return nil, invalidf("no output %q: this model has %q and %q", name, OutputProbabilities, OutputLabel)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// batch checks shape against the elements given and returns the image count.
func (m *Model) batch(in Input, datatype string, elements int, image []int64) (int, error) {
	if in.Datatype != datatype {
		return 0, invalidf("input %q must be %s, not %q", in.Name, datatype, in.Datatype)
	}
	want := fmt.Sprint(append([]int64{-1}, image...))
	if len(in.Shape) != 1+len(image) || in.Shape[0] < 1 || !slices.Equal(in.Shape[1:], image) {
		return 0, invalidf("input %q has shape %v; want %s, N the number of images", in.Name, in.Shape, want)
	}
	n := in.Shape[0]
	if n > int64(m.maxImages) {
		return 0, invalid{ErrTooMany, fmt.Sprintf("send at most %d images per request (PREDICT_MAX_FILES); split the rest into further requests", m.maxImages)}
	}
	size := int64(1)
	for _, d := range image {
		size *= d
	}
	if int64(elements) != n*size {
		return 0, invalidf("input %q has %d elements; its shape %v needs %d", in.Name, elements, in.Shape, n*size)
	}
	return int(n), nil
}

// images classifies a BYTES input, each element an encoded image. One bad
// image fails the request: the protocol has no per-element errors.
func (m *Model) images(ctx context.Context, in Input) ([]*model.Result, error) {
	n, err := m.batch(in, "BYTES", len(in.Bytes), nil)
	if err != nil {
		return nil, err
	}
	for i, data := range in.Bytes {
		if len(data) == 0 {
			return nil, invalidf("input %q element %d is empty", in.Name, i)
		}
	}
	if n == 1 { // as /upload: weight 1, no fan-out
		r, err := m.clf.Classify(ctx, in.Bytes[0])
		if err != nil {
			return nil, err
		}
		return []*model.Result{r}, nil
	}
	items, err := m.clf.ClassifyMany(ctx, in.Bytes)
	return results(in.Name, items, err)
}

// tensor classifies an FP32 input in the model's layout.
func (m *Model) tensor(ctx context.Context, in Input) ([]*model.Result, error) {
	if _, err := m.batch(in, "FP32", len(in.FP32), m.image); err != nil {
		return nil, err
	}
	items, err := m.clf.ClassifyTensor(ctx, in.FP32)
	return results(in.Name, items, err)
}

func results(input string, items []model.Item, err error) ([]*model.Result, error) {
	if err != nil {
		return nil, err
	}
	out := make([]*model.Result, len(items))
	for i, it := range items {
		if it.Err != nil {
			return nil, elementError{fmt.Sprintf("input %q element %d: ", input, i), it.Err}
		}
		out[i] = it.Result
	}
	return out, nil
}

// elementError names the element an image's error is about, keeping the
// error for errors.Is (a corrupt image is still 422).
type elementError struct {
	where string
	err   error
}

func (e elementError) Error() string { return e.where + e.err.Error() }
func (e elementError) Unwrap() error { return e.err }
