-- The nodes of SPEC §12: each node upserts its row every 2 s; timestamps are unix seconds
-- of the database clock. Not part of the configuration: writing it bumps no generation.
CREATE TABLE nodes (
    id                TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    admin_address     TEXT    NOT NULL,
    proxy_address     TEXT    NOT NULL,
    version           TEXT    NOT NULL,
    started_at        BIGINT  NOT NULL,
    last_seen         BIGINT  NOT NULL,
    config_generation BIGINT  NOT NULL,
    truststore_status TEXT    NOT NULL,
    truststore_sha256 TEXT,
    stopped           BOOLEAN NOT NULL
);
