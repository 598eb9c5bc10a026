-- +goose Up
-- One counter that every write to the desired state (labs, nodes, links,
-- placements, allocations, lab states, recorded observations) bumps in its
-- own transaction: the leader keeps what it read in memory and reads it
-- again only once the counter moved, whichever controller wrote.
CREATE TABLE desired_revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO desired_revision (id, value) VALUES (1, 0);

-- +goose Down
DROP TABLE desired_revision;
