-- The change journal (docs/storage.md, "Change journal"): per write that stored rows, or
-- prune that deleted some, which event times of which component changed, in commit order.
-- `mlc serve` reads it to know which of its cached panes (docs/evaluation.md#panes) to
-- compute again, whichever process or replica wrote.
CREATE TABLE mlc_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    component TEXT NOT NULL,
    -- [from_us, to_us): the event times that may have gained or lost rows.
    from_us INTEGER NOT NULL,
    to_us INTEGER NOT NULL,
    -- The rowids the write gave its rows, all of them and only them (SQLite files: rows are
    -- numbered in write order), so a reader can read exactly those rows; NULL where unknown
    -- (prunes, PostgreSQL, in-memory stores), and the reader computes its panes again.
    first_rowid INTEGER,
    last_rowid INTEGER,
    recorded_at_us INTEGER NOT NULL
);
