package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/topology"
	"github.com/netloom/netloom/internal/wire"
)

// maxBody bounds a request body.
const maxBody = 4 << 20

var (
	errUnauthorized = errors.New("missing or wrong bearer token")
	errBadBody      = errors.New("malformed body")
	errTooLarge     = errors.New("too large")
	errForbidden    = errors.New("forbidden")
	errLabBusy      = errors.New("lab is not stopped: destroy it first")
)

type handler func(r *http.Request) (int, any, error)

// routes builds the REST API under /api/v1, and the web view under /ui/.
func (c *Controller) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		c.respond(w, r, http.StatusOK, map[string]any{"status": "ok", "id": c.cfg.Advertise, "leader": c.leader(), "leading": c.leading()}, nil)
	})
	agent, api := c.cfg.AgentToken, c.cfg.APIToken
	c.handle(mux, "GET /api/v1/controllers", api, func(r *http.Request) (int, any, error) {
		rows, err := c.controllerViews(r.Context())
		return http.StatusOK, rows, err
	})
	c.handle(mux, "POST /api/v1/hosts/register", agent, func(r *http.Request) (int, any, error) {
		var req wire.RegisterRequest
		if err := decodeJSON(r, &req); err != nil {
			return 0, nil, err
		}
		if err := validateRegister(req); err != nil {
			return 0, nil, err
		}
		only, credential, err := c.register(r.Context(), req)
		if err != nil {
			return 0, nil, err
		}
		// A host that registers gets its whole state declared at once: it may
		// have rebooted or been wiped, and teardowns may wait for it.
		c.conds.forget(req.Name)
		ctx := context.WithoutCancel(r.Context())
		c.bg.Go(func() {
			if _, err := c.converge(ctx, only, nil); err != nil {
				c.log.Warn("convergence after registration failed", "host", req.Name, "err", err)
			}
		})
		return http.StatusOK, wire.RegisterResponse{Success: true, Credential: credential}, nil
	})
	c.handle(mux, "POST /api/v1/hosts/{name}/heartbeat", agent, func(r *http.Request) (int, any, error) {
		name := r.PathValue("name")
		if err := c.checkCredential(r.Context(), name, r.Header.Get(wire.CredentialHeader)); err != nil {
			return 0, nil, err
		}
		var req wire.HeartbeatRequest
		if r.ContentLength != 0 { // the original's agents send no body
			if err := decodeJSON(r, &req); err != nil {
				return 0, nil, err
			}
		}
		var old store.Host
		if req.Underlay != nil || req.UnderlayMTU != 0 {
			var err error
			if old, err = c.store.Host(r.Context(), name); err != nil {
				return 0, nil, err
			}
		}
		if err := c.store.Heartbeat(r.Context(), name, req); err != nil {
			return 0, nil, err
		}
		changed := c.underlayChanged(old, req)
		moved, err := c.catchUp(r.Context(), name, req.ObservedGeneration)
		if err != nil {
			return 0, nil, err
		}
		// Its declarations were refused until now, or its links' underlay
		// changed: their states follow from a round.
		if moved || changed {
			ctx := context.WithoutCancel(r.Context())
			c.bg.Go(func() {
				if _, err := c.converge(ctx, map[string]bool{name: true}, nil); err != nil {
					c.log.Warn("convergence after a generation catch-up failed", "host", name, "err", err)
				}
			})
		}
		return http.StatusOK, map[string]bool{"success": true}, nil
	})
	c.handle(mux, "GET /api/v1/hosts", api, func(r *http.Request) (int, any, error) {
		hosts, err := c.store.Hosts(r.Context())
		if err != nil {
			return 0, nil, err
		}
		out := []wire.HostView{}
		for _, h := range hosts {
			out = append(out, c.hostView(h))
		}
		return http.StatusOK, out, nil
	})
	c.handle(mux, "DELETE /api/v1/hosts/{name}", api, func(r *http.Request) (int, any, error) {
		name := r.PathValue("name")
		c.stateMu.Lock() // no round prepares a declaration to it meanwhile
		defer c.stateMu.Unlock()
		labs, err := c.store.DeleteHost(r.Context(), name, r.URL.Query().Get("force") == "true")
		if err != nil {
			return 0, nil, err
		}
		c.log.Warn("host removed", "host", name, "labs_unplaced", labs)
		return http.StatusOK, wire.HostRemoved{Host: name, Unplaced: append([]string{}, labs...)}, nil
	})
	c.handle(mux, "POST /api/v1/hosts/{name}/unbind", api, func(r *http.Request) (int, any, error) {
		name := r.PathValue("name")
		if err := c.store.Unbind(r.Context(), name); err != nil {
			return 0, nil, err
		}
		c.log.Warn("host unbound: the next agent to register it takes its name", "host", name)
		return http.StatusOK, map[string]string{"host": name}, nil
	})
	c.handle(mux, "GET /api/v1/hosts/{name}", api, func(r *http.Request) (int, any, error) {
		h, err := c.store.Host(r.Context(), r.PathValue("name"))
		return http.StatusOK, c.hostView(h), err
	})
	c.handle(mux, "POST /api/v1/labs", api, func(r *http.Request) (int, any, error) {
		lab, err := c.decodeLab(r)
		if err != nil {
			return 0, nil, err
		}
		if _, err := c.store.CreateLab(r.Context(), lab); err != nil {
			return 0, nil, err
		}
		v, err := c.store.LabView(r.Context(), lab.Name)
		return http.StatusCreated, v, err
	})
	c.handle(mux, "POST /api/v1/labs/apply", api, func(r *http.Request) (int, any, error) {
		lab, err := c.decodeLab(r)
		if err != nil {
			return 0, nil, err
		}
		planOnly := r.URL.Query().Get("plan") == "true"
		resp, ro, err := c.apply(r.Context(), lab, planOnly)
		if err != nil || planOnly {
			return http.StatusOK, resp, err
		}
		c.deployLater(r.Context(), lab.Name, ro)
		return http.StatusAccepted, resp, nil // GET /api/v1/labs/{lab} shows how it goes
	})
	c.handle(mux, "GET /api/v1/labs", api, func(r *http.Request) (int, any, error) {
		labs, err := c.store.Labs(r.Context())
		if labs == nil {
			labs = []store.Lab{}
		}
		return http.StatusOK, labs, err
	})
	c.handle(mux, "GET /api/v1/labs/{lab}", api, func(r *http.Request) (int, any, error) {
		return c.views.get(r.URL.Path, func() (int, any, error) {
			// Shared: the read outlives the client that began it.
			v, err := c.store.LabView(context.WithoutCancel(r.Context()), r.PathValue("lab"))
			return http.StatusOK, v, err
		})
	})
	mux.Handle("POST /api/v1/labs/{lab}/nodes/{node}/exec", c.auth(api, false, http.HandlerFunc(c.serveExec)))
	c.handle(mux, "GET /api/v1/labs/{lab}/links", api, func(r *http.Request) (int, any, error) {
		return c.views.get(r.URL.Path, func() (int, any, error) {
			v, err := c.store.LabView(context.WithoutCancel(r.Context()), r.PathValue("lab"))
			return http.StatusOK, v.Links, err
		})
	})
	// Deploy and destroy answer when done, but run to the end even when
	// their client goes.
	c.handle(mux, "POST /api/v1/labs/{lab}/deploy", api, func(r *http.Request) (int, any, error) {
		resp, err := c.deploy(context.WithoutCancel(r.Context()), r.PathValue("lab"))
		return http.StatusOK, resp, err
	})
	c.handle(mux, "POST /api/v1/labs/{lab}/destroy", api, func(r *http.Request) (int, any, error) {
		resp, err := c.destroy(context.WithoutCancel(r.Context()), r.PathValue("lab"))
		status := http.StatusOK
		if resp.State == store.LabStopping {
			status = http.StatusAccepted // finishes when the hosts return
		}
		return status, resp, err
	})
	c.handle(mux, "POST /api/v1/converge", api, func(r *http.Request) (int, any, error) {
		var only map[string]bool
		if lab := r.URL.Query().Get("lab"); lab != "" {
			v, err := c.store.LabView(r.Context(), lab)
			if err != nil {
				return 0, nil, err
			}
			only = map[string]bool{}
			for _, n := range v.Nodes {
				if n.PlacedOn != "" {
					only[n.PlacedOn] = true
				}
			}
		}
		if r.URL.Query().Get("plan") == "true" {
			plan, err := c.convergePlan(r.Context(), only)
			return http.StatusOK, plan, err
		}
		resp, err := c.converge(r.Context(), only, nil)
		return http.StatusOK, resp, err
	})
	c.handle(mux, "GET /api/v1/converge", api, func(*http.Request) (int, any, error) {
		return http.StatusOK, c.summariesNow(), nil
	})
	c.handle(mux, "DELETE /api/v1/labs/{lab}", api, func(r *http.Request) (int, any, error) {
		l, err := c.store.LabByName(r.Context(), r.PathValue("lab"))
		if err != nil {
			return 0, nil, err
		}
		if l.State != store.LabStopped {
			return 0, nil, fmt.Errorf("delete lab %s (%s): %w", l.Name, l.State, errLabBusy)
		}
		return http.StatusOK, map[string]bool{"success": true}, c.store.DeleteLab(r.Context(), l.ID)
	})
	c.webRoutes(mux) // web.go
	return c.follow(c.guard(c.views.versioned(mux)))
}

