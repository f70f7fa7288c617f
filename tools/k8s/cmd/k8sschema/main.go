// Command k8sschema writes the JSON schemas kubeconform validates against,
// offline: one standalone file per kind, from the OpenAPI (Swagger 2.0)
// document of a Kubernetes release and from CustomResourceDefinitions.
// Named as kubeconform's -schema-location template
// "DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json" finds them (it lower-cases
// the kind), e.g. deployment-apps-v1.json, servicemonitor-monitoring-v1.json.
//
//	k8sschema -out DIR -openapi swagger.json [CRD.yaml ...]
//
// Strict, as kubeconform's own schemas are in -strict mode: an object with
// listed properties takes no others (so a misspelled field fails), as the
// API server's strict field validation does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	out := flag.String("out", "", "folder to write the schemas to")
	openapi := flag.String("openapi", "", "Kubernetes' api/openapi-spec/swagger.json")
	flag.Parse()
	if *out == "" || *openapi == "" {
		fmt.Fprintln(os.Stderr, "usage: k8sschema -out DIR -openapi swagger.json [CRD.yaml ...]")
		os.Exit(2)
	}
	n, err := run(*out, *openapi, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
	fmt.Printf("k8sschema: %d schemas in %s\n", n, *out)
}

type object = map[string]any

func run(out, openapi string, crds []string) (int, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]object `json:"definitions"`
	}
	if err := readJSON(openapi, &doc); err != nil {
		return 0, err
	}
	n := 0
	for name, def := range doc.Definitions {
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk := g.(object)
			s := inline(def, doc.Definitions, map[string]bool{name: true})
			if err := write(out, gvk["kind"].(string), gvk["group"].(string), gvk["version"].(string), s); err != nil {
				return n, err
			}
			n++
		}
	}
	for _, path := range crds {
		m, err := crdSchemas(out, path)
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		n += m
	}
	return n, nil
}

// inline replaces every $ref with the definition it names, so each file
// stands alone; a definition that refers to itself (none of the workload
// kinds do) is cut to "anything" at the second visit.
func inline(v any, defs map[string]object, seen map[string]bool) any {
	switch v := v.(type) {
	case object:
		if ref, ok := v["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if seen[name] {
				return object{}
			}
			seen[name] = true
			defer delete(seen, name)
			return inline(defs[name], defs, seen)
		}
		o := object{}
		for k, x := range v {
			o[k] = inline(x, defs, seen)
		}
		// intstr.IntOrString is a string-typed definition with this format.
		if o["format"] == "int-or-string" {
			return object{"oneOf": []any{object{"type": "string"}, object{"type": "integer"}}}
		}
		return o
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = inline(x, defs, seen)
		}
		return a
	}
	return v
}

// strict closes every object that lists its properties, and turns the
// OpenAPI v3 extensions of CRD schemas kubeconform's JSON Schema draft does
// not know into their JSON Schema meaning.
func strict(v any) any {
	switch v := v.(type) {
	case object:
		o := object{}
		for k, x := range v {
			o[k] = strict(x)
		}
		if _, ok := o["properties"]; ok {
			if _, set := o["additionalProperties"]; !set && o["x-kubernetes-preserve-unknown-fields"] != true {
				o["additionalProperties"] = false
			}
		}
		if o["x-kubernetes-int-or-string"] == true {
			delete(o, "type")
			o["oneOf"] = []any{object{"type": "string"}, object{"type": "integer"}}
		}
		return o
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = strict(x)
		}
		return a
	}
	return v
}

// crdSchemas writes one schema per served version of each CRD in a file
// (one or more YAML documents).
func crdSchemas(out, path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range strings.Split(string(b), "\n---") {
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema object `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(d), &crd); err != nil {
			return n, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			s := v.Schema.OpenAPIV3Schema
			if s == nil {
				return n, fmt.Errorf("%s %s has no schema", crd.Spec.Names.Kind, v.Name)
			}
			// apiVersion, kind and metadata are the API server's to check;
			// CRD schemas may leave them out.
			props, _ := s["properties"].(object)
			if props == nil {
				props = object{}
				s["properties"] = props
			}
			for _, k := range []string{"apiVersion", "kind", "metadata"} {
				if _, ok := props[k]; !ok {
					props[k] = object{}
				}
			}
			if err := write(out, crd.Spec.Names.Kind, crd.Spec.Group, v.Name, s); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// write names the file as kubeconform looks it up: the kind, the group's
// first label (none for the core group) and the version, in lower case.
func write(out, kind, group, version string, schema any) error {
	suffix := "-" + strings.ToLower(version)
	if g := strings.Split(group, ".")[0]; g != "" {
		suffix = "-" + strings.ToLower(g) + suffix
	}
	s := strict(schema).(object)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, strings.ToLower(kind)+suffix+".json"), b, 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
