package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netlink"

	"github.com/netloom/netloom/internal/wire"
)

// maxBody bounds a request body; 1000 tunnels take about 250 KB.
const maxBody = 8 << 20

// handler is an API endpoint: it returns the response body or an error that
// respond maps to a status code.
type handler func(r *http.Request) (any, error)

// routes builds the agent API of DESIGN §6.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	c := a.conv
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// ready: the start-up restore has run, so the bridge holds the
		// cache. A cache that could not be written is not ready: a restart
		// now would not restore the host's state.
		if why := c.cacheProblem(); why != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "cache not written", "ready": false, "reason": why})
			return
		}
		a.respond(w, r, map[string]any{"status": "ok", "ready": a.ready.Load()}, nil)
	})
	mux.Handle("GET /metrics", a.auth(promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{})))
	a.handle(mux, "POST /overlay/declare-state", func(r *http.Request) (any, error) {
		var req wire.DeclareStateRequest
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.declare(r.Context(), req)
	})
	a.handle(mux, "POST /host/declare-state", func(r *http.Request) (any, error) {
		var req wire.HostDeclaration
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.declareHost(r.Context(), req)
	})
	// An exec runs as long as its client waits, not under the request
	// timeout of the other endpoints.
	mux.Handle("POST /host/exec", a.auth(http.HandlerFunc(a.serveExec)))
	a.handle(mux, "GET /labs/{lab_id}/port-state", func(r *http.Request) (any, error) {
		lab := r.PathValue("lab_id")
		if err := wire.ValidateLab(lab); err != nil {
			return nil, err
		}
		return c.portState(r.Context(), lab)
	})
	a.handle(mux, "POST /ports/declare-state", func(r *http.Request) (any, error) {
		var req wire.PortDeclareRequest
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.declarePorts(r.Context(), req)
	})
	a.handle(mux, "POST /overlay/reconcile-ports", func(r *http.Request) (any, error) {
		var req wire.ReconcilePortsRequest
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.reconcilePorts(r.Context(), req)
	})
	a.handle(mux, "POST /overlay/attach-link", func(r *http.Request) (any, error) {
		var req wire.AttachLinkRequest
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.attach(r.Context(), req)
	})
	a.handle(mux, "POST /overlay/detach-link", func(r *http.Request) (any, error) {
		var req wire.DetachLinkRequest
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.detach(r.Context(), req)
	})
	a.handle(mux, "POST /labs/{lab_id}/links", func(r *http.Request) (any, error) {
		lab := r.PathValue("lab_id")
		var req wire.SameHostLinkRequest
		if err := decode(r, &req, func() error { return errors.Join(wire.ValidateLab(lab), req.Validate()) }); err != nil {
			return nil, err
		}
		return c.linkSameHost(r.Context(), lab, req)
	})
	a.handle(mux, "DELETE /labs/{lab_id}/links/{link_id}", func(r *http.Request) (any, error) {
		lab := r.PathValue("lab_id")
		if err := wire.ValidateLab(lab); err != nil {
			return nil, err
		}
		return c.unlinkSameHost(r.Context(), lab, r.PathValue("link_id"))
	})
	a.handle(mux, "POST /labs/{lab_id}/nodes", func(r *http.Request) (any, error) {
		lab := r.PathValue("lab_id")
		var req wire.CreateNodeRequest
		if err := decode(r, &req, func() error { return errors.Join(wire.ValidateLab(lab), req.Validate()) }); err != nil {
			return nil, err
		}
		return c.createNode(r.Context(), lab, req)
	})
	a.handle(mux, "DELETE /labs/{lab_id}/nodes/{node}", func(r *http.Request) (any, error) {
		lab, node := r.PathValue("lab_id"), r.PathValue("node")
		if err := errors.Join(wire.ValidateLab(lab), wire.ValidateNode(node)); err != nil {
			return nil, err
		}
		return map[string]bool{"success": true}, c.deleteNode(r.Context(), lab, node)
	})
	a.handle(mux, "POST /overlay/cleanup", func(r *http.Request) (any, error) {
		var req wire.CleanupRequest
		if err := decode(r, &req, req.Validate); err != nil {
			return nil, err
		}
		return c.cleanup(r.Context(), req.LabID)
	})
	a.handle(mux, "PUT /overlay/ports/{port_name}/vlan", func(r *http.Request) (any, error) {
		port := r.PathValue("port_name")
		var req wire.SetVLANRequest
		if err := decode(r, &req, func() error { return errors.Join(wire.ValidatePortName(port), req.Validate()) }); err != nil {
			return nil, err
		}
		return c.setVLAN(r.Context(), port, req)
	})
	a.handle(mux, "GET /overlay/status", func(*http.Request) (any, error) {
		return c.status(), nil
	})
	return mux
}

// handle registers an authenticated endpoint.
func (a *Agent) handle(mux *http.ServeMux, pattern string, h handler) {
	mux.Handle(pattern, a.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := workContext(r, a.cfg.RequestTimeout)
		defer cancel()
		body, err := h(r.WithContext(ctx))
		a.respond(w, r, body, err)
	})))
}

// auth checks the bearer token, and the host credential once the agent
// holds one, in constant time.
func (a *Agent) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + a.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 || !a.cred.allows(r.Header.Get(wire.CredentialHeader)) {
			a.respond(w, r, nil, ErrUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// respond writes body as JSON, or maps err to its status code and logs it
// once, here.
func (a *Agent) respond(w http.ResponseWriter, r *http.Request, body any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err == nil {
		if encErr := json.NewEncoder(w).Encode(body); encErr != nil {
			a.log.Warn("response not written", "path", r.URL.Path, "err", encErr)
		}
		return
	}
	status := http.StatusInternalServerError
	out := wire.ErrorResponse{Error: err.Error()}
	var ve *wire.ValidationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ve):
		status, out.Problems = http.StatusBadRequest, ve.Problems
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadJSON):
		status = http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		status = http.StatusUnauthorized
	case errors.Is(err, ErrStaleGeneration), errors.Is(err, ErrGenerationRefused), errors.Is(err, ErrNotOwned):
		status = http.StatusConflict
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrNotHeld):
		status = http.StatusPreconditionFailed
	case errors.Is(err, netlink.ErrDumpInterrupted):
		// The host kept changing through every retry of a dump: busy, not
		// broken, and the same request may pass a moment later.
		status = http.StatusServiceUnavailable
	}
	level := slog.LevelWarn
	if status == http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "err", err}
	if from := r.Header.Get(wire.ControllerHeader); from != "" {
		attrs = append(attrs, "controller", from[:min(len(from), 200)]) // the header is the caller's
	}
	a.log.Log(r.Context(), level, "request failed", attrs...)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

// errBadJSON marks a body that is not the expected JSON.
var errBadJSON = errors.New("malformed JSON body")

// decode reads a bounded JSON body into v and validates it whole.
func decode(r *http.Request, v any, validate func() error) error {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: %s", errBadJSON, strings.TrimPrefix(err.Error(), "json: "))
	}
	return validate()
}
