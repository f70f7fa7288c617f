package main

// Peers (issue 13): two implementations of the service's POST /upload in
// other stacks, serving the same ONNX model with the same preprocessing, one
// image per request, that the bench starts and loads like the service:
//
//	fastify  Node.js: fastify + @fastify/multipart, sharp, onnxruntime-node
//	         (tools/bench/peers/fastify; `make bench-peers` runs npm ci into
//	         build/peers/fastify)
//	fastapi  Python: FastAPI + uvicorn (1 worker), OpenCV imdecode/resize and
//	         cv2.dnn (tools/bench/peers/fastapi; Debian's packages, run with
//	         /usr/bin/python3)
//
// Both listen on 127.0.0.1:$PORT, answer GET /health, and take the
// preprocessing as environment variables (see peerEnv).

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"catsdogs/model/spec"
	"catsdogs/tools/internal/loadkit"
)

const (
	peerDir        = "tools/bench/peers"   // sources, relative to the repository root
	peerFastifyDir = "build/peers/fastify" // where `make bench-peers` installs node_modules
	peerReadyIn    = 60 * time.Second
)

// peerPython is the interpreter with Debian's python3-fastapi, -uvicorn,
// -opencv and -multipart (not a pyenv or venv python3 earlier in PATH).
var peerPython = "/usr/bin/python3"

// peerNames are the peers, in the order the bench reports them.
var peerNames = []string{"fastify", "fastapi"}

