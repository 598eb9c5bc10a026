package topology

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The keys a lab file may have, by where they sit: containerlab's, with
// netloom's own (host, allow-fragmentation). A key that is not here but is
// close to one that is is taken for a typo and is an error; any other
// unknown key is warned about and ignored, so that a file written for a
// newer containerlab still loads.
var (
	topKeys      = keySet("name", "prefix", "mgmt", "settings", "topology")
	topologyKeys = keySet("nodes", "links", "kinds", "defaults", "groups")
	// mgmtKeys are containerlab's management network settings; netloom
	// applies ipv4-subnet (and reads network as a name only).
	mgmtKeys = keySet("network", "ipv4-subnet", "ipv6-subnet", "ipv4-gw", "ipv6-gw", "ipv4-range", "ipv6-range",
		"bridge", "mtu", "external-access", "driver-opts")
	// nodeKeys are what netloom reads from a node, a kind, a group or the
	// defaults; clabNodeKeys are containerlab's others, which netloom does
	// not apply (Lab.Warnings says so).
	nodeKeys = keySet("kind", "image", "group", "host", "exec", "cmd", "entrypoint", "env", "env-files", "labels", "user",
		"binds", "ports", "cap-add", "sysctls", "memory", "cpu", "startup-config", "extras", "mgmt-ipv4", "mgmt_ipv4",
		"network-mode")
	clabNodeKeys = keySet("type", "startup-delay", "enforce-startup-config", "suppress-startup-config", "auto-remove",
		"restart-policy", "config", "image-pull-policy", "license", "position", "devices", "shm-size",
		"mgmt-ipv6", "mgmt_ipv6", "publish", "sandbox", "kernel", "runtime", "cpu-set",
		"stages", "dns", "certificate", "healthcheck", "aliases", "components", "wait-for", "SANs")
	// linkKeys include those of containerlab's other link types (endpoint,
	// host-interface, mode), so that such a link is told it is not a veth
	// link rather than that it has a typo.
	linkKeys     = keySet("type", "endpoints", "mtu", "vars", "labels", "allow-fragmentation", "endpoint", "host-interface", "mode")
	endpointKeys = keySet("node", "interface", "mac", "vars")
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// knownNodeKey says whether k is a node key of netloom's or containerlab's.
func knownNodeKey(k string) bool { return nodeKeys[k] || clabNodeKeys[k] }

// checkKeys walks the file's mappings and returns a problem, at the key's
// position, for every unknown key close to a known one, and the paths of
// the other unknown keys outside nodes (those of nodes are reported per
// node, as settings not applied).
func checkKeys(doc *yaml.Node) (ps []Problem, ignored []string) {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	// A node's unknown keys are left to merge, which names the nodes
	// that have each, whether in the node or a kind, group or defaults.
	check := func(m *yaml.Node, path string, node bool, sets ...map[string]bool) {
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if known(k.Value, sets) || k.Tag == "!!merge" { // <<: *anchor
				continue
			}
			p := join(path, k.Value)
			if near := closest(k.Value, sets); len(near) > 0 {
				ps = append(ps, Problem{Line: k.Line, Column: k.Column, Field: p,
					Reason: fmt.Sprintf("unknown key: did you mean %s?", strings.Join(near, " or "))})
				continue
			}
			if !node {
				ignored = append(ignored, p)
			}
		}
	}
	check(doc, "", false, topKeys)
	check(value(doc, "mgmt"), "mgmt", false, mgmtKeys)
	topo := value(doc, "topology")
	if topo == nil {
		return ps, ignored
	}
	check(topo, "topology", false, topologyKeys)
	if d := value(topo, "defaults"); d != nil {
		check(d, "topology.defaults", true, nodeKeys, clabNodeKeys)
	}
	for _, section := range []string{"kinds", "groups", "nodes"} {
		m := value(topo, section)
		if m == nil || m.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			check(m.Content[i+1], "topology."+section+"."+m.Content[i].Value, true, nodeKeys, clabNodeKeys)
		}
	}
	if links := value(topo, "links"); links != nil && links.Kind == yaml.SequenceNode {
		for i, l := range links.Content {
			lp := fmt.Sprintf("topology.links[%d]", i)
			check(l, lp, false, linkKeys)
			eps := value(l, "endpoints")
			if eps == nil || eps.Kind != yaml.SequenceNode {
				continue
			}
			for j, e := range eps.Content {
				check(e, fmt.Sprintf("%s.endpoints[%d]", lp, j), false, endpointKeys)
			}
		}
	}
	return ps, ignored
}

func known(k string, sets []map[string]bool) bool {
	for _, s := range sets {
		if s[k] {
			return true
		}
	}
	return false
}

// value is the value of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the known keys nearest to an unknown one, when it is
// near enough to be a typo of them: one edit (a letter added, dropped,
// changed or two swapped), two for keys of 8 or more letters.
func closest(key string, sets []map[string]bool) []string {
	limit := 1
	if len(key) >= 8 {
		limit = 2
	}
	best := limit + 1
	var near []string
	for _, s := range sets {
		for k := range s {
			d := distance(strings.ToLower(key), strings.ToLower(k))
			if d == 0 {
				d = 1 // Image for image
			}
			switch {
			case d > limit || d >= len(key) || d > best:
			case d < best:
				best, near = d, []string{k}
			default:
				near = append(near, k)
			}
		}
	}
	slices.Sort(near)
	return near
}

// distance is the optimal string alignment distance of a and b: the
// Levenshtein distance with a swap of two neighbouring letters counted as
// one edit (endpionts is one edit from endpoints).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
