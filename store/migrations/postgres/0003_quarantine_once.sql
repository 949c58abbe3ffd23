-- A quarantined record re-sent (the same file ingested again after a crash, an HTTP retry)
-- is kept once: its fingerprint is a SHA-256 of component, source (file and position), raw
-- record and reason. Rows quarantined before this migration have none and stay as they are.
ALTER TABLE mlc_quarantine ADD COLUMN fingerprint TEXT;
CREATE UNIQUE INDEX mlc_quarantine_fingerprint ON mlc_quarantine (fingerprint);
