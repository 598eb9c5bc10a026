package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netloom/netloom/internal/ident"
	nlns "github.com/netloom/netloom/internal/runtime/netns"
)

// ownerFile, in a bed's folder, holds "<pid> <start time>" of the process
// that owns the bed; the start time tells a live owner from a reused PID.
const ownerFile = "owner"

// ownerlessGrace is how long a bed folder without an owner file counts as
// being set up rather than abandoned.
const ownerlessGrace = 30 * time.Second

// Sweep removes every bed whose owning process is gone: it kills
// the bed's daemons by PID, deletes its namespaces and its folder. Beds of
// live processes, such as other test packages running in parallel, are left
// alone.
func Sweep(log *slog.Logger) error {
	// Namespaces are listed before folders: a bed makes its folder before its
	// namespaces and removes it after them, so a namespace seen here without
	// a folder below is truly abandoned.
	namespaces, err := nlns.List()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(StateRoot)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sweep %s: %w", StateRoot, err)
	}
	live := map[string]bool{}
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || !isBedID(id) {
			continue
		}
		dir := filepath.Join(StateRoot, id)
		if ownerAlive(dir) {
			live[id] = true
			continue
		}
		log.Warn("sweeping abandoned bed", "bed", id)
		errs = append(errs, killBedProcesses(dir))
		errs = append(errs, unmountUnder(dir))
		errs = append(errs, os.RemoveAll(dir))
	}
	for _, ns := range namespaces {
		id, ok := bedOf(ns)
		if !ok || live[id] {
			continue
		}
		log.Warn("sweeping abandoned namespace", "netns", ns)
		errs = append(errs, nlns.Delete(ns))
	}
	return errors.Join(errs...)
}

// bedOf returns the bed a namespace belongs to: "<id>-…" for the bed's own,
// "nl-<lab>-<node>-<hash>" for the nodes of a lab named after the bed, or after it with
// a prefix (tests name several labs "m<id>", "s<id>", …).
func bedOf(ns string) (string, bool) {
	ns = strings.TrimPrefix(ns, ident.NamespacePrefix)
	name, _, ok := strings.Cut(ns, "-")
	if !ok || len(name) < len(idPrefix)+6 {
		return "", false
	}
	id := name[len(name)-len(idPrefix)-6:]
	return id, isBedID(id)
}

func isBedID(s string) bool {
	if len(s) != len(idPrefix)+6 || !strings.HasPrefix(s, idPrefix) {
		return false
	}
	for _, c := range s[len(idPrefix):] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// ownerAlive reports whether the process that made the bed in dir still runs.
func ownerAlive(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		st, serr := os.Stat(dir)
		return serr == nil && time.Since(st.ModTime()) < ownerlessGrace
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil {
		return false
	}
	got, err := processStart(pid)
	return err == nil && got == start
}

// processStart returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat).
func processStart(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read process %d: %w", pid, err)
	}
	// The command name, field 2, may hold spaces; fields after it do not.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("process %d: malformed stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("process %d: malformed stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64) // field 22 overall
}

// bedProcesses returns the PIDs of processes whose command line names dir:
// the daemons a bed started always take their database and sockets from it.
func bedProcesses(dir string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	needle := []byte(dir + "/")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		if bytes.Contains(cmdline, needle) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killBedProcesses kills, by PID, the processes of an abandoned bed and waits
// until they are gone.
func killBedProcesses(dir string) error {
	pids, err := bedProcesses(dir)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for nlns.ProcessRunning(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d of %s survived SIGKILL", pid, dir)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// residue lists what of bed id is still on the machine.
func residue(id, dir string) ([]string, error) {
	var left []string
	namespaces, err := nlns.List()
	if err != nil {
		return nil, err
	}
	for _, ns := range namespaces {
		if owner, ok := bedOf(ns); ok && owner == id {
			left = append(left, "netns "+ns)
		}
	}
	pids, err := bedProcesses(dir)
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		left = append(left, "process "+strconv.Itoa(pid))
	}
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "folder "+dir)
	}
	return left, nil
}
