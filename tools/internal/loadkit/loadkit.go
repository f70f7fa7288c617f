// Package loadkit holds what the load tools (bench, loadtest, soak, lbtest)
// share: starting the service binary, photos and multipart bodies,
// percentiles and reading a process's memory from /proc.
package loadkit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Boundary is the one multipart boundary of every body FormFile makes, so
// bodies made apart can share one Content-Type.
const Boundary = "catsdogs-loadtest-boundary-7f3a9c"

// FormFile wraps data as a multipart/form-data body with one part "file".
func FormFile(filename string, data []byte) (body []byte, contentType string, err error) {
	return FormFiles([]string{filename}, [][]byte{data})
}

// FormFiles wraps each data[i] as a part "file" named filenames[i], in
// order, in one multipart/form-data body (a /predict request).
func FormFiles(filenames []string, data [][]byte) (body []byte, contentType string, err error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(Boundary); err != nil {
		return nil, "", err
	}
	for i, name := range filenames {
		part, err := w.CreateFormFile("file", name)
		if err != nil {
			return nil, "", err
		}
		if _, err := part.Write(data[i]); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// Photo is a photo to upload: its bytes, and a multipart body of them as
// the one part "file" (FormFile) with that body's Content-Type.
type Photo struct {
	Data, Form []byte
	FormType   string
}

// Photos reads every .jpg under dir (its subfolders too, in name order).
func Photos(dir string) ([]Photo, error) {
	var out []Photo
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".jpg") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		form, ctype, err := FormFile(filepath.Base(p), data)
		out = append(out, Photo{Data: data, Form: form, FormType: ctype})
		return err
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no .jpg photos under %s", dir)
	}
	return out, err
}

// ProcMemory reads VmRSS and VmHWM (peak RSS) in kB from /proc/PID/status.
func ProcMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}

// ClockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const ClockTick = 100.0

// ProcCPU is the CPU time (user + system, seconds) process pid has used,
// from /proc/PID/stat.
func ProcCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	// Fields 14 and 15 of stat(5), utime and stime; f[0] is field 3.
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / ClockTick, errors.Join(err1, err2)
}

// Percentile is the nearest-rank percentile of sorted values (0 for none).
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Service is the service binary running on a free local port.
type Service struct {
	Cmd  *exec.Cmd
	Base string        // "http://127.0.0.1:PORT"
	Addr string        // "127.0.0.1:PORT"
	Done chan struct{} // closed when the process has exited
	Err  error         // its exit status, once Done is closed

	readyPath string
}

// Start runs bin with the environment plus env (and PORT), output to
// logPath, and waits until /ready answers 200.
func Start(bin string, env []string, logPath string, readyWithin time.Duration) (*Service, error) {
	return StartCmd(Cmd{Path: bin}, env, logPath, readyWithin)
}

// Cmd is a program for StartCmd: the service binary or another HTTP server
// that listens on 127.0.0.1:$PORT (e.g. the peers tools/bench compares with).
type Cmd struct {
	Path      string   // program, looked up in PATH when it has no slash
	Args      []string // its arguments
	ReadyPath string   // answers 200 once it takes traffic; "" means /ready
	// Port to serve on; "" picks a free one. A fixed port lets a load
	// balancer's configuration name a server that is restarted.
	Port string
}

// StartCmd is Start for any Cmd: it runs c with the environment plus env
// (and PORT), output to logPath, and waits until c.ReadyPath answers 200.
func StartCmd(c Cmd, env []string, logPath string, readyWithin time.Duration) (*Service, error) {
	port := c.Port
	if port == "" {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = append(append(os.Environ(), env...), "PORT="+port)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &Service{Cmd: cmd, Addr: "127.0.0.1:" + port, Done: make(chan struct{}), readyPath: c.ReadyPath}
	if s.readyPath == "" {
		s.readyPath = "/ready"
	}
	s.Base = "http://" + s.Addr
	go func() {
		s.Err = cmd.Wait()
		logf.Close()
		close(s.Done)
	}()
	if err := s.waitReady(readyWithin); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return s, nil
}

// Stop kills the process and waits for it to exit.
func (s *Service) Stop() {
	_ = s.Cmd.Process.Kill()
	<-s.Done
}

func (s *Service) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.Done:
			return fmt.Errorf("%s exited before it was ready: %v", s.Cmd.Path, s.Err)
		default:
		}
		resp, err := http.Get(s.Base + s.readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s%s not 200 after %s", s.Base, s.readyPath, limit)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// InferJSON is an Open Inference Protocol REST infer body of the images as
// one BYTES input, "image", base64 in JSON (POST /v2/models/NAME/infer).
func InferJSON(images [][]byte) ([]byte, error) {
	data := make([]string, len(images))
	for i, im := range images {
		data[i] = base64.StdEncoding.EncodeToString(im)
	}
	return json.Marshal(map[string]any{"inputs": []map[string]any{{
		"name": "image", "datatype": "BYTES", "shape": []int{len(images)}, "data": data}}})
}
