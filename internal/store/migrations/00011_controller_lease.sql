-- +goose Up
-- The leader's lease: one row, held by the controller that runs the
-- reconcile loop until expires_ms (the database's clock, milliseconds since
-- the epoch), renewed by it and taken over by another once it expired.
CREATE TABLE controller_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- Every controller on the database and when it was last alive, for
-- `netloom controller ls`.
CREATE TABLE controllers (
    id      TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE controllers;
DROP TABLE controller_lease;
