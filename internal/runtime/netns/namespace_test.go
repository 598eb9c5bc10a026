package netns

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// mainThread runs functions on the process's main thread, for tests of what
// must never happen there.
var mainThread = make(chan func())

// TestMain keeps the main goroutine, and so the main thread, serving
// mainThread while the tests run on other threads.
func TestMain(m *testing.M) {
	runtime.LockOSThread()
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case f := <-mainThread:
			f()
		case c := <-code:
			os.Exit(c)
		}
	}
}

// TestUnshareNeverOnTheMainThread makes a namespace from the main thread:
// the namespace must be made on another thread, and the process (whose
// namespace is its main thread's) must stay where it was. Were the main
// thread moved, the runtime could never discard it: the process would hold
// the node's namespace alive and count as one of its processes.
func TestUnshareNeverOnTheMainThread(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("makes a network namespace: needs root, skipped with -short")
	}
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("nltest-main-%d", os.Getpid())
	t.Cleanup(func() {
		if err := Delete(name); err != nil {
			t.Error(err)
		}
	})
	onMain := make(chan bool, 1)
	errc := make(chan error, 1)
	mainThread <- func() {
		onMain <- unix.Gettid() == unix.Getpid()
		unshareNamed(name, errc)
	}
	if !<-onMain {
		t.Fatal("the test harness did not run on the main thread")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !Exists(name) {
		t.Fatalf("namespace %s not made", name)
	}
	if now, _ := os.Readlink("/proc/self/ns/net"); now != own {
		t.Errorf("the process moved from %s to %s", own, now)
	}
	if n, err := EndProcesses(name, 0); err != nil || n != 0 {
		t.Errorf("%s holds %d processes (%v), want none", name, n, err)
	}
}
