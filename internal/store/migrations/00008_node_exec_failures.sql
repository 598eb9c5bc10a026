-- +goose Up
-- The exec commands of a node's lab file that failed when its node was last
-- made, with their exit codes and output (JSON list of wire.ExecFailure).
ALTER TABLE node_placements ADD COLUMN exec_failures TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE node_placements DROP COLUMN exec_failures;
