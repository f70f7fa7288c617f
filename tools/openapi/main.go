// Command openapi turns the Swagger 2.0 document swag generates from the code
// annotations (docs/swagger.json) into the OpenAPI 3.0 document the service
// serves at /openapi.json and /openapi.yaml. `make docs` runs it.
//
// Why this route: swag v1 reads our annotations well but only writes Swagger
// 2.0, and swag v2's OAS 3.1 output got multipart file uploads wrong.
// kin-openapi's openapi2conv does the mechanical part; fixup adds what
// Swagger 2.0 cannot say (an HTTP bearer scheme, `security: []` on open
// routes) and what annotations cannot carry (one example per answer the
// server really gives; tests/spec_e2e_test.go checks each against the real
// binary).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"catsdogs/model/decode"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

func main() {
	in := flag.String("in", "docs/swagger.json", "Swagger 2.0 document written by swag")
	out := flag.String("out", "docs", "directory for openapi.json and openapi.yaml")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var v2 openapi2.T
	if err := json.Unmarshal(raw, &v2); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return fmt.Errorf("converting to OpenAPI 3: %w", err)
	}
	if err := fixup(doc); err != nil {
		return err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return fmt.Errorf("the converted document is invalid: %w", err)
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	// YAML from the JSON, so both files say exactly the same thing.
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return err
	}
	var yml bytes.Buffer
	enc := yaml.NewEncoder(&yml)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "openapi.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "openapi.yaml"), yml.Bytes(), 0o644)
}

// bearerScheme is the name the annotations give the scheme (@Security).
const bearerScheme = "BearerAuth"

// fixup adds what the conversion cannot know. It fails, rather than guess,
// when the annotations and the example table disagree.
func fixup(doc *openapi3.T) error {
	// "/" is wherever this document was fetched from, so Swagger UI and
	// ReDoc call the instance serving them (clients that import the file set
	// their own base URL, e.g. http://localhost:8080).
	doc.Servers = openapi3.Servers{{URL: "/", Description: "the instance serving this document"}}

	// Swagger 2.0 has no bearer scheme, so the annotations declare an API
	// key in the Authorization header; clients then make users type
	// "Bearer ". As http/bearer they add it themselves.
	old := doc.Components.SecuritySchemes[bearerScheme]
	if old == nil || old.Value == nil {
		return fmt.Errorf("no security scheme %q in the annotations (main.go)", bearerScheme)
	}
	doc.Components.SecuritySchemes[bearerScheme] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type: "http", Scheme: "bearer", BearerFormat: "JWT", Description: old.Value.Description,
	}}

	errSchema := doc.Components.Schemas["api.ErrorResponse"]
	if errSchema == nil {
		return fmt.Errorf("no api.ErrorResponse schema: is it still used in the annotations?")
	}
	shared := sharedErrors(errSchema.Value)
	doc.Components.Responses = openapi3.ResponseBodies{"Error": {Value: shared}}
	used := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				return fmt.Errorf("%s has no operationId: add @ID to its annotations", where)
			}
			if op.Security == nil || len(*op.Security) == 0 {
				op.Security = &openapi3.SecurityRequirements{} // open: `security: []`
			}
			if body := op.RequestBody; body != nil && body.Value != nil {
				if err := fixUpload(where, body.Value); err != nil {
					return err
				}
			}
			for status, resp := range op.Responses.Map() {
				// swag v1 keeps the backslashes of \" in @Failure texts.
				if d := resp.Value.Description; d != nil {
					*d = strings.ReplaceAll(*d, `\"`, `"`)
				}
				key := op.OperationID + " " + status
				ex, ok := responseExamples[key]
				mt := resp.Value.Content.Get("application/json")
				// Every error needs examples: its code and detail are what a
				// client acts on. A JSON success without one still shows the
				// schema's field examples (swag's `example` tags).
				if !ok && mt != nil && status >= "400" {
					return fmt.Errorf("%s answers %s but tools/openapi/examples.go has no example for %q", where, status, key)
				}
				if !ok {
					continue
				}
				used[key] = true
				if mt == nil {
					return fmt.Errorf("%s %s: examples given but no application/json content", where, status)
				}
				mt.Examples = openapi3.Examples{}
				for _, e := range ex {
					var v any
					if err := json.Unmarshal([]byte(e.JSON), &v); err != nil {
						return fmt.Errorf("example %s %s: %w", key, e.Name, err)
					}
					mt.Examples[e.Name] = &openapi3.ExampleRef{Value: &openapi3.Example{Summary: e.Summary, Value: v}}
				}
			}
			// 404 and 405 can answer any request; documented once, shared.
			op.Responses.Set("default", &openapi3.ResponseRef{Ref: "#/components/responses/Error", Value: shared})
		}
	}
	for key := range responseExamples {
		if !used[key] {
			return fmt.Errorf("tools/openapi/examples.go has examples for %q, which the annotations do not document", key)
		}
	}
	return nil
}

