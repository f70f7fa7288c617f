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
	list, ok := splitStrings(data)
	if !ok {
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

// splitStrings splits a JSON array, already validated by the request's
// Unmarshal, into its elements' raw text, when those are strings or arrays.
// It spares the images' base64, nearly all of a request's bytes, two more
// passes of encoding/json's scanner (validation and decoding, tens of MB/s),
// which are most of what infer costs over /upload; any other element (a
// number) is left to the caller.
func splitStrings(data []byte) ([][]byte, bool) {
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '[' {
		return nil, false
	}
	var out [][]byte
	rest := bytes.TrimSpace(data[1 : len(data)-1])
	for len(rest) > 0 {
		end := 0
		switch rest[0] {
		case '"':
			for end = 1; ; end++ {
				i := bytes.IndexAny(rest[end:], `"\`)
				if i < 0 {
					return nil, false
				}
				end += i
				if rest[end] == '"' {
					break
				}
				end++ // an escape: skip the escaped character
			}
			end++
		case '[':
			depth := 0
			for end = 0; end < len(rest); end++ {
				switch rest[end] {
				case '[':
					depth++
				case ']':
					depth--
				case '"': // strings in a nested array hold no brackets that count
					j := bytes.IndexByte(rest[end+1:], '"')
					if j < 0 {
						return nil, false
					}
					end += j + 1
				}
				if depth == 0 {
					break
				}
			}
			end++
		default: // a number, true, ...: the element is what it is
			end = bytes.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
		}
		if end > len(rest) {
			return nil, false
		}
		out = append(out, rest[:end])
		rest = bytes.TrimSpace(rest[end:])
		if len(rest) > 0 {
			if rest[0] != ',' {
				return nil, false
			}
			rest = bytes.TrimSpace(rest[1:])
		}
	}
	return out, true
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
