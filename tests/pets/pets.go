// Package pets tells tests where their images are: the small fixture set
// committed under tests/testdata/images (always there) and the full pets
// dataset (optional). Both share one layout, split/class/name.jpg, and every
// fixture is a byte-identical copy of a dataset file.
//
// Tests that need the full dataset call Dataset: it skips them when the
// dataset is absent, or fails them when CATSDOGS_REQUIRE_DATA=1 (our CI).
package pets

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/image/draw"
)

const (
	// EnvData is the full dataset's folder, absolute or relative to the
	// repository root; `make test` sets it from DATA.
	EnvData = "CATSDOGS_DATA"
	// EnvRequire = "1" turns a missing dataset into a failure, so a CI that
	// has the dataset cannot silently lose the checks that need it.
	EnvRequire = "CATSDOGS_REQUIRE_DATA"
	// DefaultData is where the dataset sits by default, relative to the root.
	DefaultData = "../shared/datasets/pets"
)

var classes = []string{"cat", "dog", "other"}

// Fixtures is the committed image folder, given the repository root.
func Fixtures(repo string) string {
	return filepath.Join(repo, "tests", "testdata", "images")
}

// DatasetPath is where the full dataset is looked for.
func DatasetPath(repo string) string {
	p := os.Getenv(EnvData)
	if p == "" {
		p = DefaultData
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(repo, p)
	}
	return p
}

// Required reports whether a missing dataset must fail the tests.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Locate returns DatasetPath and whether a dataset is there (a test split
// with photos of every class).
func Locate(repo string) (dir string, ok bool) {
	dir = DatasetPath(repo)
	for _, c := range classes {
		if m, _ := filepath.Glob(filepath.Join(dir, "test", c, "*.jpg")); len(m) == 0 {
			return dir, false
		}
	}
	return dir, true
}

// Dataset returns the full dataset's folder for a check that needs it
// (`what`), and otherwise skips that check, or fails it when Required.
func Dataset(tb testing.TB, repo, what string) string {
	tb.Helper()
	dir, ok := Locate(repo)
	if ok {
		return dir
	}
	if Required() {
		tb.Fatalf("%s: no dataset at %s and %s=1", what, dir, EnvRequire)
	}
	tb.Skipf("%s skipped: no dataset at %s (set DATA=/path/to/pets for make, %s for go test)", what, dir, EnvData)
	return ""
}

// Find locates a dataset-relative file such as "test/cat/x.jpg": in the
// dataset when present, else among the fixtures. ok is false when neither
// has it and the dataset is absent and not required, i.e. the caller may
// skip this file; it is an error otherwise.
func Find(repo, rel string) (path string, ok bool, err error) {
	if dir, ok := Locate(repo); ok {
		p := filepath.Join(dir, rel)
		_, err := os.Stat(p)
		return p, err == nil, err
	}
	p := filepath.Join(Fixtures(repo), rel)
	if _, err := os.Stat(p); err == nil {
		return p, true, nil
	} else if Required() {
		return p, false, err
	}
	return p, false, nil
}

// Photos returns the fixture photos of the test split for one class,
// sorted by name so every run sees the same files.
func Photos(repo, class string) []string {
	m, _ := filepath.Glob(filepath.Join(Fixtures(repo), "test", class, "*.jpg"))
	sort.Strings(m)
	return m
}

// Sample returns the first perClass fixture photos of every class, in class
// order, and fails the test when there are fewer.
func Sample(tb testing.TB, repo string, perClass int) []string {
	tb.Helper()
	var out []string
	for _, cl := range classes {
		m := Photos(repo, cl)
		if len(m) < perClass {
			tb.Fatalf("want %d fixture photos of %s under %s, found %d", perClass, cl, Fixtures(repo), len(m))
		}
		out = append(out, m[:perClass]...)
	}
	return out
}

// Read returns a file's bytes or fails the test.
func Read(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Upscaled decodes a photo, resizes it to w x h with Catmull-Rom and encodes
// it as a JPEG of the given quality: a realistic big upload made at test
// time, so none is committed.
func Upscaled(path string, w, h, quality int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
