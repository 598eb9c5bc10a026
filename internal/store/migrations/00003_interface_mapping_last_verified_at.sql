-- +goose Up
-- When the controller last saw the mapping on the agent; a mapping not
-- verified recently is not trusted for pairing (W-15). No back-fill: never
-- verified is NULL.
ALTER TABLE interface_mappings ADD COLUMN last_verified_at TIMESTAMP;

-- +goose Down
ALTER TABLE interface_mappings DROP COLUMN last_verified_at;
