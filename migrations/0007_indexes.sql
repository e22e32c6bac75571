-- Admin at scale (issue #15): every list and lookup the admin API makes is an index search that
-- reads at most about one page of rows, however many keys a workspace holds. The e2e trial
-- ops::admin_queries_use_indexes checks every statement's plan; bench/admin-scale.sh shows them
-- against 100,000 keys.

-- The unfiltered list (newest first) leaves tombstones out of the index itself, so a workspace's
-- deleted keys are never walked.
DROP INDEX keys_workspace_created;
CREATE INDEX keys_workspace_created ON keys (workspace, created_at DESC, id DESC) WHERE status != 'deleted';

-- Lists filtered by status. expires_at and grace_until make it covering for the active and expired
-- lists, which decide the effective expiry from the index without reading the row.
CREATE INDEX keys_workspace_status ON keys (workspace, status, created_at DESC, id DESC, expires_at, grace_until);

-- Group membership: one row per group a key lists, for every key that is not deleted, so that
-- deleting a group finds its members without reading every key of the workspace. Written in the
-- same batch (transaction) as the key row itself (src/store/d1.rs).
CREATE TABLE key_groups (
  workspace TEXT NOT NULL,
  grp       TEXT NOT NULL,
  key_id    TEXT NOT NULL,
  PRIMARY KEY (workspace, grp, key_id)
) WITHOUT ROWID;
CREATE INDEX key_groups_key ON key_groups (key_id);
INSERT OR IGNORE INTO key_groups (workspace, grp, key_id)
  SELECT keys.workspace, j.value, keys.id FROM keys, json_each(keys.groups) AS j WHERE keys.status != 'deleted';
