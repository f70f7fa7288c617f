package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Tensor names one input or output and its dimensions (-1: dynamic).
type Tensor struct {
	Name string
	Dims []int64
}

// Signature is what a model file declares: its input, its first output and
// its metadata_props.
type Signature struct {
	Input, Output Tensor
	Metadata      map[string]string
}

// Inspect reads path's signature without creating a session, and checks it
// is an image classifier: one float32 input of rank 4 (NCHW or NHWC) and a
// float32 [batch, classes] output. Errors name the file.
func Inspect(path string) (Signature, error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return Signature{}, fmt.Errorf("%s is not a loadable ONNX model: %w", path, err)
	}
	if len(ins) != 1 || len(outs) < 1 {
		return Signature{}, fmt.Errorf("%s: want exactly 1 input (an image batch), got %d inputs and %d outputs", path, len(ins), len(outs))
	}
	in, out := ins[0], outs[0]
	if in.OrtValueType != ort.ONNXTypeTensor || in.DataType != ort.TensorElementDataTypeFloat || len(in.Dimensions) != 4 {
		return Signature{}, fmt.Errorf("%s: input %s must be a float32 tensor of rank 4 (NCHW or NHWC)", path, in.String())
	}
	if out.OrtValueType != ort.ONNXTypeTensor || out.DataType != ort.TensorElementDataTypeFloat || len(out.Dimensions) != 2 || out.Dimensions[1] < 2 {
		return Signature{}, fmt.Errorf("%s: output %s must be float32 [batch, classes]", path, out.String())
	}
	meta, err := metadata(path)
	if err != nil {
		return Signature{}, fmt.Errorf("%s: reading metadata: %w", path, err)
	}
	return Signature{
		Input:    Tensor{Name: in.Name, Dims: in.Dimensions},
		Output:   Tensor{Name: out.Name, Dims: out.Dimensions},
		Metadata: meta,
	}, nil
}

// metadata returns the model's custom metadata_props.
func metadata(path string) (map[string]string, error) {
	meta, err := ort.GetModelMetadata(path)
	if err != nil {
		return nil, err
	}
	defer meta.Destroy()
	keys, err := meta.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for _, k := range keys {
		if v, ok, err := meta.LookupCustomMetadataMap(k); err == nil && ok {
			kv[k] = v
		}
	}
	return kv, nil
}

// Session runs one model with a fixed pool of "slots", each owning input and
// output buffers for up to maxBatch images, so a request allocates no
// tensors and no large buffers. It is safe for concurrent use by at most as
// many callers as it has slots: the caller admits them, and Run never waits
// for a slot.
type Session struct {
	sess     *ort.DynamicAdvancedSession
	slots    chan *slot
	inShape  []int64 // one image, batch dimension first
	classes  int64
	maxBatch int
}

// slot holds one buffer pair and, made on first use, the tensors that view
// its first n images for each batch size n (ORT needs the exact shape).
type slot struct {
	in, out []float32
	tensors map[int][2]*ort.Tensor[float32]
}

