-- keyward system of record. Times are unix milliseconds (INTEGER).

CREATE TABLE keys (
  id            TEXT PRIMARY KEY,
  workspace     TEXT NOT NULL,
  name          TEXT NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  hash          TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the key; the plaintext is never stored
  preview       TEXT NOT NULL,             -- prefix + last 4 characters
  scopes        TEXT NOT NULL,             -- JSON array of canonical scopes
  metadata      TEXT NOT NULL DEFAULT '{}',
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER,                   -- effective expiry (a rotation grace deadline cuts it)
  revoked_at    INTEGER,
  last_used_at  INTEGER,
  rotated_from  TEXT,
  superseded_by TEXT,
  grace_until   INTEGER
);

-- Names are unique among a workspace's current keys; a rotated-out key hands its name on.
CREATE UNIQUE INDEX keys_workspace_name ON keys (workspace, name) WHERE superseded_by IS NULL;
CREATE INDEX keys_workspace_created ON keys (workspace, created_at DESC, id DESC);
CREATE INDEX keys_workspace_id ON keys (workspace, id);

CREATE TABLE audit (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at         INTEGER NOT NULL,
  workspace  TEXT NOT NULL,
  actor      TEXT NOT NULL,                -- 'root' or 'key:<id>'
  action     TEXT NOT NULL,
  key_id     TEXT,
  detail     TEXT NOT NULL DEFAULT '{}'    -- JSON; never a secret
);
CREATE INDEX audit_workspace ON audit (workspace, id DESC);

CREATE TABLE presets (
  workspace   TEXT NOT NULL,
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  scopes      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (workspace, name)
);
