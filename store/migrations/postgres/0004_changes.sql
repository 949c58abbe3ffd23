-- The change journal (docs/storage.md, "Change journal"): per write that stored rows, or
-- prune that deleted some, which event times of which component changed, in commit order
-- (writers take an advisory lock before their entries, held to their commit, so sequence
-- order is commit order). `mlc serve` reads it to know which of its cached panes
-- (docs/evaluation.md#panes) to compute again, whichever process or replica wrote.
CREATE TABLE mlc_changes (
    seq BIGSERIAL PRIMARY KEY,
    component TEXT NOT NULL,
    -- [from_us, to_us): the event times that may have gained or lost rows.
    from_us BIGINT NOT NULL,
    to_us BIGINT NOT NULL,
    -- The rowids the write gave its rows, all of them and only them (SQLite files: rows are
    -- numbered in write order), so a reader can read exactly those rows; NULL where unknown
    -- (prunes, PostgreSQL, in-memory stores), and the reader computes its panes again.
    first_rowid BIGINT,
    last_rowid BIGINT,
    recorded_at_us BIGINT NOT NULL
);
