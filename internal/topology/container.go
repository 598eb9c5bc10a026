package topology

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/netloom/netloom/internal/wire"
)

// Refs lists the files the lab names that live beside it on the user's
// machine: relative bind sources, startup-configs and env-files, cleaned.
// The CLI ships them with the lab (a directory with every file below it).
func (l Lab) Refs() []string {
	refs := map[string]bool{}
	for _, n := range l.Nodes {
		if n.Image == "" {
			continue // a netns node applies none of them
		}
		for _, r := range n.refs() {
			refs[r] = true
		}
	}
	return slices.Sorted(maps.Keys(refs))
}

func (n Node) refs() []string {
	var refs []string
	if n.StartupConfig != "" && n.Kind == "frr" {
		refs = append(refs, path.Clean(n.StartupConfig))
	}
	for _, f := range n.EnvFiles {
		refs = append(refs, path.Clean(f))
	}
	if n.Container != nil {
		for _, b := range n.Container.Binds {
			if pb, err := wire.ParseBind(b); err == nil && pb.Relative() {
				refs = append(refs, path.Clean(pb.Source))
			}
		}
	}
	return refs
}

// Ship gives the lab the files shipped with it and checks that it has every
// file it names, within the size limits; files it does not name are
// dropped. file names the lab file in errors.
func (l *Lab) Ship(file string, files map[string][]byte) error {
	var ps []Problem
	total := 0
	for _, k := range slices.Sorted(maps.Keys(files)) {
		if len(files[k]) > wire.MaxFileSize {
			ps = append(ps, Problem{Field: "files." + k, Reason: fmt.Sprintf("%d bytes: a shipped file may have at most %d", len(files[k]), wire.MaxFileSize)})
		}
		total += len(files[k])
	}
	if total > wire.MaxFilesSize {
		ps = append(ps, Problem{Field: "files", Reason: fmt.Sprintf("%d bytes: a lab's files may have at most %d in all", total, wire.MaxFilesSize)})
	}
	kept := map[string][]byte{}
	for _, n := range l.Nodes {
		if n.Image == "" {
			continue
		}
		_, _, nps := n.resolve(files)
		ps = append(ps, nps...)
		for _, r := range n.refs() {
			for k, data := range files {
				if k == r || strings.HasPrefix(k, r+"/") {
					kept[k] = data
				}
			}
		}
	}
	if len(ps) > 0 {
		return &Error{File: file, Problems: ps}
	}
	l.Files = kept
	if len(kept) == 0 {
		l.Files = nil
	}
	return nil
}

// Resolve turns a node's settings into what its container runtime is
// given: env-files read into env, its kind's files made and bound (frr:
// /etc/frr/frr.conf from its startup-config, /etc/frr/daemons from
// extras.frr.daemons), and the shipped files its relative binds name.
func (n Node) Resolve(files map[string][]byte) (*wire.Container, []wire.File, error) {
	c, shipped, ps := n.resolve(files)
	if len(ps) > 0 {
		return nil, nil, &Error{Problems: ps}
	}
	return c, shipped, nil
}

func (n Node) resolve(files map[string][]byte) (*wire.Container, []wire.File, []Problem) {
	f := "topology.nodes." + n.Name
	var ps []Problem
	c := &wire.Container{}
	if n.Container != nil {
		cp := *n.Container
		cp.Env = maps.Clone(cp.Env)
		cp.Sysctls = maps.Clone(cp.Sysctls)
		c = &cp
	}
	out := map[string][]byte{}
	for i, ef := range n.EnvFiles {
		data, ok := files[path.Clean(ef)]
		if !ok {
			ps = append(ps, Problem{Field: fmt.Sprintf("%s.env-files[%d]", f, i), Reason: notShipped(ef)})
			continue
		}
		env, err := parseEnvFile(data)
		if err != nil {
			ps = append(ps, Problem{Field: fmt.Sprintf("%s.env-files[%d]", f, i), Reason: fmt.Sprintf("%s: %v", ef, err)})
			continue
		}
		for k, v := range env {
			if _, set := c.Env[k]; !set { // env given in the file wins
				if c.Env == nil {
					c.Env = map[string]string{}
				}
				c.Env[k] = v
			}
		}
	}
	if n.Kind == "frr" {
		conf := []byte(defaultFRRConf(n.Name))
		if n.StartupConfig != "" {
			data, ok := files[path.Clean(n.StartupConfig)]
			if !ok {
				ps = append(ps, Problem{Field: f + ".startup-config", Reason: notShipped(n.StartupConfig)})
			}
			conf = data
		}
		daemons, err := frrDaemons(n.FRRDaemons)
		if err != nil {
			ps = append(ps, Problem{Field: f + ".extras.frr.daemons", Reason: err.Error()})
		}
		kindFiles := map[string][]byte{"frr.conf": conf, "daemons": []byte(daemons), "vtysh.conf": []byte("service integrated-vtysh-config\n")}
		var binds []string
		for _, name := range slices.Sorted(maps.Keys(kindFiles)) {
			key := ".netloom/frr/" + name
			out[key] = kindFiles[name]
			binds = append(binds, key+":/etc/frr/"+name)
		}
		c.Binds = mergeBinds(binds, c.Binds) // the user's own binds win
		// FRR puts routes into the kernel, which forwards only when asked.
		c.Sysctls = mergeMap(map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}, c.Sysctls)
	}
	for _, b := range c.Binds {
		pb, err := wire.ParseBind(b)
		if err != nil || !pb.Relative() {
			continue
		}
		src := path.Clean(pb.Source)
		if _, made := out[src]; made {
			continue
		}
		found := false
		if data, ok := files[src]; ok {
			out[src], found = data, true
		}
		for k, data := range files {
			if strings.HasPrefix(k, src+"/") {
				out[k], found = data, true
			}
		}
		if !found { // only the user's own binds name shipped files
			i := slices.Index(n.Container.Binds, b)
			ps = append(ps, Problem{Field: fmt.Sprintf("%s.binds[%d]", f, i), Reason: notShipped(pb.Source)})
		}
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	var shipped []wire.File
	for _, k := range slices.Sorted(maps.Keys(out)) {
		shipped = append(shipped, wire.File{Path: k, Data: out[k]})
	}
	if c.IsZero() {
		c = nil
	}
	return c, shipped, nil
}