// fixUpload makes the multipart body say what a client must send: file
// parts named "file", as binary (which is what makes Swagger UI and ReDoc
// show a file picker): exactly one for /upload, an array of them (the part
// repeated, OpenAPI's form encoding of an array) where the annotation says
// []file.
func fixUpload(where string, body *openapi3.RequestBody) error {
	mt := body.Content.Get("multipart/form-data")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return fmt.Errorf("%s: request body is not multipart/form-data", where)
	}
	file := mt.Schema.Value.Properties["file"]
	if file == nil || file.Value == nil {
		return fmt.Errorf("%s: multipart body has no \"file\" field", where)
	}
	binary := func(s *openapi3.Schema) {
		s.Type = &openapi3.Types{openapi3.TypeString}
		s.Format = "binary"
		delete(s.Extensions, "x-formData-name") // the converter's bookkeeping
	}
	formats := decode.FormatList() + ", recognised from its bytes"
	if file.Value.Items != nil && file.Value.Items.Value != nil {
		binary(file.Value.Items.Value)
		file.Value.Type = &openapi3.Types{openapi3.TypeArray}
		file.Value.Format = ""
		delete(file.Value.Extensions, "x-formData-name")
		file.Value.Description = "The images (" + formats + "), one part named \"file\" each, up to PREDICT_MAX_FILES."
		file.Value.MinItems = 1
	} else {
		binary(file.Value)
		file.Value.Description = "The image: " + formats + ". Exactly one file part per request."
	}
	mt.Schema.Value.Required = []string{"file"}
	mt.Encoding = map[string]*openapi3.Encoding{"file": {ContentType: "image/*, application/octet-stream"}}
	body.Required = true
	// The raw and JSON forms (api/forms.go) are in the operations'
	// descriptions, not here: Swagger UI opens a request body on its first
	// content type, and JSON sorts before multipart.
	return nil
}

// sharedErrors is the `default` answer of every operation: what the router
// answers for requests no route takes, and the last-resort 500.
func sharedErrors(schema *openapi3.Schema) *openapi3.Response {
	ex := openapi3.Examples{}
	for _, e := range defaultExamples {
		var v any
		_ = json.Unmarshal([]byte(e.JSON), &v)
		ex[e.Name] = &openapi3.ExampleRef{Value: &openapi3.Example{Summary: e.Summary, Value: v}}
	}
	desc := "Answers any route may give, with the same error body: 404 not_found for a path the service does not have, " +
		"405 method_not_allowed for a method the path does not take, 500 internal_error if something unexpected fails (logged)."
	return &openapi3.Response{
		Description: &desc,
		Content: openapi3.Content{"application/json": &openapi3.MediaType{
			Schema:   &openapi3.SchemaRef{Ref: "#/components/schemas/api.ErrorResponse", Value: schema},
			Examples: ex,
		}},
	}
}
