package oip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	masked, long := maskLongStrings(body)
	if err := json.Unmarshal(masked, &jr); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, invalidf("field %q cannot be a %s", typeErr.Field, typeErr.Value)
		}
		return nil, invalidf("the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(jr.Inputs) == 0 {
		return nil, invalidf(`"inputs" is required: [{"name": %q, "datatype": "BYTES", "shape": [1], "data": ["<base64 of the image>"]}]`, InputImage)
	}
	req := &Request{ID: long.string(jr.ID)}
	for _, o := range jr.Outputs {
		req.Outputs = append(req.Outputs, long.string(o.Name))
	}
	for _, ji := range jr.Inputs {
		ji.Name, ji.Datatype = long.string(ji.Name), long.string(ji.Datatype)
		in := Input{Name: ji.Name, Datatype: ji.Datatype, Shape: ji.Shape}
		if _, ok := ji.Parameters["binary_data_size"]; ok {
			return nil, invalidf("input %q: the binary tensor data extension is not supported; send the data in JSON (BYTES as base64)", ji.Name)
		}
		var err error
		switch ji.Datatype {
		case "BYTES":
			in.Bytes, err = jsonBytes(ji.Data, long)
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

// jsonBytes decodes BYTES data: base64 strings, flat or nested; a masked
// string is read from long.
func jsonBytes(data json.RawMessage, long masked) ([][]byte, error) {
	list, ok := splitStrings(data)
	if !ok {
		return nil, errors.New(`"data" must be a list of base64 strings`)
	}
	var out [][]byte
	for i, el := range list {
		if s := bytes.TrimSpace(el); len(s) > 0 && s[0] == '[' {
			inner, err := jsonBytes(s, long)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		b, err := b64.DecodeJSON(long.literal(el))
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

// maskAt is the length from which maskLongStrings takes a string literal
// out: far above any name, id or datatype, far below any image.
const maskAt = 256

// maskPrefix starts a placeholder; a NUL cannot be sent unescaped.
const maskPrefix = `\u0000catsdogs-masked:`

// masked holds the literals (quotes included) maskLongStrings took out, in
// order; placeholder n names the n-th.
type masked [][]byte

// maskLongStrings returns body with every string literal of maskAt bytes or
// more replaced by a short placeholder, and those literals. encoding/json
// scans every byte twice (validation, then decoding) at tens of MB/s, and
// an image's base64 is nearly all of a request: masked, it is read once,
// by the base64 decoder. Literals that spell a NUL (\u0000) are taken out
// whatever their length, so a client cannot send a placeholder of its own.
// A literal with a raw control character or a malformed escape (invalid
// JSON) is left in place, as is everything when the body does not lex, so
// encoding/json's error is what the client gets.
func maskLongStrings(body []byte) ([]byte, masked) {
	var out []byte
	var long masked
	last := 0
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		end, nul, ok := stringEnd(body, i)
		if !ok {
			return body, nil
		}
		lit := body[i : end+1]
		if (len(lit) >= maskAt || nul) && !hasControl(lit) {
			out = append(out, body[last:i]...)
			out = append(out, '"')
			out = append(out, maskPrefix...)
			out = strconv.AppendInt(out, int64(len(long)), 10)
			out = append(out, '"')
			long = append(long, lit)
			last = end + 1
		}
		i = end
	}
	if long == nil {
		return body, nil
	}
	return append(out, body[last:]...), long
}

// stringEnd finds the closing quote of the string literal opening at
// body[i], checking its escapes as JSON defines them; nul reports a \u0000.
func stringEnd(body []byte, i int) (end int, nul, ok bool) {
	end = i + 1
	for {
		j := bytes.IndexAny(body[end:], `"\`)
		if j < 0 {
			return 0, false, false
		}
		end += j
		if body[end] == '"' {
			return end, nul, true
		}
		if end+1 >= len(body) {
			return 0, false, false
		}
		switch body[end+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			end += 2
		case 'u':
			if end+6 > len(body) {
				return 0, false, false
			}
			hex := body[end+2 : end+6]
			for _, c := range hex {
				if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
					return 0, false, false
				}
			}
			nul = nul || string(hex) == "0000"
			end += 6
		default:
			return 0, false, false
		}
	}
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// index is the literal a placeholder's decoded text names, or -1.
func (m masked) index(s string) int {
	n, ok := strings.CutPrefix(s, "\x00catsdogs-masked:")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || i >= len(m) {
		return -1
	}
	return i
}

// string undoes the masking of a decoded string field.
func (m masked) string(s string) string {
	if i := m.index(s); i >= 0 {
		var v string
		_ = json.Unmarshal(m[i], &v) // lexed as a string literal already
		return v
	}
	return s
}

// literal undoes the masking of a raw string literal.
func (m masked) literal(lit []byte) []byte {
	if len(m) == 0 {
		return lit
	}
	var s string
	if t := bytes.TrimSpace(lit); len(t) < 64 && json.Unmarshal(t, &s) == nil {
		if i := m.index(s); i >= 0 {
			return m[i]
		}
	}
	return lit
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
			e, _, ok := stringEnd(rest, 0)
			if !ok {
				return nil, false
			}
			end = e + 1
		case '[':
			depth := 0
			for end = 0; end < len(rest); end++ {
				switch rest[end] {
				case '[':
					depth++
				case ']':
					depth--
				case '"': // strings in a nested array hold no brackets that count
					e, _, ok := stringEnd(rest, end)
					if !ok {
						return nil, false
					}
					end = e
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