// register records a host and returns the hosts whose declarations its
// registration changes: its own, or every host's when its data address
// changed, since its peers' tunnels point at it. An agent that applied a
// generation above the controller's counter (a restored database) moves
// the counter past it.
func (c *Controller) register(ctx context.Context, req wire.RegisterRequest) (map[string]bool, string, error) {
	old, err := c.store.Host(ctx, req.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, "", err
	}
	if old.Credential != "" && !sameSecret(req.Credential, old.Credential) {
		return nil, "", fmt.Errorf("%w: host %s is bound to the agent that registered it first, and this one does not hold its credential "+
			"(netloom host rm %s lets another agent take the name)", errForbidden, req.Name, req.Name)
	}
	credential := old.Credential
	if credential == "" && slices.Contains(req.Capabilities, wire.CapHostCredential) {
		// The agent's own, well formed, is kept: it held it before this
		// database (restored from a backup) knew it.
		credential = req.Credential
		if len(credential) != 2*credentialBytes || strings.Trim(credential, "0123456789abcdef") != "" {
			credential = newCredential()
		}
	}
	if _, err := c.catchUp(ctx, req.Name, req.ObservedGeneration); err != nil {
		return nil, "", err
	}
	bound, err := c.store.RegisterHost(ctx, store.Host{Name: req.Name, Address: req.Address, DataIP: req.DataIP,
		Capabilities: req.Capabilities, Version: req.Version, UnderlayMTU: req.UnderlayMTU, Credential: credential})
	if err != nil {
		return nil, "", err
	}
	if bound != credential { // another agent bound the name meanwhile
		return nil, "", fmt.Errorf("%w: host %s was just bound to another agent", errForbidden, req.Name)
	}
	c.log.Info("host registered", "host", req.Name, "address", req.Address, "data_ip", req.DataIP, "bound", credential != "")
	if old.DataIP != "" && old.DataIP != req.DataIP {
		c.log.Info("host data address changed", "host", req.Name, "from", old.DataIP, "to", req.DataIP)
		return nil, credential, nil
	}
	return map[string]bool{req.Name: true}, credential, nil
}

