-- Column segments (store/src/segments.rs): a read accelerator beside each component's row
-- table. A segment holds the rows of one fixed range of rowids, column by column; the rows
-- stay in the row table, which remains the truth.

-- One row per sealed segment: the rowid range it covers and the times it holds.
CREATE TABLE mlc_segments (
    tbl TEXT NOT NULL,
    first_rowid INTEGER NOT NULL,
    last_rowid INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    min_time INTEGER NOT NULL,
    max_time INTEGER NOT NULL,
    PRIMARY KEY (tbl, first_rowid)
);

-- Each column of a segment, encoded (segments.rs: layout 1).
CREATE TABLE mlc_segment_columns (
    tbl TEXT NOT NULL,
    first_rowid INTEGER NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tbl, first_rowid, name)
);

-- Bumped whenever rows are deleted or columns added: a segment built from rows read before
-- the bump is not stored.
CREATE TABLE mlc_segment_generations (
    tbl TEXT PRIMARY KEY NOT NULL,
    generation INTEGER NOT NULL
);
