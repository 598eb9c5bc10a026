-- +goose Up
-- A link's MTU as its lab file asks (0: the default) and as allocated
-- (NULL until its hosts are known), whether its outer packets may be
-- fragmented, and its endpoints' MAC addresses ('' to derive them). A host's
-- underlay MTU and its agent's last underlay checks (JSON list of
-- wire.UnderlayCheck).
ALTER TABLE link_states ADD COLUMN mtu INTEGER NOT NULL DEFAULT 0;
ALTER TABLE link_states ADD COLUMN link_mtu INTEGER;
ALTER TABLE link_states ADD COLUMN allow_fragmentation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE link_states ADD COLUMN source_mac TEXT NOT NULL DEFAULT '';
ALTER TABLE link_states ADD COLUMN target_mac TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN underlay_mtu INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN underlay TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE hosts DROP COLUMN underlay;
ALTER TABLE hosts DROP COLUMN underlay_mtu;
ALTER TABLE link_states DROP COLUMN target_mac;
ALTER TABLE link_states DROP COLUMN source_mac;
ALTER TABLE link_states DROP COLUMN allow_fragmentation;
ALTER TABLE link_states DROP COLUMN link_mtu;
ALTER TABLE link_states DROP COLUMN mtu;
