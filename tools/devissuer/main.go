// Command devissuer is a throwaway OpenID provider for trying the service
// with authentication ON, on one machine: it serves discovery and a JWKS on
// 127.0.0.1 (never another interface), mints an access token with the scope
// /upload needs (and one without it, which the Bruno collection's 403 request
// uses), and prints them with the settings that point the service at it.
//
//	go run ./tools/devissuer                       # print the settings and a token, keep serving keys
//	go run ./tools/devissuer -- ./bin/catsdogs     # also run the service with them (what `make dev` does)
//
// It is the tests' fake provider (tests/issuer) behind a command line: the
// keys live in memory and die with the process, so a token from it is worth
// nothing anywhere else. It is a separate command, not a flag of the
// service, so a production binary cannot be talked into trusting it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"catsdogs/tests/issuer"
)

func main() {
	scope := flag.String("scope", issuer.DefaultScope, "scope claim of the token")
	ttl := flag.Duration("ttl", 12*time.Hour, "how long the token is valid")
	tokenFile := flag.String("token-file", "", "also write the token to this file (mode 0600)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: devissuer [flags] [-- command [args]]\n\n"+
			"Serves a loopback OpenID provider and prints an access token for it. With a command,\n"+
			"runs it with OAUTH2_ISSUER and OAUTH2_AUDIENCE set (and LISTEN_ADDR=127.0.0.1 unless set)\n"+
			"and prints the token once /ready on PORT (default 8080) says ready.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, *scope, *ttl, *tokenFile, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "devissuer:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, scope string, ttl time.Duration, tokenFile string, command []string) (int, error) {
	iss, err := issuer.Start() // 127.0.0.1, a free port
	if err != nil {
		return 1, err
	}
	defer iss.Close()
	exp := time.Now().Add(ttl).Unix()
	token := iss.Token(map[string]any{"sub": "dev", "scope": scope, "exp": exp})
	noScope := iss.Token(map[string]any{"sub": "dev", "scope": "openid", "exp": exp})
	if tokenFile != "" {
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			return 1, err
		}
	}
	settings := []string{"OAUTH2_ISSUER=" + iss.URL, "OAUTH2_AUDIENCE=" + issuer.DefaultAudience}

	if len(command) == 0 {
		fmt.Printf("Dev issuer at %s (loopback only; Ctrl-C stops it and its keys are gone).\n\n"+
			"Start the service against it, auth ON:\n\n  %s ./bin/catsdogs\n\n", iss.URL, strings.Join(settings, " "))
		printToken(token, noScope, scope, ttl, "http://localhost:8080")
		<-ctx.Done()
		return 0, nil
	}

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), settings...)
	if os.Getenv("LISTEN_ADDR") == "" {
		cmd.Env = append(cmd.Env, "LISTEN_ADDR=127.0.0.1") // a dev setup is nobody else's business
	}
	if os.Getenv("AUTH_DISABLED") != "" {
		cmd.Env = append(cmd.Env, "AUTH_DISABLED=false") // the point is auth ON
	}
	if os.Getenv("SHUTDOWN_DRAIN_DELAY") == "" {
		cmd.Env = append(cmd.Env, "SHUTDOWN_DRAIN_DELAY=0s") // no load balancer to drain from: Ctrl-C stops at once
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	base := "http://127.0.0.1:" + port
	select {
	case err := <-exited:
		return exitCode(err), fmt.Errorf("%s exited before %s/ready said ready: %v", command[0], base, err)
	case <-ctx.Done():
		return stopChild(cmd, exited), nil
	case <-waitReady(ctx, base):
	}
	// Something answered ready on PORT; make sure it is the service started
	// here, not another one that held the port while ours failed to bind.
	if err := trustsToken(base, token); err != nil {
		code := stopChild(cmd, exited)
		return max(code, 1), fmt.Errorf("%s answers on %s, but not as the service started here: %v", base, port, err)
	}
	fmt.Printf("\nThe service runs with auth ON against the dev issuer %s.\n"+
		"  try it:  %s/   API docs: %s/docs  (Authorize: paste the token)  ReDoc: %s/redoc\n", iss.URL, base, base, base)
	printToken(token, noScope, scope, ttl, base)
	select {
	case err := <-exited:
		return exitCode(err), nil
	case <-ctx.Done():
		return stopChild(cmd, exited), nil
	}
}

func printToken(token, noScope, scope string, ttl time.Duration, base string) {
	fmt.Printf("\nAccess token (scope %q, valid %s):\n\n%s\n\n"+
		"  curl -H \"Authorization: Bearer $TOKEN\" -F file=@tests/testdata/images/test/cat/<a photo>.jpg %s/upload\n"+
		"  (with TOKEN=<the token above>)\n\n"+
		"A token without that scope (Bruno's tokenNoScope; /upload answers it 403):\n\n%s\n\n"+
		"  Bruno CLI: bru run --env local --env-var token=$TOKEN --env-var tokenNoScope=<the token above>\n\n",
		scope, ttl, token, base, noScope)
}

// trustsToken checks that the service at base accepts this issuer's token:
// an empty upload with it gets past authentication (a 4xx about the body),
// where any other server answers 401, 404 or something else.
func trustsToken(base, token string) error {
	req, _ := http.NewRequest(http.MethodPost, base+"/upload", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnsupportedMediaType || resp.StatusCode == http.StatusBadRequest {
		return nil
	}
	return fmt.Errorf("POST /upload with the dev token answered %s, not the 4xx about a missing file", resp.Status)
}

// waitReady closes its channel once base/ready answers 200: the model is
// loaded and the issuer's keys fetched, so the printed token works at once.
func waitReady(ctx context.Context, base string) <-chan struct{} {
	ok := make(chan struct{})
	go func() {
		c := &http.Client{Timeout: time.Second}
		for ctx.Err() == nil {
			if resp, err := c.Get(base + "/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					close(ok)
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return ok
}

// stopChild passes the interrupt on and waits for the service to drain.
func stopChild(cmd *exec.Cmd, exited <-chan error) int {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return exitCode(err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return exitCode(<-exited)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}
