-- +goose Up
-- Management networks: a lab's subnet, each node's asked and given
-- address, and each lab's segment on each of its hosts (the host's address
-- and tag there, and the VNI of its tunnel to the lab's first host).
ALTER TABLE labs ADD COLUMN mgmt_subnet TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN mgmt_ipv4 TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN network_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN mgmt_address TEXT NOT NULL DEFAULT '';
CREATE TABLE mgmt_segments (
    lab_id      TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    host_id     TEXT NOT NULL,
    address     TEXT NOT NULL,
    vlan_tag    INTEGER NOT NULL,
    vni         INTEGER UNIQUE,
    status      TEXT NOT NULL DEFAULT 'pending',
    error       TEXT NOT NULL DEFAULT '',
    verified_at TIMESTAMP,
    PRIMARY KEY (lab_id, host_id)
);

-- +goose Down
DROP TABLE mgmt_segments;
ALTER TABLE nodes DROP COLUMN mgmt_address;
ALTER TABLE nodes DROP COLUMN network_mode;
ALTER TABLE nodes DROP COLUMN mgmt_ipv4;
ALTER TABLE labs DROP COLUMN mgmt_subnet;
