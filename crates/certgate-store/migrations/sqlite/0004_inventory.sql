-- The cluster's client inventory (SPEC §13): each node replaces its own row at least every
-- 10 s with the clients it has seen (a JSON array); GET /api/v1/clients joins the rows.
-- Not part of the configuration: writing it bumps no generation.
CREATE TABLE client_inventory (
    node_id    TEXT   PRIMARY KEY,
    written_at BIGINT NOT NULL,
    clients    TEXT   NOT NULL
);