// fetchPreprocessing reads the preprocessing of the service at base (token
// may be "" when auth is off).
func fetchPreprocessing(base, token string) (spec.Spec, error) {
	var m struct {
		Preprocessing spec.Spec `json:"preprocessing"`
	}
	req, err := http.NewRequest(http.MethodGet, base+"/model", nil)
	if err != nil {
		return m.Preprocessing, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return m.Preprocessing, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m.Preprocessing, fmt.Errorf("GET %s/model: %s", base, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return m.Preprocessing, fmt.Errorf("GET %s/model: %w", base, err)
	}
	return m.Preprocessing, nil
}

// peerEnv is the preprocessing as the peers read it. The peers implement what
// model/training exports (shorter side + centre crop, RGB, pixel/255); any
// other spec is an error rather than a comparison of different work.
func peerEnv(p spec.Spec) ([]string, error) {
	switch {
	case p.Resize != "" && p.Resize != spec.ResizeCenterCrop:
		return nil, fmt.Errorf("peers: resize %q not implemented (only %s)", p.Resize, spec.ResizeCenterCrop)
	case p.ChannelOrder != "" && !strings.EqualFold(p.ChannelOrder, spec.OrderRGB):
		return nil, fmt.Errorf("peers: channel order %q not implemented (only RGB)", p.ChannelOrder)
	case p.PixelScale != 0 && math.Abs(float64(p.PixelScale)*255-1) > 1e-4:
		return nil, fmt.Errorf("peers: pixel scale %g not implemented (only 1/255)", p.PixelScale)
	case p.Width <= 0 || p.Height <= 0 || len(p.Labels) == 0:
		return nil, fmt.Errorf("peers: preprocessing lacks the input size or labels: %+v", p)
	case !strings.EqualFold(p.Layout, spec.LayoutNCHW) && !strings.EqualFold(p.Layout, spec.LayoutNHWC):
		return nil, fmt.Errorf("peers: layout %q not implemented (NCHW or NHWC)", p.Layout)
	}
	shorter := p.ResizeShorter
	if shorter == 0 {
		shorter = max(p.Width, p.Height)
	}
	output := p.Output
	if output != spec.OutputProbabilities {
		output = spec.OutputLogits // "auto" on a logits model, as ours
	}
	f3 := func(v [3]float32) string {
		s := make([]string, 3)
		for i, x := range v {
			s[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		return strings.Join(s, ",")
	}
	return []string{
		"RESIZE_SHORTER=" + strconv.Itoa(shorter),
		"CROP_W=" + strconv.Itoa(p.Width), "CROP_H=" + strconv.Itoa(p.Height),
		"MEAN=" + f3(p.Mean), "STD=" + f3(p.Std),
		"LAYOUT=" + strings.ToUpper(p.Layout),
		"LABELS=" + strings.Join(p.Labels, ","),
		"OUTPUT=" + output,
	}, nil
}

// peerCmd is how to run the named peer from the repository root.
func peerCmd(name string) (loadkit.Cmd, []string, error) {
	switch name {
	case "fastify":
		// server.js runs from the source tree; its packages come from
		// build/peers/fastify (NODE_PATH), so an edit needs no reinstall.
		mods, err := filepath.Abs(filepath.Join(peerFastifyDir, "node_modules"))
		if err != nil {
			return loadkit.Cmd{}, nil, err
		}
		return loadkit.Cmd{Path: "node", Args: []string{filepath.Join(peerDir, "fastify", "server.js")}, ReadyPath: "/health"},
			[]string{"NODE_PATH=" + mods, "NODE_ENV=production"}, nil
	case "fastapi":
		return loadkit.Cmd{Path: peerPython, Args: []string{filepath.Join(peerDir, "fastapi", "server.py")}, ReadyPath: "/health"},
			[]string{"PYTHONDONTWRITEBYTECODE=1"}, nil
	}
	return loadkit.Cmd{}, nil, fmt.Errorf("unknown peer %q (want one of %s)", name, strings.Join(peerNames, ", "))
}

// startPeer starts the named peer on a free port with the model and the
// service's preprocessing, output to logPath, and waits until its /health
// answers 200. stop kills it and waits for it to exit.
func startPeer(name, modelPath string, pre spec.Spec, logPath string) (base string, pid int, stop func(), err error) {
	if err := peersAvailable(name); err != nil {
		return "", 0, nil, err
	}
	c, env, err := peerCmd(name)
	if err != nil {
		return "", 0, nil, err
	}
	penv, err := peerEnv(pre)
	if err != nil {
		return "", 0, nil, err
	}
	model, err := filepath.Abs(modelPath)
	if err != nil {
		return "", 0, nil, err
	}
	env = append(append(env, penv...), "MODEL_PATH="+model)
	srv, err := loadkit.StartCmd(c, env, logPath, peerReadyIn)
	if err != nil {
		return "", 0, nil, fmt.Errorf("peer %s: %w", name, err)
	}
	return srv.Base, srv.Cmd.Process.Pid, srv.Stop, nil
}

// peersAvailable says what the named peers (all when none are named) lack to
// run, and how to get it; nil when they can all start.
func peersAvailable(names ...string) error {
	if len(names) == 0 {
		names = peerNames
	}
	const fix = "run `make bench-peers`"
	var errs []error
	for _, name := range names {
		switch name {
		case "fastify":
			if _, err := exec.LookPath("node"); err != nil {
				errs = append(errs, fmt.Errorf("peer fastify: node is not installed (Debian package nodejs)"))
				continue
			}
			var missing []string
			for _, m := range []string{"fastify", "@fastify/multipart", "sharp", "onnxruntime-node"} {
				if _, err := os.Stat(filepath.Join(peerFastifyDir, "node_modules", m, "package.json")); err != nil {
					missing = append(missing, m)
				}
			}
			if len(missing) > 0 {
				errs = append(errs, fmt.Errorf("peer fastify: %s not installed in %s/node_modules: %s", strings.Join(missing, ", "), peerFastifyDir, fix))
			}
		case "fastapi":
			if _, err := os.Stat(peerPython); err != nil {
				errs = append(errs, fmt.Errorf("peer fastapi: no %s: %s", peerPython, fix))
				continue
			}
			// One line per missing module, so the message names each.
			probe := `import importlib
for m in ("cv2", "fastapi", "uvicorn", "multipart"):
    try:
        importlib.import_module(m)
    except Exception as e:
        print(m, type(e).__name__, e, sep=": ")`
			out, err := exec.Command(peerPython, "-c", probe).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				errs = append(errs, fmt.Errorf("peer fastapi: %s cannot import %s: %s", peerPython,
					strings.Join(strings.Split(strings.TrimSpace(string(out)), "\n"), "; "), fix))
			}
		default:
			_, _, err := peerCmd(name)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
