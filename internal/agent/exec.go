package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/netloom/netloom/internal/wire"
)

// serveExec runs a command in a node and streams its output as it comes,
// one wire.ExecFrame per line, ending with its exit code or the error that
// kept it from running (a node this host does not run among them). The
// status goes out at once, so the client knows the agent answered however
// long the command stays silent. It needs no converger lock: it changes
// nothing the agent holds. The command lives as long as its client's
// request: when the client goes, it is ended.
func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	var req wire.ExecRequest
	if err := decode(r, &req, func() error { return req.Validate(true) }); err != nil {
		a.respond(w, r, nil, err)
		return
	}
	// A body read to its end lets the server notice a client that goes, so
	// r.Context() ends the command then, however silent it is.
	_, _ = io.Copy(io.Discard, r.Body)
	log := a.log.With("lab", req.LabID, "node", req.Node)
	w.Header().Set("Content-Type", wire.ExecContentType)
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{enc: json.NewEncoder(w), rc: http.NewResponseController(w)}
	if err := fw.rc.Flush(); err != nil {
		log.Warn("exec answer not written", "err", err)
		return
	}
	code, err := a.conv.runtime.Exec(r.Context(), req.LabID, req.Node, req.Argv,
		fw.stream(wire.StreamStdout), fw.stream(wire.StreamStderr))
	last := wire.ExecFrame{ExitCode: &code}
	if err != nil {
		last = wire.ExecFrame{Error: err.Error()}
		log.Warn("exec failed", "command", req.Argv[0], "err", err)
	} else {
		log.Info("exec ran", "command", req.Argv[0], "exit_code", code)
	}
	if werr := fw.write(last); werr != nil {
		log.Warn("exec answer not written", "err", werr)
	}
}

// frameWriter writes output as frames, one per write, flushed at once.
type frameWriter struct {
	mu  sync.Mutex // one frame at a time: stdout and stderr come from two goroutines
	enc *json.Encoder
	rc  *http.ResponseController
}

func (f *frameWriter) write(fr wire.ExecFrame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enc.Encode(fr); err != nil {
		return err
	}
	return f.rc.Flush()
}

// stream is a writer of one stream's frames.
func (f *frameWriter) stream(name string) writerFunc {
	return func(p []byte) (int, error) {
		if err := f.write(wire.ExecFrame{Stream: name, Data: p}); err != nil {
			return 0, err
		}
		return len(p), nil
	}
}

type writerFunc func(p []byte) (int, error)

func (fn writerFunc) Write(p []byte) (int, error) { return fn(p) }
