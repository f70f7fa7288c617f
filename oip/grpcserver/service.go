package grpcserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"catsdogs/oip"
	pb "catsdogs/oip/inferencepb"

	"google.golang.org/protobuf/proto"
)

func (s *Server) ready() bool { return s.o.Ready == nil || s.o.Ready() == nil }

func (s *Server) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (s *Server) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: s.ready()}, nil
}

func (s *Server) ModelReady(_ context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if err := s.o.Model.Find(req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: s.ready()}, nil
}

func (s *Server) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: "catsdogs", Version: s.o.Version, Extensions: []string{}}, nil
}

func (s *Server) ModelMetadata(_ context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if err := s.o.Model.Find(req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	md := s.o.Model.Metadata()
	tensors := func(list []oip.TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
		out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(list))
		for i, t := range list {
			out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &pb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: tensors(md.Inputs), Outputs: tensors(md.Outputs)}, nil
}

// ModelInfer runs an inference: auth and scope first, then the request's
// bytes are held in the memory budget while it runs (grpc has read the
// whole message, within MaxMessageBytes), then the protocol.
func (s *Server) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	ctx, err := s.authorize(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.o.Model.Find(req.GetModelName(), req.GetModelVersion()); err != nil {
		return nil, err
	}
	if s.o.Budget != nil {
		release, err := s.o.Budget.Reserve(int64(proto.Size(req)))
		if err != nil {
			return nil, err
		}
		defer release()
	}
	in, err := request(req)
	if err != nil {
		return nil, err
	}
	resp, err := s.o.Model.Infer(ctx, in)
	if err != nil {
		return nil, err
	}
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		c.results = resp.Results
	}
	return response(resp, len(req.GetRawInputContents()) > 0), nil
}

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{oip.ErrInvalid}, a...)...)
}

// request reads the inputs from their typed contents or from
// raw_input_contents, one entry per input in order.
func request(req *pb.ModelInferRequest) (*oip.Request, error) {
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, invalidf("raw_input_contents has %d entries for %d inputs", len(raw), len(req.GetInputs()))
	}
	out := &oip.Request{ID: req.GetId()}
	for _, o := range req.GetOutputs() {
		out.Outputs = append(out.Outputs, o.GetName())
	}
	for i, t := range req.GetInputs() {
		in := oip.Input{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape()}
		switch {
		case len(raw) > 0 && t.GetContents() != nil:
			return nil, invalidf("input %q: contents and raw_input_contents must not both be given", in.Name)
		case len(raw) > 0 && in.Datatype == "BYTES":
			in.Bytes = rawBytes(raw[i], in.Shape)
		case len(raw) > 0 && in.Datatype == "FP32":
			if len(raw[i])%4 != 0 {
				return nil, invalidf("input %q: %d raw bytes are not whole FP32 values", in.Name, len(raw[i]))
			}
			in.FP32 = make([]float32, len(raw[i])/4)
			for k := range in.FP32 {
				in.FP32[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i][4*k:]))
			}
		case in.Datatype == "BYTES":
			in.Bytes = t.GetContents().GetBytesContents()
		case in.Datatype == "FP32":
			in.FP32 = t.GetContents().GetFp32Contents()
		default:
			return nil, invalidf("input %q: datatype %q is not one this model takes (BYTES or FP32)", in.Name, in.Datatype)
		}
		out.Inputs = append(out.Inputs, in)
	}
	return out, nil
}

// rawBytes splits a raw BYTES tensor: each element is preceded by its length
// as 4 little-endian bytes, as Triton's and KServe's clients serialise it.
// A single element may also come bare (the image file as it is): a buffer
// that does not split exactly is that, when the shape holds one element.
func rawBytes(b []byte, shape []int64) [][]byte {
	var out [][]byte
	rest := b
	for len(rest) >= 4 {
		n := binary.LittleEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			break
		}
		out, rest = append(out, rest[4:4+n]), rest[4+n:]
	}
	if len(rest) == 0 && len(out) > 0 {
		return out
	}
	one := len(shape) > 0
	for _, d := range shape {
		one = one && d == 1
	}
	if one {
		return [][]byte{b}
	}
	return out // its count will not match the shape: oip says so
}

// response answers in raw_output_contents when the request used raw inputs
// (clients that send raw read raw), else in typed contents.
func response(r *oip.Response, raw bool) *pb.ModelInferResponse {
	out := &pb.ModelInferResponse{ModelName: r.ModelName, ModelVersion: r.ModelVersion, Id: r.ID}
	for _, o := range r.Outputs {
		t := &pb.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape}
		if o.Labels != nil {
			t.Parameters = map[string]*pb.InferParameter{"labels": {
				ParameterChoice: &pb.InferParameter_StringParam{StringParam: strings.Join(o.Labels, ",")}}}
		}
		switch {
		case raw && o.Datatype == "FP32":
			b := make([]byte, 4*len(o.FP32))
			for i, v := range o.FP32 {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
			out.RawOutputContents = append(out.RawOutputContents, b)
		case raw:
			var b []byte
			for _, e := range o.Bytes {
				b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
				b = append(b, e...)
			}
			out.RawOutputContents = append(out.RawOutputContents, b)
		case o.Datatype == "FP32":
			t.Contents = &pb.InferTensorContents{Fp32Contents: o.FP32}
		default:
			t.Contents = &pb.InferTensorContents{BytesContents: o.Bytes}
		}
		out.Outputs = append(out.Outputs, t)
	}
	return out
}
