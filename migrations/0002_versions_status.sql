-- Conditional writes and explicit statuses (see src/store/mod.rs).
-- status: active | disabled | revoked | deleted (a deleted key keeps its row as a tombstone, so a
-- late write can never bring it back). version: bumped by every write; updates name the version
-- they read. write_token: stamped by each guarded UPDATE so that the statements of the same batch
-- that must only run with it (audit entry, a rotation's new row) can tell whether it applied.
-- expires_at is now the key's own expiry; grace_until (a rotation's cut) is kept apart and the
-- effective expiry is the earlier of the two.
ALTER TABLE keys ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE keys ADD COLUMN write_token TEXT;
UPDATE keys SET status = 'revoked' WHERE revoked_at IS NOT NULL;

-- Names are unique among a workspace's current keys: not revoked, not deleted, not rotated out.
DROP INDEX keys_workspace_name;
CREATE UNIQUE INDEX keys_workspace_name ON keys (workspace, name)
  WHERE superseded_by IS NULL AND status IN ('active', 'disabled');
