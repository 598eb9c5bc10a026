package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netloom/netloom/internal/controller/client"
)

// clientOptions are the flags of commands that talk to a controller.
type clientOptions struct {
	controller string
	tokenFile  string
	timeout    time.Duration
}

func (o *clientOptions) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&o.controller, "controller", "http://localhost:7400", "controller URL, or several comma-separated: the first that answers")
	cmd.PersistentFlags().StringVar(&o.tokenFile, "token-file", "/etc/netloom/api-token", "file holding the API token")
	cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 60*time.Second, "how long to wait for each answer of the controller (0: no limit)")
}

func (o *clientOptions) client() (*client.Client, error) {
	if o.timeout < 0 {
		return nil, usagef("--timeout: %v is negative", o.timeout)
	}
	token, err := readToken("token-file", o.tokenFile, nil)
	if err != nil {
		return nil, err
	}
	return client.New(o.controller, token, nil, o.timeout), nil
}

// table prints aligned columns for people.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.w, strings.Join(cols, "\t")) }

func (t *table) flush() error { return t.w.Flush() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func intOrDash(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
