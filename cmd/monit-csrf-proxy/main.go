// Command monit-csrf-proxy lets bosh-agent drive a monit that demands a CSRF
// token. Monit 5.26 and later (Debian 12 ships 5.33) refuse every POST to
// their HTTP API unless a `securitytoken` cookie equals a `securitytoken` form
// field ("403 Invalid CSRF Token"); bosh-agent's monit client, written for the
// monit 5.2 that BOSH stemcells build, sends neither. The agent stemcell runs
// monit on another port and this proxy on the agent's fixed 127.0.0.1:2822:
// it forwards every request unchanged, except that a POST gets a fresh token
// as both cookie and form field. Basic auth passes through untouched.
//
//	monit-csrf-proxy -listen 127.0.0.1:2822 -monit 127.0.0.1:2823
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

const tokenName = "securitytoken"

func main() {
	listen := flag.String("listen", "127.0.0.1:2822", "address the agent's monit client talks to")
	monit := flag.String("monit", "127.0.0.1:2823", "address of monit's own HTTP interface")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	server := &http.Server{
		Addr:              *listen,
		Handler:           newProxy(&url.URL{Scheme: "http", Host: *monit}, log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Info("proxying monit", "listen", *listen, "monit", *monit)
	if err := server.ListenAndServe(); err != nil {
		log.Error("monit-csrf-proxy stopped", "listen", *listen, "error", err)
		os.Exit(1)
	}
}

// newProxy forwards to monit, adding a CSRF token to every POST.
func newProxy(monit *url.URL, log *slog.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(monit)
			r.Out.Host = r.In.Host
			if r.Out.Method != http.MethodPost {
				return
			}
			if err := addToken(r.Out, newToken()); err != nil {
				// The request goes on without a token; monit answers 403 and
				// the agent sees monit's own error.
				log.Error("adding CSRF token", "path", r.In.URL.Path, "error", err)
			}
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}
}

// addToken sets token as the securitytoken cookie and appends it to the
// request's urlencoded form body.
func addToken(r *http.Request, token string) error {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return fmt.Errorf("reading the body of POST %s: %w", r.URL.Path, err)
		}
		r.Body.Close()
	}
	if len(body) > 0 {
		body = append(body, '&')
	}
	body = append(body, url.Values{tokenName: {token}}.Encode()...)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.AddCookie(&http.Cookie{Name: tokenName, Value: token})
	return nil
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
