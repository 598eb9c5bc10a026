-- +goose Up
-- What the agents last answered for each link side and node, and when
-- (DESIGN §11: state is observed, not assumed). Rows from before stay
-- unobserved: '' and NULL until the next declaration.
ALTER TABLE link_states ADD COLUMN source_status TEXT NOT NULL DEFAULT '';
ALTER TABLE link_states ADD COLUMN source_error TEXT NOT NULL DEFAULT '';
ALTER TABLE link_states ADD COLUMN source_verified_at TIMESTAMP;
ALTER TABLE link_states ADD COLUMN target_status TEXT NOT NULL DEFAULT '';
ALTER TABLE link_states ADD COLUMN target_error TEXT NOT NULL DEFAULT '';
ALTER TABLE link_states ADD COLUMN target_verified_at TIMESTAMP;
ALTER TABLE node_placements ADD COLUMN verified_at TIMESTAMP;
-- When the host last answered a declaration: every object it answered for
-- was verified then, so a round writes only the rows whose state changed.
ALTER TABLE hosts ADD COLUMN verified_at TIMESTAMP;

-- +goose Down
ALTER TABLE hosts DROP COLUMN verified_at;
ALTER TABLE node_placements DROP COLUMN verified_at;
ALTER TABLE link_states DROP COLUMN target_verified_at;
ALTER TABLE link_states DROP COLUMN target_error;
ALTER TABLE link_states DROP COLUMN target_status;
ALTER TABLE link_states DROP COLUMN source_verified_at;
ALTER TABLE link_states DROP COLUMN source_error;
ALTER TABLE link_states DROP COLUMN source_status;
