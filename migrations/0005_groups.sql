-- Sharing groups of a workspace, and each key's memberships (a JSON array of group names).
CREATE TABLE groups (
  workspace TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace, name)
);
ALTER TABLE keys ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
