-- Live or test key (fixed at issue: it is part of the secret's prefix). Existing keys are live.
ALTER TABLE keys ADD COLUMN environment TEXT NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test'));
