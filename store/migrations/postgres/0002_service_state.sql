-- State of `mlc serve` that must survive restarts and be shared by replicas.

-- Named documents (the alert book, as JSON, under `alerts`).
CREATE TABLE mlc_state (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL
);

-- One row per (check, slot) some replica took on: a slot is evaluated by the replica whose
-- insert created the row, and by no other, whether or not their runs overlap in time.
CREATE TABLE mlc_slots (
    check_name TEXT NOT NULL,
    slot_us BIGINT NOT NULL,
    owner TEXT NOT NULL,
    claimed_at_us BIGINT NOT NULL,
    PRIMARY KEY (check_name, slot_us)
);
