//! mlc-store: the history store behind one interface, with two real backends (SQLite, the
//! embedded default, and PostgreSQL), and the ingest path (CSV, JSON lines, Parquet) into it.
