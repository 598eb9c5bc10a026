-- +goose Up
-- The credential that binds a host's name to the agent that registered it
-- first ('' for a host of an agent without credentials).
ALTER TABLE hosts ADD COLUMN credential TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE hosts DROP COLUMN credential;