// credentialBytes is the size of a host credential.
const credentialBytes = 32

// newCredential returns a fresh host credential, hex.
func newCredential() string {
	b := make([]byte, credentialBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sameSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// checkCredential refuses a heartbeat for a bound host without its
// credential.
func (c *Controller) checkCredential(ctx context.Context, name, credential string) error {
	h, err := c.store.Host(ctx, name)
	if err != nil {
		return err // an unknown host registers again
	}
	if h.Credential != "" && !sameSecret(credential, h.Credential) {
		return fmt.Errorf("%w: host %s is bound to another agent's credential", errForbidden, name)
	}
	return nil
}

// underlayChanged logs, once per change, what a host's agent found on the
// underlay to each peer, and reports whether anything changed.
func (c *Controller) underlayChanged(old store.Host, hb wire.HeartbeatRequest) bool {
	if hb.Underlay == nil && hb.UnderlayMTU == 0 {
		return false
	}
	changed := false
	if old.UnderlayMTU != 0 && hb.UnderlayMTU != old.UnderlayMTU {
		c.log.Warn("underlay MTU changed", "host", old.Name, "from", old.UnderlayMTU, "to", hb.UnderlayMTU)
		changed = true
	}
	was := map[string]wire.UnderlayCheck{}
	for _, u := range old.Underlay {
		was[u.PeerIP] = u
	}
	for _, u := range hb.Underlay {
		w, seen := was[u.PeerIP]
		delete(was, u.PeerIP)
		if seen && w.Status == u.Status && w.PathMTU == u.PathMTU && w.NeedMTU == u.NeedMTU {
			continue
		}
		changed = true
		if u.Status == wire.UnderlayOK {
			c.log.Info("underlay passes", "host", old.Name, "peer", u.PeerIP, "need_mtu", u.NeedMTU)
		} else {
			c.log.Warn("underlay fails", "host", old.Name, "peer", u.PeerIP, "status", u.Status, "why", underlayWhy(u))
		}
	}
	return changed || len(was) > 0
}

// catchUp moves the generation counter past an agent's last applied
// generation, if it is behind (a database restored from a backup): else
// every declaration to that agent would be refused as stale.
func (c *Controller) catchUp(ctx context.Context, host string, observed int64) (bool, error) {
	if observed <= 0 {
		return false, nil
	}
	moved, err := c.store.AdvanceGeneration(ctx, observed)
	if err != nil {
		return false, err
	}
	if moved {
		c.log.Warn("generation behind an agent's: caught up", "host", host, "generation", observed)
	}
	return moved, nil
}

// hostView is a host as the API shows it: offline without a recent
// heartbeat, degraded while its last declaration got no answer.
func (c *Controller) hostView(h store.Host) wire.HostView {
	v := wire.HostView{Name: h.Name, Address: h.Address, DataIP: h.DataIP, Status: "offline", Version: h.Version,
		Capabilities: h.Capabilities, LastHeartbeat: h.LastHeartbeat, UnderlayMTU: h.UnderlayMTU, Underlay: h.Underlay}
	if c.online(h) {
		v.Status = "online"
	}
	if ct := c.lines.contact(h.Name); !ct.at.IsZero() {
		v.LastDeclaration = &ct.at
		if ct.failed != "" && v.Status == "online" {
			v.Status, v.StatusReason, v.DegradedSince = "degraded", ct.failed, &ct.since
		}
	}
	return v
}

// handle registers an endpoint that needs token; a GET of the API takes
// the read-only token too. API requests take one of MaxRequests slots;
// agents' never wait for one, or a host would go offline under a load it
// did not cause.
func (c *Controller) handle(mux *http.ServeMux, pattern, token string, h handler) {
	reads := strings.HasPrefix(pattern, http.MethodGet+" ") && token == c.cfg.APIToken
	limited := token != c.cfg.AgentToken
	mux.Handle(pattern, c.auth(token, reads, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limited {
			release, err := c.admit(r.Context())
			if err != nil {
				c.respond(w, r, 0, nil, err)
				return
			}
			defer release()
		}
		status, body, err := h(r)
		c.respond(w, r, status, body, err)
	})))
}

