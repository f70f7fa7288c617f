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

// Session runs one model with a fixed pool of pre-allocated input and output
// tensors ("slots"), so a request allocates no tensors and no large buffers.
// It is safe for concurrent use by at most as many callers as it has slots:
// the caller admits them (model.Limiter), and Run never waits for a slot.
type Session struct {
	sess  *ort.DynamicAdvancedSession
	slots chan *slot
}

type slot struct {
	in  *ort.Tensor[float32]
	out *ort.Tensor[float32]
}

// NewSession opens path for sig's input and output with `slots` tensor pairs
// of inShape (batch of one) and [1, classes]. Each Run uses intraOpThreads
// threads inside ONNX Runtime.
func NewSession(path string, sig Signature, inShape []int64, slots, intraOpThreads int) (*Session, error) {
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
	s := &Session{sess: sess, slots: make(chan *slot, slots)}
	classes := sig.Output.Dims[1]
	for i := 0; i < slots; i++ {
		in, err := ort.NewEmptyTensor[float32](ort.NewShape(inShape...))
		if err != nil {
			s.Close()
			return nil, err
		}
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, classes))
		if err != nil {
			in.Destroy()
			s.Close()
			return nil, err
		}
		s.slots <- &slot{in: in, out: out}
	}
	return s, nil
}

// Run takes a free slot, lets fill write the input tensor, runs the model
// and hands the output scores to read (nil: ignored). Neither may keep the
// slices after it returns.
func (s *Session) Run(fill func(in []float32), read func(out []float32)) error {
	sl := <-s.slots
	defer func() { s.slots <- sl }()
	fill(sl.in.GetData())
	if err := s.sess.Run([]ort.Value{sl.in}, []ort.Value{sl.out}); err != nil {
		return err
	}
	if read != nil {
		read(sl.out.GetData())
	}
	return nil
}

// Close releases ONNX Runtime resources; no Run may be in progress.
func (s *Session) Close() {
	for {
		select {
		case sl := <-s.slots:
			sl.in.Destroy()
			sl.out.Destroy()
		default:
			if s.sess != nil {
				s.sess.Destroy()
				s.sess = nil
			}
			return
		}
	}
}
