-- A key's credit cap as configured (JSON {"counter": <cap id>, "refill": {"amount", "interval"} | null}),
-- or NULL for a key without a cap. The live count is in the workspace's Durable Object, not here.
ALTER TABLE keys ADD COLUMN credits TEXT;
