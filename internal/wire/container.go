package wire

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Container is what a container runtime applies to a node beyond its image:
// containerlab's node settings, resolved (env-files read into Env, a kind's
// files turned into Binds). A relative bind source names a File shipped
// with the lab; the agent writes it under its state directory and binds
// that.
type Container struct {
	Cmd        string            `json:"cmd,omitempty"`        // split like a shell does
	Entrypoint string            `json:"entrypoint,omitempty"` // likewise
	Env        map[string]string `json:"env,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	User       string            `json:"user,omitempty"`
	Binds      []string          `json:"binds,omitempty"` // source:target[:ro|rw]
	Ports      []string          `json:"ports,omitempty"` // [ip:]hostport:port[/tcp|udp], published on the node's host
	CapAdd     []string          `json:"cap_add,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`
	Memory     string            `json:"memory,omitempty"` // e.g. 512MB, 1GiB
	CPU        float64           `json:"cpu,omitempty"`    // in CPUs, e.g. 0.5
}

// File is a file shipped with a lab: a relative bind source or a
// startup-config that lives beside the lab file on the user's machine.
type File struct {
	Path string `json:"path"` // as the lab file names it, cleaned
	Data []byte `json:"data"`
}

// Limits of what a lab ships.
const (
	MaxFileSize  = 1 << 20 // one file
	MaxFilesSize = 3 << 20 // all of a lab's files, within a request body
)

// IsZero reports whether c sets nothing.
func (c *Container) IsZero() bool {
	return c == nil || c.Cmd == "" && c.Entrypoint == "" && len(c.Env) == 0 && len(c.Labels) == 0 && c.User == "" &&
		len(c.Binds) == 0 && len(c.Ports) == 0 && len(c.CapAdd) == 0 && len(c.Sysctls) == 0 && c.Memory == "" && c.CPU == 0
}

// Bind is one parsed bind.
type Bind struct {
	Source, Target, Mode string
}

// Relative reports whether the bind's source is a file shipped with the lab.
func (b Bind) Relative() bool { return !path.IsAbs(b.Source) }

func (b Bind) String() string {
	s := b.Source + ":" + b.Target
	if b.Mode != "" {
		s += ":" + b.Mode
	}
	return s
}

// ParseBind reads containerlab's "source:target[:mode]".
func ParseBind(s string) (Bind, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Bind{}, fmt.Errorf("%q: want source:target or source:target:ro", s)
	}
	b := Bind{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		b.Mode = parts[2]
		if b.Mode != "ro" && b.Mode != "rw" {
			return Bind{}, fmt.Errorf("%q: mode %q: want ro or rw", s, b.Mode)
		}
	}
	if !path.IsAbs(b.Target) {
		return Bind{}, fmt.Errorf("%q: target %q: want an absolute path in the node", s, b.Target)
	}
	if len(s) > 1024 {
		return Bind{}, fmt.Errorf("%d characters: want at most 1024", len(s))
	}
	return b, nil
}

// Port is one parsed published port.
type Port struct {
	HostIP   string
	HostPort int
	Port     int
	Proto    string // tcp or udp
}

var portRE = regexp.MustCompile(`^(?:([0-9.]+):)?(\d{1,5}):(\d{1,5})(?:/(tcp|udp))?$`)

// ParsePort reads "[ip:]hostport:port[/proto]".
func ParsePort(s string) (Port, error) {
	m := portRE.FindStringSubmatch(s)
	if m == nil {
		return Port{}, fmt.Errorf("%q: want [ip:]hostport:port[/tcp|udp]", s)
	}
	p := Port{HostIP: m[1], Proto: cmp.Or(m[4], "tcp")}
	p.HostPort, _ = strconv.Atoi(m[2])
	p.Port, _ = strconv.Atoi(m[3])
	if p.HostPort < 1 || p.HostPort > 65535 || p.Port < 1 || p.Port > 65535 {
		return Port{}, fmt.Errorf("%q: ports are 1 to 65535", s)
	}
	if p.Proto != "tcp" {
		return Port{}, fmt.Errorf("%q: netloom publishes tcp ports only", s)
	}
	if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
		return Port{}, fmt.Errorf("%q: %q is not an IP address", s, p.HostIP)
	}
	return p, nil
}

var memRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)$`)

// ParseMemory reads a memory limit as containerlab and Docker do: a number
// with an optional unit (b, k, m, g, t, with or without "b" or "ib"), in
// powers of 1024.
func ParseMemory(s string) (int64, error) {
	m := memRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%q: want a size such as 512MB or 1GiB", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	shift := map[byte]uint{'k': 10, 'm': 20, 'g': 30, 't': 40}
	if m[2] != "" && m[2][0] != 'b' {
		n *= float64(uint64(1) << shift[m[2][0]])
	}
	if n < 6<<20 { // Docker's own minimum
		return 0, fmt.Errorf("%q: want at least 6MB", s)
	}
	if n > 1<<50 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(n), nil
}

var (
	capRE    = regexp.MustCompile(`^[A-Z_]{2,32}$`)
	sysctlRE = regexp.MustCompile(`^[a-z0-9_./-]{1,128}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)
	labelRE  = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,128}$`)
)

// Problems lists what is wrong with c, with fields relative to it ("binds[0]").
func (c *Container) Problems() []Problem {
	if c == nil {
		return nil
	}
	var ps problems
	for _, f := range []struct{ name, v string }{{"cmd", c.Cmd}, {"entrypoint", c.Entrypoint}, {"user", c.User}} {
		if len(f.v) > 4096 {
			ps.add(f.name, "%d characters: want at most 4096", len(f.v))
		}
	}
	checkMap := func(field string, m map[string]string, keyRE *regexp.Regexp) {
		if len(m) > 256 {
			ps.add(field, "%d entries: want at most 256", len(m))
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !keyRE.MatchString(k) {
				ps.add(field+"."+k, "%q: not a valid name", k)
			} else if len(m[k]) > 4096 {
				ps.add(field+"."+k, "%d characters: want at most 4096", len(m[k]))
			}
		}
	}
	checkMap("env", c.Env, envRE)
	checkMap("labels", c.Labels, labelRE)
	checkMap("sysctls", c.Sysctls, sysctlRE)
	for i, b := range c.Binds {
		if _, err := ParseBind(b); err != nil {
			ps.add(fmt.Sprintf("binds[%d]", i), "%v", err)
		}
	}
	for i, p := range c.Ports {
		if _, err := ParsePort(p); err != nil {
			ps.add(fmt.Sprintf("ports[%d]", i), "%v", err)
		}
	}
	for i, cp := range c.CapAdd {
		if !capRE.MatchString(strings.TrimPrefix(strings.ToUpper(cp), "CAP_")) {
			ps.add(fmt.Sprintf("cap-add[%d]", i), "%q: want a capability name such as NET_ADMIN", cp)
		}
	}
	if c.Memory != "" {
		if _, err := ParseMemory(c.Memory); err != nil {
			ps.add("memory", "%v", err)
		}
	}
	if c.CPU < 0 || c.CPU > 1024 {
		ps.add("cpu", "%g: want 0 to 1024 CPUs", c.CPU)
	}
	return ps
}

// checkFiles checks a node's shipped files: their sizes, and paths the
// agent can write below its own folder.
func checkFiles(ps *problems, field string, files []File) {
	total := 0
	for i, f := range files {
		fi := fmt.Sprintf("%s[%d]", field, i)
		if f.Path == "" || len(f.Path) > 512 || path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || strings.ContainsRune(f.Path, 0) {
			ps.add(fi+".path", "%q: want a clean relative path of 1 to 512 characters", f.Path)
		}
		if len(f.Data) > MaxFileSize {
			ps.add(fi+".data", "%d bytes: want at most %d", len(f.Data), MaxFileSize)
		}
		total += len(f.Data)
	}
	if total > MaxFilesSize {
		ps.add(field, "%d bytes: want at most %d in all", total, MaxFilesSize)
	}
}

// NodeSettings are a node's container settings as its lab file gives them,
// before they are resolved against the files shipped with the lab.
type NodeSettings struct {
	Container     *Container `json:"container,omitempty"`
	StartupConfig string     `json:"startup_config,omitempty"` // a shipped file, for kinds that take one
	EnvFiles      []string   `json:"env_files,omitempty"`      // shipped files of KEY=value lines
	FRRDaemons    []string   `json:"frr_daemons,omitempty"`    // extras.frr.daemons
}

// IsZero reports whether s sets nothing.
func (s NodeSettings) IsZero() bool {
	return s.Container.IsZero() && s.StartupConfig == "" && len(s.EnvFiles) == 0 && len(s.FRRDaemons) == 0
}
