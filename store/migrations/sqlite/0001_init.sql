-- The store's own tables. Component tables (one per declared component) are created by
-- `Store::ensure_component` from the declarations, not by migrations.
CREATE TABLE mlc_components (
    name TEXT PRIMARY KEY NOT NULL,
    table_name TEXT NOT NULL,
    -- The last declared ComponentSchema, as JSON.
    schema TEXT NOT NULL,
    -- Every column ever stored, with its type, as JSON: [{"name": .., "ty": ..}].
    columns TEXT NOT NULL,
    updated_at_us INTEGER NOT NULL
);

CREATE TABLE mlc_quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    component TEXT NOT NULL,
    received_at_us INTEGER NOT NULL,
    source TEXT NOT NULL,
    raw TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX mlc_quarantine_component ON mlc_quarantine (component, id);

CREATE TABLE mlc_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_name TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    status TEXT NOT NULL,
    rules_version TEXT NOT NULL,
    slice TEXT NOT NULL,
    column_name TEXT,
    json TEXT NOT NULL
);
CREATE INDEX mlc_results_check_at ON mlc_results (check_name, at_us);
CREATE INDEX mlc_results_at ON mlc_results (at_us);
