-- The audit log of SPEC §14: one row per committed admin write, written in the write's
-- own transaction. before/after are JSON (TEXT) with every PEM shortened to its SHA-256.
-- The store keeps the latest 100,000 rows (pruned by id in the writing transaction).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    before_json TEXT    NOT NULL,
    after_json  TEXT    NOT NULL,
    generation  BIGINT  NOT NULL
);
