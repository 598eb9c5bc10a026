-- +goose Up
-- A node's container settings as its lab file gives them (JSON of
-- wire.NodeSettings), and the files shipped with a lab (JSON object of path
-- to base64 content), which the settings name.
ALTER TABLE nodes ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE labs ADD COLUMN files TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE labs DROP COLUMN files;
ALTER TABLE nodes DROP COLUMN settings;
