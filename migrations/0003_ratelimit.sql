-- Per-key rate limit: JSON {"limit": n, "period": 10|60}, one of the tiers in config/policy.json.
ALTER TABLE keys ADD COLUMN ratelimit TEXT;