func notShipped(p string) string {
	return fmt.Sprintf("%s: not shipped with the lab (netloom apply -f ships the files a lab names beside it)", p)
}

// parseEnvFile reads KEY=value lines, skipping blanks and # comments, as
// containerlab and Docker read env-files.
func parseEnvFile(data []byte) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want KEY=value", line)
		}
		env[strings.TrimSpace(k)] = v
	}
	return env, sc.Err()
}

// frrSwitchable are the daemons FRR's daemons file turns on or off;
// frrAlways are started whatever it says, and may be named without effect.
var (
	frrSwitchable = []string{"bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "pim6d", "ldpd",
		"nhrpd", "eigrpd", "babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd"}
	frrAlways = []string{"zebra", "staticd", "mgmtd", "watchfrr"}
)

// frrDaemons renders /etc/frr/daemons: the daemons named on, or every one
// when none is named, as containerlab's frr kind does.
func frrDaemons(names []string) (string, error) {
	on := map[string]bool{}
	for _, d := range names {
		switch {
		case slices.Contains(frrSwitchable, d):
			on[d] = true
		case slices.Contains(frrAlways, d):
		default:
			return "", fmt.Errorf("%q: not an FRR daemon (known: %s)", d, strings.Join(slices.Concat(frrSwitchable, frrAlways), ", "))
		}
	}
	var b strings.Builder
	b.WriteString("# Written by netloom from the lab file's extras.frr.daemons.\n")
	for _, d := range frrSwitchable {
		v := "no"
		if len(names) == 0 || on[d] {
			v = "yes"
		}
		fmt.Fprintf(&b, "%s=%s\n", d, v)
	}
	b.WriteString("vtysh_enable=yes\n")
	// Each daemon's vty listens on loopback only; zebra's netlink buffer is
	// sized for full tables.
	b.WriteString("zebra_options=\"-A 127.0.0.1 -s 90000000\"\n")
	for _, d := range slices.Concat([]string{"staticd", "mgmtd"}, frrSwitchable) {
		addr := "127.0.0.1"
		if strings.HasSuffix(d, "6d") || d == "ripngd" {
			addr = "::1"
		}
		fmt.Fprintf(&b, "%s_options=\"-A %s\"\n", d, addr)
	}
	return b.String(), nil
}

// defaultFRRConf is a node's frr.conf when it has no startup-config.
func defaultFRRConf(node string) string {
	return "frr defaults traditional\nhostname " + node + "\nservice integrated-vtysh-config\n!\n"
}

// settingsProblems checks a node's container settings, at their positions
// in the file when they came from one.
func (n Node) settingsProblems(pos map[string][2]int) []Problem {
	f := "topology.nodes." + n.Name
	var ps []Problem
	for _, p := range n.Container.Problems() {
		ps = append(ps, at(pos, f+"."+p.Field, Problem{Field: f + "." + p.Field, Reason: p.Reason}))
	}
	for i, ef := range n.EnvFiles {
		if ef == "" || len(ef) > 512 {
			ff := fmt.Sprintf("%s.env-files[%d]", f, i)
			ps = append(ps, at(pos, ff, Problem{Field: ff, Reason: fmt.Sprintf("%d characters: want 1 to 512", len(ef))}))
		}
	}
	if len(n.StartupConfig) > 512 {
		ps = append(ps, at(pos, f+".startup-config", Problem{Field: f + ".startup-config", Reason: fmt.Sprintf("%d characters: want at most 512", len(n.StartupConfig))}))
	}
	if _, err := frrDaemons(n.FRRDaemons); err != nil {
		ps = append(ps, at(pos, f+".extras.frr.daemons", Problem{Field: f + ".extras.frr.daemons", Reason: err.Error()}))
	}
	return ps
}

// settingNames names the container settings a node has, as the lab file
// spells them.
func (n Node) settingNames() []string {
	var names []string
	add := func(name string, set bool) {
		if set {
			names = append(names, name)
		}
	}
	if c := n.Container; c != nil {
		add("cmd", c.Cmd != "")
		add("entrypoint", c.Entrypoint != "")
		add("env", len(c.Env) > 0)
		add("labels", len(c.Labels) > 0)
		add("user", c.User != "")
		add("binds", len(c.Binds) > 0)
		add("ports", len(c.Ports) > 0)
		add("cap-add", len(c.CapAdd) > 0)
		add("sysctls", len(c.Sysctls) > 0)
		add("memory", c.Memory != "")
		add("cpu", c.CPU != 0)
	}
	add("startup-config", n.StartupConfig != "")
	add("env-files", len(n.EnvFiles) > 0)
	add("extras.frr.daemons", len(n.FRRDaemons) > 0)
	return names
}
