package controller

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/store"
)

// TestWebAuth: every page and the event stream need the API token, in the
// cookie the login form sets or as a bearer header; the login form sends
// the browser back only to the web view's own pages.
func TestWebAuth(t *testing.T) {
	t.Parallel()
	_, srv := newTestController(t, time.Minute)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, set func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, string(body)
	}
	cookie := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: webCookie, Value: v}) }
	}
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+v) }
	}
	tests := []struct {
		name, path string
		set        func(*http.Request)
		want       int
		wantInBody string
	}{
		{"page without token: the login form", "/ui/", nil, 401, `action="/ui/login"`},
		{"lab page without token", "/ui/lab/lab1", nil, 401, `value="/ui/lab/lab1"`},
		{"events without token", "/ui/events", nil, 401, "API token"},
		{"script without token", "/ui/static/app.js", nil, 401, ""},
		{"unknown path without token", "/ui/nothing", nil, 401, ""},
		{"wrong cookie", "/ui/", cookie("nope"), 401, ""},
		{"agent token", "/ui/", cookie("agent"), 401, ""},
		{"page with cookie", "/ui/", cookie("api"), 200, `id="labs"`},
		{"lab page with bearer", "/ui/lab/lab1", bearer("api"), 200, `id="topology"`},
		{"script with cookie", "/ui/static/app.js", cookie("api"), 200, "EventSource"},
		{"unknown path with cookie", "/ui/nothing", cookie("api"), 404, ""},
	}
	for _, tt := range tests {
		got, body := get(tt.path, tt.set)
		if got != tt.want || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("%s: %d %.200q; want %d containing %q", tt.name, got, body, tt.want, tt.wantInBody)
		}
	}

	login := func(token, next string) *http.Response {
		t.Helper()
		resp, err := noRedirect.PostForm(srv.URL+"/ui/login", url.Values{"token": {token}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login("wrong", "/ui/"); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("login with a wrong token: %d, cookies %v; want 401 and none", resp.StatusCode, resp.Cookies())
	}
	resp := login("api", "/ui/lab/lab1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/lab/lab1" {
		t.Errorf("login: %d to %q, want 303 to /ui/lab/lab1", resp.StatusCode, resp.Header.Get("Location"))
	}
	cks := resp.Cookies()
	if len(cks) != 1 || cks[0].Name != webCookie || cks[0].Value != "api" || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode {
		t.Errorf("login cookie %+v: want %s=api, HttpOnly, SameSite=Strict", cks, webCookie)
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/ui/events", "/ui/lab/a/../../x", "/api/v1/labs"} {
		if got := login("api", next).Header.Get("Location"); got != "/ui/" {
			t.Errorf("login with next %q goes to %q, want /ui/", next, got)
		}
	}
}

// TestWebEvents: the event stream sends the lab's view at once and again
// when it changes, a "missing" event for a lab that does not exist, and
// the overview without ?lab.
func TestWebEvents(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	lab := `{"name":"lab1","nodes":[{"name":"r1","kind":"linux"},{"name":"r2","kind":"linux"}],
		"links":[{"a":{"node":"r1","interface":"eth1"},"b":{"node":"r2","interface":"eth1"}}]}`
	if got := do(t, srv, "POST", "/api/v1/labs", "api", "application/json", lab, nil); got != 201 {
		t.Fatalf("create lab: %d", got)
	}
	// next returns the next event of a stream as its name and data.
	open := func(path string) func() (string, string) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel) // the server's Close waits for open streams
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer api")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
		}()
		return func() (string, string) {
			t.Helper()
			var event, data string
			timeout := time.After(10 * time.Second)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("%s: stream ended", path)
					}
					switch {
					case strings.HasPrefix(l, "event: "):
						event = l[len("event: "):]
					case strings.HasPrefix(l, "data: "):
						data = l[len("data: "):]
					case l == "" && event != "":
						return event, data
					}
				case <-timeout:
					t.Fatalf("%s: no event within 10 s", path)
				}
			}
		}
	}
	next := open("/ui/events?lab=lab1")
	if ev, data := next(); ev != "lab" || !strings.Contains(data, `"link_name":"r1:eth1-r2:eth1"`) || !strings.Contains(data, `"state":"stopped"`) {
		t.Errorf("first event %s %s: want the lab's view", ev, data)
	}
	if err := c.store.SetLabState(t.Context(), "lab1", store.LabRunning, ""); err != nil {
		t.Fatal(err)
	}
	if ev, data := next(); ev != "lab" || !strings.Contains(data, `"state":"running"`) {
		t.Errorf("after a change %s %s: want the lab running", ev, data)
	}
	if ev, data := open("/ui/events?lab=nope")(); ev != "missing" || data != `{"lab":"nope"}` {
		t.Errorf("stream of a lab that does not exist: %s %s", ev, data)
	}
	if ev, data := open("/ui/events")(); ev != "overview" || !strings.Contains(data, `"name":"lab1"`) || !strings.Contains(data, `"hosts":[]`) {
		t.Errorf("overview: %s %s", ev, data)
	}
}
