package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netloom/netloom/internal/runtime"
	"github.com/netloom/netloom/internal/runtime/docker"
)

// fakeDaemon serves the Engine API's ping and an events stream of lines
// over a unix socket, then ends the stream, or holds it open when hold.
func fakeDaemon(t *testing.T, lines []string, hold bool) (socket string, filters chan string) {
	socket = filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	filters = make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1.41/_ping":
			fmt.Fprint(w, "OK")
		case "/v1.41/events":
			filters <- r.URL.Query().Get("filters")
			w.WriteHeader(http.StatusOK)
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
			w.(http.Flusher).Flush()
			if hold {
				<-r.Context().Done()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return socket, filters
}

// TestWatch: Watch asks only for netloom's container events, reports those
// of a node with its cause, skips the rest, and ends with an error when the
// stream ends, or with nil when its context does.
func TestWatch(t *testing.T) {
	t.Parallel()
	ev := func(action string, labels map[string]string) string {
		m := map[string]any{"Type": "container", "Action": action, "Actor": map[string]any{"ID": "abc", "Attributes": labels}}
		data, _ := json.Marshal(m)
		return string(data)
	}
	node := map[string]string{"netloom-owner": "netloom", "netloom-lab": "lab1", "netloom-node": "c1", "name": "nl-lab1-c1"}
	lines := []string{
		ev("kill", node), ev("die", node), ev("stop", node),
		ev("exec_start", node),                             // not a change of the node
		ev("die", map[string]string{"name": "unlabelled"}), // not a node
		ev("start", node), ev("restart", node), ev("destroy", node),
	}
	socket, filters := fakeDaemon(t, lines, false)
	rt, err := docker.New(t.Context(), docker.Config{Socket: socket}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = rt.Watch(t.Context(), func(e runtime.Event) { got = append(got, e.Lab+"/"+e.Node+": "+e.Cause) })
	if err == nil || !strings.Contains(err.Error(), "stream ended") {
		t.Errorf("Watch of a stream that ended: %v, want an error", err)
	}
	want := "lab1/c1: container died, lab1/c1: container died, lab1/c1: container died, " +
		"lab1/c1: container restarted, lab1/c1: container restarted, lab1/c1: container removed"
	if strings.Join(got, ", ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	var f map[string][]string
	if err := json.Unmarshal([]byte(<-filters), &f); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f["type"], f["label"]) != "[container] [netloom-owner=netloom]" || len(f["event"]) != 7 {
		t.Errorf("filters %v: want netloom's containers and seven events", f)
	}

	socket, _ = fakeDaemon(t, lines[:1], true)
	rt, err = docker.New(t.Context(), docker.Config{Socket: socket}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := rt.Watch(ctx, func(runtime.Event) {}); err != nil {
		t.Errorf("Watch to its context's end: %v, want nil", err)
	}
}
