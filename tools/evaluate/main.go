// Command evaluate measures a model's accuracy through the serving path
// (model.Load + Classify: the service's decode, preprocessing and ONNX
// Runtime session) on one split of a dataset laid out as split/class/*.jpg,
// and prints it per class as JSON. `make quantize` uses it to hold the int8
// model to the fp32 one:
//
//	go run ./tools/evaluate -model resources/catsdogs-mobilenet-int8.onnx -data ../shared/datasets/pets -split val
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"catsdogs/admission"
	"catsdogs/model"
)

func main() {
	path := flag.String("model", "", "the .onnx model")
	data := flag.String("data", "", "the dataset folder (split/class/*.jpg)")
	split := flag.String("split", "val", "the split to classify")
	extra := flag.String("extra", "", "comma-separated more dataset folders whose split joins this one (people)")
	lib := flag.String("ort", "", "the ONNX Runtime library (default: where `make ort` puts it)")
	flag.Parse()
	if *path == "" || *data == "" {
		flag.Usage()
		os.Exit(2)
	}
	workers := runtime.GOMAXPROCS(0)
	// fp32 keeps the file asked for (an int8 file is served as int8 anyway).
	c, err := model.Load(model.Options{Path: *path, Library: *lib, Workers: workers, Precision: model.PrecisionFP32,
		Admission: admission.New(admission.Config{MemoryBudget: 1 << 30, QueueSize: workers})}) // our callers wait: none is refused busy
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	labels := c.Info.Labels
	type job struct {
		file string
		want int
	}
	var jobs []job
	roots := []string{*data}
	if *extra != "" {
		roots = append(roots, strings.Split(*extra, ",")...)
	}
	for _, root := range roots {
		for i, l := range labels {
			files, _ := filepath.Glob(filepath.Join(root, *split, strings.ToLower(l), "*.jpg"))
			sort.Strings(files)
			for _, f := range files {
				jobs = append(jobs, job{f, i})
			}
		}
	}
	if len(jobs) == 0 {
		log.Fatalf("no photos under %s/%s/<label>/", *data, *split)
	}
	correct, total := make([]int, len(labels)), make([]int, len(labels))
	var mu sync.Mutex
	work := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				b, err := os.ReadFile(j.file)
				if err != nil {
					log.Fatal(err)
				}
				r, err := c.Classify(context.Background(), b)
				if err != nil {
					log.Fatalf("%s: %v", j.file, err)
				}
				mu.Lock()
				total[j.want]++
				if r.Index == j.want {
					correct[j.want]++
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	res := struct {
		Model    string             `json:"model"`
		Split    string             `json:"split"`
		Photos   int                `json:"photos"`
		Macro    float64            `json:"macro"`
		Labels   []string           `json:"labels"` // the model's order
		PerClass map[string]float64 `json:"per_class"`
	}{filepath.Base(*path), *split, len(jobs), 0, labels, map[string]float64{}}
	for i, l := range labels {
		acc := float64(correct[i]) / float64(max(1, total[i]))
		res.PerClass[l] = acc
		res.Macro += acc / float64(len(labels))
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}
