package agent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// credentialFile is where, in the state directory, the agent keeps the
// host credential the controller gave it.
const credentialFile = "credential"

// credential is the host credential that binds this agent to its host's
// name at the controller: sent on heartbeats and registrations, and
// required on the controller's calls once the agent holds one, so that
// another holder of the shared agent token can neither take the name nor
// declare to this host.
type credential struct {
	path string
	mu   sync.Mutex
	v    string
}

// loadCredential reads the credential kept in dir; none is not an error.
func loadCredential(dir string) (*credential, error) {
	c := &credential{path: filepath.Join(dir, credentialFile)}
	data, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("host credential: %w", err)
	default:
		c.v = strings.TrimSpace(string(data))
	}
	return c, nil
}

func (c *credential) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v
}

// set keeps a credential the controller gave, on disk first: an agent that
// restarts must still hold it.
func (c *credential) set(v string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == "" || v == c.v {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("host credential: %w", err)
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
		return fmt.Errorf("host credential: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("host credential: %w", err)
	}
	c.v = v
	return nil
}

// allows reports whether a call carrying presented may act on this host:
// any call before the agent holds a credential, then only one with it.
func (c *credential) allows(presented string) bool {
	held := c.get()
	return held == "" || subtle.ConstantTimeCompare([]byte(presented), []byte(held)) == 1
}
