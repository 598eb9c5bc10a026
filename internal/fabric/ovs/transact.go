package ovs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/netloom/netloom/internal/fabric/ovs/vswitchd"
)

// applyRecheck bounds the wait for a change of cur_cfg before the cache is
// read again: a reconnection refills the cache without an update event.
const applyRecheck = time.Second

// transact runs ops as one transaction that also bumps next_cfg, then waits
// until ovs-vswitchd reports, through cur_cfg, that it applied it. ctx bounds
// the whole.
func (d *Driver) transact(ctx context.Context, ops []ovsdb.Operation) error {
	root, err := d.root(ctx)
	if err != nil {
		return err
	}
	bump, err := d.ovs.Where(root).Mutate(root, model.Mutation{Field: &root.NextCfg, Mutator: ovsdb.MutateOperationAdd, Value: 1})
	if err != nil {
		return fmt.Errorf("bump next_cfg: %w", err)
	}
	ops = append(ops, bump...)
	// Reading next_cfg back in the same transaction tells which value
	// cur_cfg must reach, whatever other clients do meanwhile.
	ops = append(ops, ovsdb.Operation{
		Op: ovsdb.OperationSelect, Table: "Open_vSwitch",
		Where:   []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: root.UUID})},
		Columns: []string{"next_cfg"},
	})
	res, err := d.ovs.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("transact: %w", err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return fmt.Errorf("transact: %w", err)
	}
	target, err := selectedNextCfg(res[len(res)-1])
	if err != nil {
		return err
	}
	return d.waitApplied(ctx, root.UUID, target)
}

// selectedNextCfg reads next_cfg from a select result.
func selectedNextCfg(r ovsdb.OperationResult) (int, error) {
	if len(r.Rows) != 1 {
		return 0, fmt.Errorf("read next_cfg: %d rows", len(r.Rows))
	}
	switch v := r.Rows[0]["next_cfg"].(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	default:
		return 0, fmt.Errorf("read next_cfg: unexpected %T", v)
	}
}

// waitApplied waits until the cached cur_cfg reaches target. It reads the
// cache when cur_cfg changes, not on a timer: ovs-vswitchd may take minutes
// over thousands of ports, and polling every few milliseconds copied the
// Open_vSwitch row each time, for nothing.
func (d *Driver) waitApplied(ctx context.Context, rootUUID string, target int) error {
	for {
		r := &vswitchd.OpenvSwitch{UUID: rootUUID}
		if err := d.ovs.Get(ctx, r); err != nil {
			return fmt.Errorf("read cur_cfg: %w", err)
		}
		if r.CurCfg >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for ovs-vswitchd to apply cfg %d (at %d): %w", target, r.CurCfg, context.Cause(ctx))
		case <-d.cfgChanged:
		case <-time.After(applyRecheck):
		}
	}
}

// errNotOwned reports a change to a port without netloom's mark.
var errNotOwned = errors.New("port is not netloom's")