// auth lets through requests that carry token, or, when reads, the API or
// read-only token.
func (c *Controller) auth(token string, reads bool, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ok := subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
		if !ok && reads {
			ok = c.readToken(bearer)
		}
		if !ok {
			c.respond(w, r, 0, nil, errUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// respond writes body as JSON, or maps err to a status code and logs it once.
func (c *Controller) respond(w http.ResponseWriter, r *http.Request, status int, body any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if raw, ok := body.(json.RawMessage); ok && err == nil { // encoded once, shared
		w.WriteHeader(status)
		_, _ = w.Write(raw)
		_, _ = w.Write([]byte{'\n'})
		return
	}
	if err == nil {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	status = http.StatusInternalServerError
	out := map[string]any{"error": err.Error()}
	var te *topology.Error
	var ve *wire.ValidationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, errTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &te):
		status, out["problems"] = http.StatusBadRequest, te.Problems
	case errors.As(err, &ve):
		status, out["problems"] = http.StatusBadRequest, ve.Problems
	case errors.Is(err, errBadBody):
		status = http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		status = http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		status = http.StatusForbidden
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errNotPlaced):
		status = http.StatusNotFound
	case errors.Is(err, store.ErrConflict), errors.Is(err, errLabBusy):
		status = http.StatusConflict
	case errors.Is(err, errPlacement):
		status = http.StatusConflict // nothing to place the lab on
	case errors.Is(err, errAgentDown):
		status = http.StatusBadGateway
	case errors.Is(err, errPathTooLong):
		status = http.StatusRequestURITooLong
	case errors.Is(err, errOverloaded), errors.Is(err, errNoLeader):
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	level := slog.LevelWarn
	if status == http.StatusInternalServerError {
		level = slog.LevelError
	}
	if status == http.StatusInternalServerError {
		// Its text may quote SQL or Go types: the log has it, the client
		// an id to find it by.
		id := make([]byte, 6)
		_, _ = rand.Read(id)
		out["error"] = fmt.Sprintf("internal error %x: the controller's log has the detail", id)
		err = fmt.Errorf("internal error %x: %w", id, err)
	}
	c.failures.log(c.log, r, level, status, err)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

func decodeJSON(r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &te):
			// Said in JSON's terms: Go's type names mean nothing to a client.
			return fmt.Errorf("%w: %s: a %s where %s is wanted", errBadBody, cmp.Or(te.Field, "the body"), te.Value, jsonKind(te.Type))
		}
		return fmt.Errorf("%w: %v", errBadBody, err)
	}
	// One JSON value is the whole body: what follows it is a mistake.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: more after the JSON value", errBadBody)
	}
	return nil
}

