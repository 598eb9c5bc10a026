-- +goose Up
-- The commands a node runs once its interfaces exist (containerlab's exec),
-- as a JSON list.
ALTER TABLE nodes ADD COLUMN exec TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE nodes DROP COLUMN exec;
