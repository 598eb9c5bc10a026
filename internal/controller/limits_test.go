package controller

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLongPaths sends many requests with distinct long lab names: they
// reach neither the database nor the logs whole, and the failures of one
// client on one route are logged once; a name the API could take is
// logged clipped.
func TestLongPaths(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	var logs bytes.Buffer
	c.log = slog.New(slog.NewTextHandler(&logs, nil))
	before := c.store.Queries()
	const n = 50
	for i := range n {
		name := fmt.Sprintf("%d-%s", i, strings.Repeat("x", 100_000))
		for _, token := range []string{"api", ""} {
			if code := do(t, srv, "POST", "/api/v1/labs/"+name+"/deploy", token, "", "", nil); code != http.StatusRequestURITooLong {
				t.Fatalf("request %d: %d, want 414", i, code)
			}
		}
	}
	if sent := c.store.Queries() - before; sent != 0 {
		t.Errorf("long names sent %d statements to the database", sent)
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 || logs.Len() > 1000 {
		t.Errorf("%d requests logged %d lines, %d bytes: want one short line\n%s", 2*n, lines, logs.Len(), logs.String())
	}

	logs.Reset()
	long := strings.Repeat("y", 1500) // under the bound: looked up, not found
	if code := do(t, srv, "POST", "/api/v1/labs/"+long+"/deploy", "api", "", "", nil); code != http.StatusNotFound {
		t.Fatalf("a long name: %d, want 404", code)
	}
	if got := logs.String(); !strings.Contains(got, "y…[") || strings.Contains(got, long) || len(got) > 1000 {
		t.Errorf("a long path logged whole or not at all: %d bytes\n%s", len(got), got)
	}
}

// TestOverload: with every slot taken, an API request waits, then gets 503
// with Retry-After; an agent's heartbeat is served all the same.
func TestOverload(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	for range cap(c.slots) {
		release, err := c.admit(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/labs", nil)
	req.Header.Set("Authorization", "Bearer api")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("overloaded: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := do(t, srv, "POST", "/api/v1/hosts/nohost/heartbeat", "agent", "", "", nil); code == http.StatusServiceUnavailable {
		t.Errorf("a heartbeat was turned away")
	}
}

// TestClip: what a log line keeps of a long text.
func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"short", "/api/v1/labs/x", "/api/v1/labs/x"},
		{"at the bound", strings.Repeat("a", logMax), strings.Repeat("a", logMax)},
		{"long", strings.Repeat("a", 600_000), strings.Repeat("a", logMax) + "…[600000 bytes]"},
		{"a rune across the cut", strings.Repeat("a", logMax-1) + "é" + "b", strings.Repeat("a", logMax-1) + "…[202 bytes]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := clip(tt.in); got != tt.want {
				t.Errorf("clip: %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSharedViews: reads of a lab share one database read until a write.
func TestSharedViews(t *testing.T) {
	t.Parallel()
	c, srv := newTestController(t, time.Minute)
	lab := "name: shared\ntopology:\n  nodes: {r1: {}, r2: {}}\n  links: [{endpoints: [\"r1:eth1\", \"r2:eth1\"]}]\n"
	if code := do(t, srv, "POST", "/api/v1/labs", "api", "application/yaml", lab, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	read := func() int64 {
		t.Helper()
		before := c.store.Queries()
		for _, p := range []string{"/api/v1/labs/shared", "/api/v1/labs/shared/links"} {
			if code := do(t, srv, "GET", p, "api", "", "", nil); code != http.StatusOK {
				t.Fatalf("GET %s: %d", p, code)
			}
		}
		return c.store.Queries() - before
	}
	if read() == 0 {
		t.Fatal("the first reads sent no statement")
	}
	if n := read(); n != 0 {
		t.Errorf("reads with no write between sent %d statements", n)
	}
	if code := do(t, srv, "DELETE", "/api/v1/labs/shared", "api", "", "", nil); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	if code := do(t, srv, "GET", "/api/v1/labs/shared", "api", "", "", nil); code != http.StatusNotFound {
		t.Errorf("a deleted lab read: %d, want 404", code)
	}
}
