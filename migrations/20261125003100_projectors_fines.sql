-- projectors: the fines read model, built from the `fine-…` streams. Owned and written only by
-- the projectors crate (FinesProjector); query-api reads it for GET /v1/fines/{id}.

CREATE TABLE fines_view (
    fine_id            uuid PRIMARY KEY,
    -- Unique in the log already (the import takes an exclusive claim on it); unique here too, so
    -- a projection that disagreed would fail loudly.
    resolution_number  text NOT NULL UNIQUE,
    plate              text NOT NULL,
    occurred_at        timestamptz NOT NULL,
    lat                double precision NOT NULL,
    lon                double precision NOT NULL,
    amount_kopecks     bigint NOT NULL CHECK (amount_kopecks > 0),
    issued_on          date NOT NULL,
    -- Only `open` for now; the fine saga (a later issue) adds the states it moves a fine to.
    status             text NOT NULL CHECK (status IN ('open')),
    received_at        timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    stream_version     bigint NOT NULL
);

-- "Fines for this car", for support and, later, for the saga's matching.
CREATE INDEX fines_view_plate_idx ON fines_view (plate, occurred_at);
