-- +goose Up
-- Which part of the desired state a write changed: a write to one lab's
-- rows moves that lab's revision, any other write (labs made or deleted,
-- hosts deleted, orphans cleaned up) moves whole; both move value, so a
-- reader that holds what it read rereads only the labs that moved, and
-- everything once whole did.
ALTER TABLE labs ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE desired_revision ADD COLUMN whole BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE desired_revision DROP COLUMN whole;
ALTER TABLE labs DROP COLUMN revision;