// NewSession opens path for sig's input and output with `slots` buffer pairs
// for maxBatch images of inShape (whose batch dimension is ignored) and
// [n, classes]. Each Run uses intraOpThreads threads inside ONNX Runtime.
// maxBatch > 1 needs a model whose batch dimension is dynamic.
func NewSession(path string, sig Signature, inShape []int64, slots, intraOpThreads, maxBatch int) (*Session, error) {
	if maxBatch < 1 {
		maxBatch = 1
	}
	if maxBatch > 1 && sig.Input.Dims[0] > 0 {
		return nil, fmt.Errorf("%s: input %s %v has a fixed batch size of %d: batching needs a dynamic one",
			path, sig.Input.Name, sig.Input.Dims, sig.Input.Dims[0])
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	// ORT sizes its pools from the host's cores, not the container's quota:
	// set both explicitly.
	if err := opts.SetIntraOpNumThreads(intraOpThreads); err != nil {
		return nil, err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := opts.SetExecutionMode(ort.ExecutionModeSequential); err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, err
	}
	// Busy-spinning worker threads burn the CPU other requests need.
	_ = opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
	sess, err := ort.NewDynamicAdvancedSession(path, []string{sig.Input.Name}, []string{sig.Output.Name}, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: creating ONNX Runtime session: %w", path, err)
	}
	s := &Session{sess: sess, slots: make(chan *slot, slots), inShape: inShape, classes: sig.Output.Dims[1], maxBatch: maxBatch}
	per := s.ImageSize()
	for i := 0; i < slots; i++ {
		s.slots <- &slot{
			in:      make([]float32, maxBatch*per),
			out:     make([]float32, maxBatch*int(s.classes)),
			tensors: map[int][2]*ort.Tensor[float32]{},
		}
	}
	return s, nil
}

// ImageSize is the number of float32 values of one image's input.
func (s *Session) ImageSize() int {
	n := 1
	for _, d := range s.inShape[1:] {
		n *= int(d)
	}
	return n
}

// Classes is the length of one image's output.
func (s *Session) Classes() int { return int(s.classes) }

// MaxBatch is the most images one Run takes.
func (s *Session) MaxBatch() int { return s.maxBatch }

// Run takes a free slot, lets fill write the input of n images (n×ImageSize
// values, image after image), runs the model once over all n and hands the
// n×Classes output scores to read (nil: ignored). Neither may keep the
// slices after it returns.
func (s *Session) Run(n int, fill func(in []float32), read func(out []float32)) error {
	if n < 1 || n > s.maxBatch {
		return fmt.Errorf("batch of %d images: want 1 to %d", n, s.maxBatch)
	}
	sl := <-s.slots
	defer func() { s.slots <- sl }()
	t, err := sl.view(n, s)
	if err != nil {
		return err
	}
	fill(sl.in[:n*s.ImageSize()])
	if err := s.sess.Run([]ort.Value{t[0]}, []ort.Value{t[1]}); err != nil {
		return err
	}
	if read != nil {
		read(sl.out[:n*int(s.classes)])
	}
	return nil
}

// view returns the input and output tensors over the slot's first n images.
func (sl *slot) view(n int, s *Session) ([2]*ort.Tensor[float32], error) {
	if t, ok := sl.tensors[n]; ok {
		return t, nil
	}
	shape := append([]int64{int64(n)}, s.inShape[1:]...)
	in, err := ort.NewTensor(ort.NewShape(shape...), sl.in[:n*s.ImageSize()])
	if err != nil {
		return [2]*ort.Tensor[float32]{}, err
	}
	out, err := ort.NewTensor(ort.NewShape(int64(n), s.classes), sl.out[:n*int(s.classes)])
	if err != nil {
		in.Destroy()
		return [2]*ort.Tensor[float32]{}, err
	}
	t := [2]*ort.Tensor[float32]{in, out}
	sl.tensors[n] = t
	return t, nil
}

// Close releases ONNX Runtime resources; no Run may be in progress.
func (s *Session) Close() {
	for {
		select {
		case sl := <-s.slots:
			for _, t := range sl.tensors {
				t[0].Destroy()
				t[1].Destroy()
			}
		default:
			if s.sess != nil {
				s.sess.Destroy()
				s.sess = nil
			}
			return
		}
	}
}

// Probe runs a model for offline tools (calibration of a quantized model), not
// for serving: one image at a time, every named output copied out as float32.
type Probe struct {
	sess    *ort.DynamicAdvancedSession
	outputs []string
}

// NewProbe opens path with one input and the named outputs, on `threads`
// ONNX Runtime threads and with graph optimisations off, so the tensors it
// returns are the ones the graph names, not fused away.
func NewProbe(path, input string, outputs []string, threads int) (*Probe, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, err
	}
	sess, err := ort.NewDynamicAdvancedSession(path, []string{input}, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: creating ONNX Runtime session: %w", path, err)
	}
	return &Probe{sess: sess, outputs: outputs}, nil
}

// Run feeds one input of the given shape and returns each output's values,
// in the order of the names NewProbe was given.
func (p *Probe) Run(shape []int64, in []float32) ([][]float32, error) {
	t, err := ort.NewTensor(ort.NewShape(shape...), in)
	if err != nil {
		return nil, err
	}
	defer t.Destroy()
	outs := make([]ort.Value, len(p.outputs))
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	if err := p.sess.Run([]ort.Value{t}, outs); err != nil {
		return nil, err
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		ft, ok := o.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("output %s is not a float32 tensor", p.outputs[i])
		}
		res[i] = append([]float32(nil), ft.GetData()...)
	}
	return res, nil
}

// Close releases the session.
func (p *Probe) Close() { p.sess.Destroy() }

// OutputNames lists path's outputs in order.
func OutputNames(path string) ([]string, error) {
	_, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not a loadable ONNX model: %w", path, err)
	}
	names := make([]string, len(outs))
	for i, o := range outs {
		names[i] = o.Name
	}
	return names, nil
}
