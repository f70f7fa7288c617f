package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"catsdogs/tests/pets"
	"catsdogs/tests/testmodel"
)

func loadInt8(t *testing.T) (*Classifier, parityFile) {
	t.Helper()
	pf := readParity(t, "../resources")
	path := Int8Path(filepath.Join("../resources", pf.Model))
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no int8 copy of the default model: %v", err)
	}
	c, err := Load(Options{Path: path, Library: testmodel.MustLibrary(t, repoRoot), Workers: 1,
		Admission: testAdmission(runtime.GOMAXPROCS(0))}) // servedAccuracy's callers all wait
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if c.Info.Precision.Served != PrecisionInt8 {
		t.Fatalf("%s served as %+v", path, c.Info.Precision)
	}
	return c, pf
}

// The int8 copy of the default model against the fp32 model, both served
// by this build's decoder (libjpeg-turbo, or Go's with -tags purego, whose
// own distance from training TestParityWithTraining bounds): the same label
// on every parity image, near ties included, and logits (centred
// log-probabilities) within testmodel.Int8LogitTol.
func TestInt8Parity(t *testing.T) {
	c8, pf := loadInt8(t)
	c32, _ := loadParity(t, "../resources")
	checked := 0
	for _, im := range pf.Images {
		path, ok, err := pets.Find(repoRoot, im.File)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r8, err := c8.Classify(t.Context(), data)
		if err != nil {
			t.Fatalf("%s: %v", im.File, err)
		}
		r32, err := c32.Classify(t.Context(), data)
		if err != nil {
			t.Fatalf("%s: %v", im.File, err)
		}
		checked++
		if r8.Index != r32.Index {
			t.Errorf("%s: int8 predicts index %d (%v), fp32 %d (%v)", im.File, r8.Index, r8.Probabilities, r32.Index, r32.Probabilities)
		}
		if d := testmodel.LogitDistance(float64s(r8.Probabilities), float64s(r32.Probabilities)); d > testmodel.Int8LogitTol {
			t.Errorf("%s: int8 logits %.3f from fp32's (%v vs %v), more than %.2f", im.File, d, r8.Probabilities, r32.Probabilities, testmodel.Int8LogitTol)
		} else {
			t.Logf("%s: int8 logits %.3f from fp32's", im.File, d)
		}
	}
	if checked == 0 {
		t.Fatal("none of the parity images is in the fixtures and the dataset is absent")
	}
}

// TestServedAccuracyInt8: the whole test split through the int8 copy gives
// the accuracy the card records for it.
func TestServedAccuracyInt8(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	root := filepath.Join(pets.Dataset(t, repoRoot, "int8 served accuracy over the dataset's test split"), "test")
	c, _ := loadInt8(t)
	var metrics struct {
		Quantization map[string]struct {
			Int8File string `json:"int8_file"`
			Accuracy map[string]map[string]struct {
				Macro float64 `json:"macro"`
			} `json:"accuracy"`
		} `json:"quantization"`
	}
	b, err := os.ReadFile("../resources/metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &metrics); err != nil {
		t.Fatal(err)
	}
	card := -1.0
	for _, q := range metrics.Quantization {
		if q.Int8File == c.Info.File {
			card = q.Accuracy["int8"]["test"].Macro
		}
	}
	if card < 0 {
		t.Fatalf("resources/metrics.json records no quantization entry for %s", c.Info.File)
	}
	macro, perClass, n := servedAccuracy(t, c, root)
	t.Logf("int8 served macro accuracy %.4f on %d test images (card: %.4f); per class %v", macro, n, card, perClass)
	if math.Abs(macro-card) > 0.003 {
		t.Errorf("int8 served macro accuracy %.4f differs from the card's %.4f by more than 0.3 points", macro, card)
	}
}
