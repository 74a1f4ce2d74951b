package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fakeMonit answers like monit 5.33: a POST passes only when its
// securitytoken cookie equals its securitytoken form field; it echoes the
// action and the basic-auth user it saw.
func fakeMonit(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		if r.Method == http.MethodPost {
			cookie, err := r.Cookie(tokenName)
			if err != nil || cookie.Value == "" || r.PostFormValue(tokenName) != cookie.Value {
				http.Error(w, "Invalid CSRF Token", http.StatusForbidden)
				return
			}
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" action="+r.FormValue("action")+" user="+user)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProxyAddsCSRFToken(t *testing.T) {
	monit := fakeMonit(t)
	target, _ := url.Parse(monit.URL)
	proxy := httptest.NewServer(newProxy(target, slog.New(slog.DiscardHandler)))
	t.Cleanup(proxy.Close)

	cases := []struct {
		name, via, method, path, body string
		wantStatus                    int
		wantBody                      string
	}{
		{"start through the proxy", proxy.URL, http.MethodPost, "/nginx", "action=start", 200, "POST /nginx action=start user=vcap"},
		{"unmonitor through the proxy", proxy.URL, http.MethodPost, "/nginx", "action=unmonitor", 200, "POST /nginx action=unmonitor user=vcap"},
		{"empty POST through the proxy", proxy.URL, http.MethodPost, "/_runtime", "", 200, "POST /_runtime action= user=vcap"},
		{"status GET through the proxy", proxy.URL, http.MethodGet, "/_status2?format=xml", "", 200, "GET /_status2?format=xml action= user=vcap"},
		// Without the proxy the same POST is refused: the fake checks what monit checks.
		{"start straight to monit", monit.URL, http.MethodPost, "/nginx", "action=start", 403, "Invalid CSRF Token\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.via+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("vcap", "secret")
			if tc.method == http.MethodPost {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || string(got) != tc.wantBody {
				t.Errorf("%s %s: got %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, got, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestAddTokenKeepsFieldsAndCookies(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("action=stop"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "other", Value: "1"})
	if err := addToken(req, "tok"); err != nil {
		t.Fatal(err)
	}
	if err := req.ParseForm(); err != nil {
		t.Fatal(err)
	}
	if req.PostForm.Get("action") != "stop" || req.PostForm.Get(tokenName) != "tok" {
		t.Errorf("form after addToken = %v, want action=stop and %s=tok", req.PostForm, tokenName)
	}
	if c, err := req.Cookie("other"); err != nil || c.Value != "1" {
		t.Errorf("existing cookie lost: %v %v", c, err)
	}
	if c, err := req.Cookie(tokenName); err != nil || c.Value != "tok" {
		t.Errorf("token cookie = %v %v, want tok", c, err)
	}
	if req.ContentLength != int64(len("action=stop&securitytoken=tok")) {
		t.Errorf("ContentLength = %d", req.ContentLength)
	}
}

func TestTokensDiffer(t *testing.T) {
	if a, b := newToken(), newToken(); a == b || len(a) != 32 {
		t.Errorf("tokens %q and %q: want two different 32-hex-digit tokens", a, b)
	}
}
