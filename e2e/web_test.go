package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/netloom/netloom/internal/store"
	"github.com/netloom/netloom/internal/testbed"
)

// chromiumPath is Debian's chromium, which scripts/setup.sh installs.
const chromiumPath = "/usr/bin/chromium"

// TestWebView drives the controller's web view in headless Chromium: after
// a deploy the lab list shows the lab and the lab's page draws every node
// and link, up; once UDP 4789 is dropped inside hostB (a tunnel broken on
// a host, which its agent cannot repair) the tunnels turn to error on the
// page, with the cause in the details, and back to up once the rule goes,
// all without a reload; a request without the token is refused.
// Screenshots go to $NETLOOM_TEST_ARTIFACTS/TestWebView, else to
// $TMPDIR/netloom-test-artifacts/TestWebView; the log names the folder.
func TestWebView(t *testing.T) {
	const period = 2 * time.Second
	c := testbed.StartCluster(t, testbed.ClusterConfig{Bin: netloomBin, Hosts: []string{"hostA", "hostB"},
		AgentArgs: []string{"--underlay-interval", period.String()}})
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium: %v (scripts/setup.sh installs it)", err)
	}
	lab := c.Bed.ID()
	path := c.Ctl.Dir + "/web.yaml"
	if err := writeFile(path, fmt.Sprintf(`name: %s
topology:
  nodes:
    a1: {host: hostA}
    a2: {host: hostA}
    b1: {host: hostB}
  links:
    - endpoints: ["a1:eth1", "a2:eth1"]
    - endpoints: ["a2:eth2", "b1:eth1"]
    - endpoints: ["a1:eth2", "b1:eth2"]
`, lab)); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(t, "lab", "apply", "-f", path); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	var v store.LabView
	if code := c.Call(t, "GET", "/api/v1/labs/"+lab, "", nil, &v); code != http.StatusOK {
		t.Fatalf("lab %s: %d", lab, code)
	}

	t.Run("refused without the token", func(t *testing.T) {
		for _, p := range []string{"/ui/", "/ui/lab/" + lab, "/ui/events", "/ui/events?lab=" + lab, "/ui/static/app.js"} {
			for who, auth := range map[string]string{"no token": "", "the agent token": "Bearer " + c.AgentToken} {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", testbed.ControllerURL+p, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := c.HTTP.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET %s with %s: %d, want 401", p, who, resp.StatusCode)
				}
			}
		}
	})

	// The browser runs in the root namespace, which does not reach the
	// controller's machine: a proxy on the loopback dials from there.
	ctl, _ := url.Parse(testbed.ControllerURL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(ctl) },
		Transport: c.HTTP.Transport,
	})
	t.Cleanup(proxy.Close)
	ctx := startBrowser(t)
	shots := artifactsDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(step, actions...); err != nil {
			shot("failed.png")
			t.Fatalf("%s: %v", what, err)
		}
	}
	// until polls a script on the page until it returns want.
	until := func(what, script, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](script))
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				shot("failed.png")
				t.Fatalf("%s: after %v the page says %q (%v), want %q", what, within, got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Log in; the lab list shows the lab and both hosts.
	run("login form", chromedp.Navigate(proxy.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	run("login", chromedp.SendKeys(chromedp.ID("token"), c.APIToken), chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-lab-name=%q]`, lab))),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-host-name="hostA"][data-status="online"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-host-name="hostB"][data-status="online"]`)))
	until("lab listed with its nodes up", fmt.Sprintf(`document.querySelector('tr[data-lab-name=%q] td:nth-child(3)').textContent`, lab), "3 / 3", 30*time.Second)
	shot("1-labs.png")

	// The lab's page draws every node and link, up, in a box per host.
	run("open the lab", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-lab-name=%q] a`, lab))), chromedp.WaitVisible(chromedp.CSS("#topology g[data-node]")))
	for _, n := range v.Nodes {
		until("node "+n.Name, fmt.Sprintf(`(e => e ? e.dataset.host + " " + e.dataset.state : "absent")(document.querySelector('#topology [data-node=%q]'))`, n.Name),
			n.PlacedOn+" up", 30*time.Second)
	}
	for _, l := range v.Links {
		until("link "+l.Name, linkState(l.Name), "up", 30*time.Second)
	}
	until("one element per node, per link and per host", `[...["[data-node]", "[data-link]", ".host", "[data-kind=tunnel]"]].map(s => document.querySelectorAll("#topology " + s).length).join(" ")`,
		"3 3 2 2", 5*time.Second)
	tunnel := "a2:eth2-b1:eth1"
	var vni int
	for _, l := range v.Links {
		if l.Name == tunnel && l.VNI != nil {
			vni = *l.VNI
		}
	}
	if vni == 0 {
		t.Fatalf("link %s has no VNI in the API's view", tunnel)
	}
	loadedAt, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.netloomMarker = "kept"; window.netloomLoadedAt`))
	if err != nil {
		t.Fatalf("mark the page: %v", err)
	}
	mgmtHosts := `[...document.querySelectorAll("#mgmt li[data-host]")].map(e => e.dataset.host + " " + e.classList[1]).join(", ")`
	until("the management network on both hosts", mgmtHosts, "hostA up, hostB up", 30*time.Second)
	node := v.Nodes[0]
	run("click a node", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#topology [data-node=%q]`, node.Name))))
	until("the node's management address", `document.querySelector('#details [data-field=management-address]')?.textContent`, node.MgmtAddress, 5*time.Second)
	run("click the tunnel", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#topology [data-link=%q] path.hit`, tunnel))))
	until("the tunnel's details", `document.querySelector('#details [data-field=vni]')?.textContent + " " + document.querySelector('#details [data-field=state]')?.textContent`,
		fmt.Sprintf("%d up", vni), 5*time.Second)
	shot("2-deployed.png")

	// Break the tunnel on hostB where its agent cannot repair it.
	rule := []string{"INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"}
	hostB := c.Hosts["hostB"]
	if out, err := hostB.Exec(t.Context(), "iptables", append([]string{"-A"}, rule...)...); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	broke := time.Now()
	until("the broken tunnel on the page", linkState(tunnel), "error", 30*time.Second)
	t.Logf("tunnel broken: shown after %v", time.Since(broke).Round(10*time.Millisecond))
	until("the cause in the details", `String(document.querySelector('#details [data-field=last-error]')?.textContent.includes("VXLAN port blocked"))`, "true", 5*time.Second)
	until("the same-host link", linkState("a1:eth1-a2:eth1"), "up", time.Second)
	until("the management network across the broken underlay", mgmtHosts, "hostA error, hostB error", 30*time.Second)
	shot("3-tunnel-broken.png")

	if out, err := hostB.Exec(t.Context(), "iptables", append([]string{"-D"}, rule...)...); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	healed := time.Now()
	until("the tunnel up again", linkState(tunnel), "up", 30*time.Second)
	t.Logf("tunnel repaired: shown after %v", time.Since(healed).Round(10*time.Millisecond))
	shot("4-repaired.png")

	still, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Marker   string  `json:"marker"`
		LoadedAt float64 `json:"loadedAt"`
		Updates  int     `json:"updates"`
	}](`({marker: window.netloomMarker, loadedAt: window.netloomLoadedAt, updates: window.netloomUpdates})`))
	if err != nil {
		t.Fatalf("read the page's marks: %v", err)
	}
	if still.Marker != "kept" || still.LoadedAt != loadedAt || still.Updates < 3 {
		t.Errorf("the page was reloaded or not updated: %+v, want the marker kept, loaded at %v and several updates", still, loadedAt)
	}
	t.Logf("screenshots in %s", shots)
}

