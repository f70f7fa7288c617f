package oip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"catsdogs/api/b64"
)

// The REST (JSON) form of requests and answers, per the protocol's
// required_api.md. JSON has no bytes, so a BYTES input's elements are base64
// strings, the convention of KServe's and TorchServe's image examples; BYTES
// outputs (labels) are plain strings.

// jsonRequest is $inference_request.
type jsonRequest struct {
	ID         string         `json:"id"`
	Parameters map[string]any `json:"parameters"`
	Inputs     []struct {
		Name       string          `json:"name"`
		Shape      []int64         `json:"shape"`
		Datatype   string          `json:"datatype"`
		Parameters map[string]any  `json:"parameters"`
		Data       json.RawMessage `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs"`
}

// DecodeJSON reads an inference request's JSON form. Its errors are
// ErrInvalid's, worded for the client.
func DecodeJSON(body []byte) (*Request, error) {
	var jr jsonRequest
	if err := json.Unmarshal(body, &jr); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, invalidf("field %q cannot be a %s", typeErr.Field, typeErr.Value)
		}
		return nil, invalidf("the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(jr.Inputs) == 0 {
		return nil, invalidf(`"inputs" is required: [{"name": %q, "datatype": "BYTES", "shape": [1], "data": ["<base64 of the image>"]}]`, InputImage)
	}
	req := &Request{ID: jr.ID}
	for _, o := range jr.Outputs {
		req.Outputs = append(req.Outputs, o.Name)
	}
	for _, ji := range jr.Inputs {
		in := Input{Name: ji.Name, Datatype: ji.Datatype, Shape: ji.Shape}
		if _, ok := ji.Parameters["binary_data_size"]; ok {
			return nil, invalidf("input %q: the binary tensor data extension is not supported; send the data in JSON (BYTES as base64)", ji.Name)
		}
		var err error
		switch ji.Datatype {
		case "BYTES":
			in.Bytes, err = jsonBytes(ji.Data)
		case "FP32":
			in.FP32, err = jsonFloats(ji.Data)
		default:
			err = fmt.Errorf("datatype %q is not one this model takes (BYTES or FP32)", ji.Datatype)
		}
		if err != nil {
			return nil, invalidf("input %q: %v", ji.Name, err)
		}
		req.Inputs = append(req.Inputs, in)
	}
	return req, nil
}

// jsonBytes decodes BYTES data: base64 strings, flat or nested.
func jsonBytes(data json.RawMessage) ([][]byte, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, errors.New(`"data" must be a list of base64 strings`)
	}
	var out [][]byte
	for i, el := range list {
		if s := bytes.TrimSpace(el); len(s) > 0 && s[0] == '[' {
			inner, err := jsonBytes(s)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		b, err := b64.DecodeJSON(el)
		if errors.Is(err, b64.ErrNotString) {
			return nil, fmt.Errorf("element %d must be a string of base64", i)
		}
		if err != nil {
			return nil, fmt.Errorf("element %d is %v", i, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// jsonFloats decodes FP32 data, flat or nested: numbers hold no brackets,
// so dropping the inner ones flattens it in row-major order.
func jsonFloats(data json.RawMessage) ([]float32, error) {
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '[' {
		return nil, errors.New(`"data" must be a list of numbers`)
	}
	flat := make([]byte, 0, len(data))
	flat = append(flat, '[')
	for _, c := range data[1 : len(data)-1] {
		if c != '[' && c != ']' {
			flat = append(flat, c)
		}
	}
	flat = append(flat, ']')
	var out []float32
	if err := json.Unmarshal(flat, &out); err != nil {
		return nil, errors.New(`"data" must be a list of numbers, flat or nested`)
	}
	return out, nil
}

// JSONTensor is $response_output.
type JSONTensor struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data"`
}

// JSONResponse is $inference_response.
type JSONResponse struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version,omitempty"`
	ID           string       `json:"id,omitempty"`
	Outputs      []JSONTensor `json:"outputs"`
}

// JSON is the response's REST form.
func (r *Response) JSON() JSONResponse {
	out := JSONResponse{ModelName: r.ModelName, ModelVersion: r.ModelVersion, ID: r.ID, Outputs: []JSONTensor{}}
	for _, o := range r.Outputs {
		t := JSONTensor{Name: o.Name, Shape: o.Shape, Datatype: o.Datatype, Data: o.FP32}
		if o.Datatype == "BYTES" {
			s := make([]string, len(o.Bytes))
			for i, b := range o.Bytes {
				s[i] = string(b)
			}
			t.Data = s
		}
		if o.Labels != nil {
			t.Parameters = map[string]any{"labels": strings.Join(o.Labels, ",")}
		}
		out.Outputs = append(out.Outputs, t)
	}
	return out
}

// ErrorResponse is the protocol's error body, on every error of /v2.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ServerMetadata is the server metadata answer.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}
