package model

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"catsdogs/resources"
	"catsdogs/tests/testmodel"
)

func TestInt8Path(t *testing.T) {
	for in, want := range map[string]string{
		"resources/catsdogs-mobilenet.onnx": "resources/catsdogs-mobilenet-int8.onnx",
		"/m/model":                          "/m/model-int8",
	} {
		if got := Int8Path(in); got != want {
			t.Errorf("Int8Path(%q) = %q, want %q", in, got, want)
		}
	}
}

// eligibleMeta is what make quantize writes into an int8 copy's metadata.
func eligibleMeta() map[string]string {
	return map[string]string{
		"precision": "int8", "quantized_from_sha256": "abc", "labels": `["Cat","Dog","Other"]`,
		"val_macro_accuracy": "0.9810", "val_macro_accuracy_fp32": "0.9840",
		"val_per_class_accuracy": "[0.976, 0.980, 0.9873]", "val_per_class_accuracy_fp32": "[0.974, 0.984, 0.9923]",
	}
}

func TestInt8EligibleBounds(t *testing.T) {
	if err := int8Eligible(eligibleMeta(), "abc"); err != nil {
		t.Fatalf("a copy 0.3 points below on macro and 0.5 on Other: %v, want eligible (the bounds are inclusive)", err)
	}
	for name, c := range map[string]struct {
		edit func(m map[string]string)
		want string
	}{
		"another fp32 file":      {func(m map[string]string) { m["quantized_from_sha256"] = "def" }, "quantized from another file"},
		"not marked int8":        {func(m map[string]string) { delete(m, "precision") }, "precision=int8"},
		"macro 0.31 points down": {func(m map[string]string) { m["val_macro_accuracy"] = "0.9809" }, "macro accuracy 0.9809 is 0.31 points below"},
		"a class 0.6 points down": {func(m map[string]string) { m["val_per_class_accuracy"] = "[0.976, 0.978, 0.99]" },
			"on Dog is 0.9780, 0.60 points below"},
		"no measurement":   {func(m map[string]string) { delete(m, "val_macro_accuracy") }, "lacks the measured val/ accuracy"},
		"NaN accuracy":     {func(m map[string]string) { m["val_macro_accuracy"] = "NaN" }, "macro accuracy NaN"},
		"classes mismatch": {func(m map[string]string) { m["val_per_class_accuracy"] = "[0.99, 0.99]" }, "lacks the measured val/ accuracy"},
	} {
		m := eligibleMeta()
		c.edit(m)
		err := int8Eligible(m, "abc")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestChooseByTime(t *testing.T) {
	for _, c := range []struct {
		fp32, int8 float64
		want       string
	}{
		{6.0, 3.0, PrecisionInt8}, // VNNI: about half
		{10, 8.5, PrecisionInt8},  // exactly the margin
		{6.0, 5.5, PrecisionFP32}, // close: noise could have decided it
		{6.0, 7.5, PrecisionFP32}, // slower (int8 on a CPU without fast int8 dot products)
		{0, 3.0, PrecisionFP32},   // no fp32 figure: keep the reference
	} {
		got, reason := chooseByTime(c.fp32, c.int8)
		if got != c.want || !strings.Contains(reason, "ms") {
			t.Errorf("chooseByTime(%v, %v) = %s (%s), want %s with the figures", c.fp32, c.int8, got, reason, c.want)
		}
	}
}

// The committed default model and its committed int8 copy, served each way.
func TestLoadPrecision(t *testing.T) {
	fp32 := filepath.Join(repoRoot, resources.DefaultModel)
	if _, err := os.Stat(Int8Path(fp32)); err != nil {
		t.Skipf("no int8 copy of the default model: %v", err)
	}
	lib := testmodel.Library(t, repoRoot)
	load := func(path, setting string) (*Classifier, string) {
		var logs bytes.Buffer
		c, err := Load(Options{Path: path, Library: lib, Workers: 1, Precision: setting,
			Admission: testAdmission(0), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("%s with MODEL_PRECISION=%s: %v", path, setting, err)
		}
		t.Cleanup(c.Close)
		return c, logs.String()
	}
	c, _ := load(fp32, PrecisionFP32)
	if p := c.Info.Precision; p.Served != PrecisionFP32 || c.Info.File != filepath.Base(fp32) || p.Int8MS != 0 {
		t.Errorf("fp32: served %s from %s (%+v)", p.Served, c.Info.File, p)
	}
	c, _ = load(fp32, PrecisionInt8)
	if p := c.Info.Precision; p.Served != PrecisionInt8 || c.Info.File != filepath.Base(Int8Path(fp32)) {
		t.Errorf("int8: served %s from %s (%+v)", p.Served, c.Info.File, p)
	}
	c, _ = load(Int8Path(fp32), PrecisionFP32)
	if p := c.Info.Precision; p.Served != PrecisionInt8 || !strings.Contains(p.Reason, "MODEL_PATH is an int8 model") {
		t.Errorf("MODEL_PATH at the int8 file: %+v, want it served as int8", p)
	}
	// Auto: both timed, the choice is the one the figures give, and logged.
	c, logs := load(fp32, PrecisionAuto)
	p := c.Info.Precision
	if p.FP32MS <= 0 || p.Int8MS <= 0 {
		t.Fatalf("auto ran no start-up benchmark: %+v", p)
	}
	if want, _ := chooseByTime(p.FP32MS, p.Int8MS); p.Served != want {
		t.Errorf("auto served %s, the figures (%+v) say %s", p.Served, p, want)
	}
	if served := map[string]string{PrecisionFP32: filepath.Base(fp32), PrecisionInt8: filepath.Base(Int8Path(fp32))}[p.Served]; c.Info.File != served {
		t.Errorf("auto says %s but serves %s", p.Served, c.Info.File)
	}
	if !strings.Contains(logs, "msg=precision") || !strings.Contains(logs, "fp32_ms=") {
		t.Errorf("the choice is not logged with its figures:\n%s", logs)
	}
}

// A copy made from another fp32 file, or none at all.
func TestLoadPrecisionWithoutAnEligibleCopy(t *testing.T) {
	fp32 := filepath.Join(repoRoot, resources.DefaultModel)
	int8, err := os.ReadFile(Int8Path(fp32))
	if err != nil {
		t.Skipf("no int8 copy of the default model: %v", err)
	}
	lib := testmodel.Library(t, repoRoot)
	dir := t.TempDir()
	other := filepath.Join(dir, "model.onnx")
	data, err := os.ReadFile(fp32)
	if err != nil {
		t.Fatal(err)
	}
	// The same graph with one more metadata entry: another file for the sha256.
	if err := os.WriteFile(other, append(data, protoMetadataEntry("note", "retrained")...), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{Path: other, Library: lib, Workers: 1, Admission: testAdmission(0)}
	if _, err := Load(Options{Path: other, Library: lib, Workers: 1, Precision: PrecisionInt8, Admission: testAdmission(0)}); err == nil ||
		!strings.Contains(err.Error(), "make quantize") {
		t.Errorf("MODEL_PRECISION=int8 without a copy: %v, want an error saying how to make one", err)
	}
	c, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Info.Precision; p.Served != PrecisionFP32 || !strings.Contains(p.Reason, "no int8 copy") {
		t.Errorf("auto without a copy: %+v", p)
	}
	c.Close()
	if err := os.WriteFile(Int8Path(other), int8, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.Info.Precision; p.Served != PrecisionFP32 || !strings.Contains(p.Reason, "another file") || p.Int8MS != 0 {
		t.Errorf("auto with a stale copy: %+v, want fp32 and no benchmark", p)
	}
}

// protoMetadataEntry encodes one ModelProto.metadata_props entry (field 14):
// appended to a model file it is a valid edit (model/training/onnx_meta.py).
func protoMetadataEntry(k, v string) []byte {
	field := func(num int, payload []byte) []byte {
		return append([]byte{byte(num<<3 | 2), byte(len(payload))}, payload...)
	}
	return field(14, append(field(1, []byte(k)), field(2, []byte(v))...))
}

// The copy is served as the model: with the model's sidecar (<model>.json)
// and its name.
func TestLoadPrecisionInt8UsesTheModelsSidecar(t *testing.T) {
	fp32 := filepath.Join(repoRoot, resources.DefaultModel)
	dir := t.TempDir()
	for src, dst := range map[string]string{fp32: "m.onnx", Int8Path(fp32): "m-int8.onnx"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("no int8 copy of the default model: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "m.json"), []byte(`{"labels": ["Kitty", "Puppy", "Else"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Path: filepath.Join(dir, "m.onnx"), Library: testmodel.Library(t, repoRoot), Workers: 1,
		Precision: PrecisionInt8, Admission: testAdmission(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Info.File != "m-int8.onnx" || strings.Join(c.Info.Labels, ",") != "Kitty,Puppy,Else" {
		t.Errorf("served %s with labels %v, want the copy with m.json's labels", c.Info.File, c.Info.Labels)
	}
}