// linkState is a script that returns a link's state on the lab's page.
func linkState(link string) string {
	return fmt.Sprintf(`(e => e ? e.dataset.state : "absent")(document.querySelector('#topology [data-link=%q]'))`, link)
}

// startBrowser starts headless Chromium with a fresh profile and returns a
// tab's context. When the test ends the browser's whole process group is
// killed and waited for, and its folder (profile and temporary files)
// removed.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	dir, err := os.MkdirTemp("", "netloom-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	t.Cleanup(func() {
		if cmd != nil && cmd.Process != nil {
			if err := killGroup(cmd.Process.Pid); err != nil {
				t.Errorf("chromium: %v", err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("chromium's folder: %v", err)
		}
	})
	tmp := filepath.Join(dir, "tmp") // its singleton socket, crash dumps
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.WindowSize(1400, 900),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			// Its own group, so that its helpers go with it.
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd = c
		}))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// killGroup kills a process group and waits until none of it is left.
func killGroup(pgid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(-pgid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill process group %d: %w", pgid, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still runs after 10 s", pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// artifactsDir is where a test keeps what outlives it (screenshots):
// $NETLOOM_TEST_ARTIFACTS/<test>, else under the system's temporary folder.
func artifactsDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("NETLOOM_TEST_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "netloom-test-artifacts")
	}
	dir := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
