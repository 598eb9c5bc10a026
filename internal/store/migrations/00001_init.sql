-- +goose Up
CREATE TABLE hosts (
    name               TEXT PRIMARY KEY,
    address            TEXT NOT NULL,
    data_plane_address TEXT NOT NULL,
    capabilities       TEXT NOT NULL DEFAULT '[]',
    version            TEXT NOT NULL DEFAULT '',
    last_heartbeat     TIMESTAMP NOT NULL,
    created_at         TIMESTAMP NOT NULL
);

CREATE TABLE labs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL DEFAULT 'stopped',
    state_error TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE nodes (
    id      TEXT PRIMARY KEY,
    lab_id  TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    kind    TEXT NOT NULL DEFAULT 'linux',
    image   TEXT NOT NULL DEFAULT '',
    host_id TEXT,
    UNIQUE (lab_id, name)
);

CREATE TABLE node_placements (
    id         TEXT PRIMARY KEY,
    lab_id     TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    node_name  TEXT NOT NULL,
    host_id    TEXT NOT NULL,
    runtime_id TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL DEFAULT 'pending',
    error      TEXT NOT NULL DEFAULT '',
    UNIQUE (lab_id, node_name)
);

CREATE TABLE links (
    id               TEXT PRIMARY KEY,
    lab_id           TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    link_name        TEXT NOT NULL,
    source_node      TEXT NOT NULL,
    source_interface TEXT NOT NULL,
    target_node      TEXT NOT NULL,
    target_interface TEXT NOT NULL,
    UNIQUE (lab_id, link_name)
);

CREATE TABLE link_states (
    id                    TEXT PRIMARY KEY,
    lab_id                TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    link_definition_id    TEXT REFERENCES links (id) ON DELETE SET NULL,
    link_name             TEXT NOT NULL,
    source_node           TEXT NOT NULL,
    source_interface      TEXT NOT NULL,
    target_node           TEXT NOT NULL,
    target_interface      TEXT NOT NULL,
    desired_state         TEXT NOT NULL DEFAULT 'up',
    actual_state          TEXT NOT NULL DEFAULT 'unknown',
    error_message         TEXT NOT NULL DEFAULT '',
    is_cross_host         BOOLEAN NOT NULL DEFAULT FALSE,
    vni                   INTEGER UNIQUE,
    vlan_tag              INTEGER,
    source_vlan_tag       INTEGER,
    target_vlan_tag       INTEGER,
    source_host_id        TEXT,
    target_host_id        TEXT,
    source_vxlan_attached BOOLEAN NOT NULL DEFAULT FALSE,
    target_vxlan_attached BOOLEAN NOT NULL DEFAULT FALSE,
    partial_state_hosts   TEXT NOT NULL DEFAULT '',
    updated_at            TIMESTAMP NOT NULL,
    UNIQUE (lab_id, link_name)
);

CREATE TABLE vxlan_tunnels (
    id            TEXT PRIMARY KEY,
    lab_id        TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    link_state_id TEXT UNIQUE REFERENCES link_states (id) ON DELETE CASCADE,
    vni           INTEGER NOT NULL,
    vlan_tag      INTEGER NOT NULL DEFAULT 0,
    agent_a_id    TEXT NOT NULL,
    agent_a_ip    TEXT NOT NULL,
    agent_b_id    TEXT NOT NULL,
    agent_b_ip    TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',
    error_message TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX vxlan_tunnels_vni ON vxlan_tunnels (vni);

CREATE TABLE interface_mappings (
    id              TEXT PRIMARY KEY,
    lab_id          TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    node_id         TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    ovs_port        TEXT,
    ovs_bridge      TEXT,
    vlan_tag        INTEGER,
    linux_interface TEXT NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    CONSTRAINT uq_interface_mapping_lab_node_interface UNIQUE (lab_id, node_id, linux_interface)
);

-- One row: the last declaration generation handed out (DESIGN §6 fencing).
CREATE TABLE declaration_generation (
    id    INTEGER PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO declaration_generation (id, value) VALUES (1, 0);

-- +goose Down
DROP TABLE declaration_generation;
DROP TABLE interface_mappings;
DROP TABLE vxlan_tunnels;
DROP TABLE link_states;
DROP TABLE links;
DROP TABLE node_placements;
DROP TABLE nodes;
DROP TABLE labs;
DROP TABLE hosts;
