// Command k8sdryrun checks manifests against a real Kubernetes API server:
// it starts etcd and kube-apiserver on loopback (throwaway data in a
// temporary folder), installs the given CRDs, and creates every object with
// dryRun=All and fieldValidation=Strict, so the server's own defaulting,
// validation and admission judge them and an unknown or misspelled field is
// an error. It also makes sure that is so: each object is sent again with a
// misspelled field, and must be refused.
//
//	k8sdryrun -etcd BIN -apiserver BIN [-crd FILE]... MANIFEST...
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

// bound turns a hang into a failure; nothing here asserts a duration.
const bound = 3 * time.Minute

const namespace = "catsdogs-dryrun"

func main() {
	etcd := flag.String("etcd", "etcd", "etcd binary")
	apiserver := flag.String("apiserver", "kube-apiserver", "kube-apiserver binary")
	var crds files
	flag.Var(&crds, "crd", "CustomResourceDefinition file to install first (repeatable)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := run(ctx, *etcd, *apiserver, crds, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "k8sdryrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, etcdBin, apiBin string, crds, manifests []string) error {
	var objs []*unstructured.Unstructured
	for _, m := range manifests {
		o, err := readObjects(m)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		objs = append(objs, o...)
	}
	if len(objs) == 0 {
		return errors.New("no objects to check")
	}
	dir, err := os.MkdirTemp("", "k8sdryrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	start := time.Now()
	stop, cfg, err := startServers(ctx, dir, etcdBin, apiBin)
	defer stop()
	if err != nil {
		return err
	}
	fmt.Printf("etcd + kube-apiserver ready on loopback in %.1f s\n", time.Since(start).Seconds())

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	// CRDs and the namespace are created for real: the dry runs need them.
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, f := range crds {
		list, err := readObjects(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, crd := range list {
			if _, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("installing CRD %s: %w", crd.GetName(), err)
			}
			if err := waitEstablished(ctx, dyn, crdGVR, crd.GetName()); err != nil {
				return err
			}
			fmt.Printf("installed CRD %s\n", crd.GetName())
		}
	}
	mapper.Reset()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": namespace}}}
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}

	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	var failed []string
	for _, o := range objs {
		name := o.GetKind() + "/" + o.GetName()
		res, err := resourceFor(mapper, dyn, o)
		if err != nil {
			failed = append(failed, name)
			fmt.Printf("FAIL %s: %v\n", name, err)
			continue
		}
		if _, err := res.Create(ctx, o, dryRun); err != nil {
			failed = append(failed, name)
			fmt.Printf("FAIL %s: %v\n", name, err)
			continue
		}
		// The same object with a misspelled field must be refused, or the
		// check above proves nothing.
		bad := o.DeepCopy()
		bad.Object["metadataa"] = map[string]any{}
		_, err = res.Create(ctx, bad, dryRun)
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "unknown field") {
			failed = append(failed, name+" (misspelled field)")
			fmt.Printf("FAIL %s: a misspelled field was not refused (%v)\n", name, err)
			continue
		}
		fmt.Printf("ok   %s (strict dry run; a misspelled field is refused)\n", name)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d objects failed: %s", len(failed), len(objs), strings.Join(failed, ", "))
	}
	fmt.Printf("%d objects pass the API server's strict dry run\n", len(objs))
	return nil
}

func resourceFor(mapper meta.RESTMapper, dyn dynamic.Interface, o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		o.SetNamespace(namespace)
		return dyn.Resource(m.Resource).Namespace(namespace), nil
	}
	return dyn.Resource(m.Resource), nil
}

func readObjects(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

func waitEstablished(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, name string) error {
	for {
		crd, err := dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not established: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startServers runs etcd and kube-apiserver on free loopback ports and
// waits for the API server's /readyz. stop ends both (always safe to call).
func startServers(ctx context.Context, dir, etcdBin, apiBin string) (stop func(), cfg *rest.Config, err error) {
	type proc struct {
		cmd    *exec.Cmd
		exited chan struct{} // closed once Wait returned
	}
	var procs []proc
	stop = func() {
		for i := len(procs) - 1; i >= 0; i-- {
			p := procs[i]
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}
	logf, err := os.Create(filepath.Join(dir, "servers.log"))
	if err != nil {
		return stop, nil, err
	}
	// The servers' own logs are shown only when something fails.
	showLog := func(err error) error {
		b, _ := os.ReadFile(logf.Name())
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		return fmt.Errorf("%w\n--- etcd and kube-apiserver log (end) ---\n%s", err, b)
	}
	startProc := func(bin string, args ...string) error {
		c := exec.Command(bin, args...)
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			return err
		}
		p := proc{c, make(chan struct{})}
		go func() { c.Wait(); close(p.exited) }()
		procs = append(procs, p)
		return nil
	}
	client, peer, secure := freePort(), freePort(), freePort()
	etcdURL := "http://127.0.0.1:" + client
	if err := startProc(etcdBin, "--name=dryrun", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:"+peer, "--initial-advertise-peer-urls=http://127.0.0.1:"+peer,
		"--initial-cluster=dryrun=http://127.0.0.1:"+peer, "--log-level=warn"); err != nil {
		return stop, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return stop, nil, err
	}
	keyFile := filepath.Join(dir, "sa.key")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	token := rand.Text()
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := errors.Join(os.WriteFile(keyFile, pemKey, 0o600),
		os.WriteFile(tokenFile, []byte(token+",dryrun,dryrun,system:masters\n"), 0o600)); err != nil {
		return stop, nil, err
	}
	if err := startProc(apiBin, "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+secure,
		"--cert-dir="+filepath.Join(dir, "certs"), "--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+keyFile,
		"--service-account-signing-key-file="+keyFile,
		// No other control-plane parts run: nothing reconciles the
		// kubernetes Service's endpoints.
		"--endpoint-reconciler-type=none"); err != nil {
		return stop, nil, err
	}
	cfg = &rest.Config{Host: "https://127.0.0.1:" + secure, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return stop, nil, err
	}
	for {
		var code int
		dc.RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
		if code == 200 {
			return stop, cfg, nil
		}
		for _, p := range procs {
			select {
			case <-p.exited:
				return stop, nil, showLog(fmt.Errorf("%s exited", p.cmd.Path))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return stop, nil, showLog(fmt.Errorf("kube-apiserver not ready: %w", ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