// jsonKind is what JSON value a Go type is read from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a number"
}

// decodeLab reads a lab (readLab) and holds it to the controller's caps on
// nodes and links.
func (c *Controller) decodeLab(r *http.Request) (topology.Lab, error) {
	lab, err := readLab(r)
	if err != nil {
		return topology.Lab{}, err
	}
	if n := len(lab.Nodes); n > c.cfg.MaxLabNodes {
		return topology.Lab{}, fmt.Errorf("%w: lab %s has %d nodes: at most %d (the controller's --max-lab-nodes)", errTooLarge, lab.Name, n, c.cfg.MaxLabNodes)
	}
	if n := len(lab.Links); n > c.cfg.MaxLabLinks {
		return topology.Lab{}, fmt.Errorf("%w: lab %s has %d links: at most %d (the controller's --max-lab-links)", errTooLarge, lab.Name, n, c.cfg.MaxLabLinks)
	}
	return lab, nil
}

// readLab reads a lab file (YAML), a lab file with the files it names
// (multipart/form-data: a part "lab", and a part "file" per file whose
// filename is its path as the lab names it), or a JSON lab, by
// Content-Type.
func readLab(r *http.Request) (topology.Lab, error) {
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		var lab topology.Lab
		if err := decodeJSON(r, &lab); err != nil {
			return topology.Lab{}, err
		}
		if err := lab.Validate(); err != nil {
			return topology.Lab{}, err
		}
		return lab, lab.Ship("lab", lab.Files)
	}
	name := r.URL.Query().Get("file")
	if name == "" {
		name = "lab.yaml"
	}
	body := http.MaxBytesReader(nil, r.Body, maxBody)
	if strings.HasPrefix(ct, "multipart/form-data") {
		data, files, err := readBundle(body, ct)
		if err != nil {
			return topology.Lab{}, err
		}
		lab, err := topology.Decode(name, data)
		if err != nil {
			return topology.Lab{}, err
		}
		return lab, lab.Ship(name, files)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return topology.Lab{}, err // too large: the only way reading a body fails here
	}
	lab, err := topology.Decode(name, data)
	if err != nil {
		return topology.Lab{}, err
	}
	return lab, lab.Ship(name, nil)
}

// readBundle reads a multipart lab: the lab file and its files.
func readBundle(body io.Reader, contentType string) ([]byte, map[string][]byte, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, nil, fmt.Errorf("%w: Content-Type %q: want multipart/form-data with a boundary", errBadBody, contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	var lab []byte
	files := map[string][]byte{}
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, badPart(err)
		}
		// The raw header: Part.FileName keeps only the last element of
		// the path, and the path is what the lab names.
		_, disp, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: a part's Content-Disposition: %v", errBadBody, err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, badPart(err)
		}
		switch disp["name"] {
		case "lab":
			lab = data
		case "file":
			if disp["filename"] == "" {
				return nil, nil, fmt.Errorf("%w: a file part without a filename", errBadBody)
			}
			files[path.Clean(disp["filename"])] = data
		default:
			return nil, nil, fmt.Errorf("%w: part %q: want lab or file", errBadBody, disp["name"])
		}
	}
	if lab == nil {
		return nil, nil, fmt.Errorf("%w: no part named lab", errBadBody)
	}
	return lab, files, nil
}

func badPart(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return fmt.Errorf("%w: %v", errBadBody, err)
}

// hostNameRE is what a lab file's host: accepts.
var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func validateRegister(r wire.RegisterRequest) error {
	var ps []wire.Problem
	if !hostNameRE.MatchString(r.Name) || r.Name == "." || r.Name == ".." {
		// A lab file's host: must be able to name it, and it is a path
		// element of the API.
		ps = append(ps, wire.Problem{Field: "name", Reason: fmt.Sprintf("%q: want 1 to 64 characters of [A-Za-z0-9_.-], not . or ..", r.Name)})
	}
	if !strings.HasPrefix(r.Address, "http://") && !strings.HasPrefix(r.Address, "https://") {
		ps = append(ps, wire.Problem{Field: "address", Reason: fmt.Sprintf("%q: want an http:// URL", r.Address)})
	}
	if why := wire.CheckUnicast(r.DataIP); why != "" {
		ps = append(ps, wire.Problem{Field: "data_ip", Reason: why})
	}
	if len(ps) > 0 {
		return &wire.ValidationError{Problems: ps}
	}
	return nil
}
