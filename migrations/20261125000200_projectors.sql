-- projectors: checkpoints and the read models built from the event log.
-- Owned and written only by the projectors crate; query-api reads the *_view tables.

-- Where each projector is in the log, in delivery order (see event-store/src/log.rs). Updated in
-- the same transaction as the read-model rows of the batch it covers, so rows and checkpoint
-- always agree: a batch is applied exactly once, however often the process crashes.
CREATE TABLE projector_checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- One row per trip, from the trip's stream. Times come from the events, never from the wall
-- clock, so a rebuild writes identical rows.
CREATE TABLE trips_view (
    trip_id           uuid PRIMARY KEY,
    customer_id       uuid NOT NULL,
    vehicle_id        uuid NOT NULL,
    status            text NOT NULL CHECK (status IN ('driving', 'parked', 'ended')),
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    -- When the current driving or parking spell began (the end time once ended): a running
    -- price is the finished spells plus now - phase_since.
    phase_since       timestamptz NOT NULL,
    -- Seconds in *finished* spells; once ended, the totals the trip was billed for.
    driving_s         bigint NOT NULL DEFAULT 0 CHECK (driving_s >= 0),
    parking_s         bigint NOT NULL DEFAULT 0 CHECK (parking_s >= 0),
    -- The domain's Tariff, fixed at start.
    tariff            jsonb NOT NULL,
    start_lat         double precision NOT NULL,
    start_lon         double precision NOT NULL,
    end_lat           double precision,
    end_lon           double precision,
    start_odometer_m  bigint NOT NULL,
    end_odometer_m    bigint,
    -- The domain's PriceBreakdown from TripEnded; null until the trip ends.
    price             jsonb,
    total_kopecks     bigint,
    -- Time of the last applied event.
    updated_at        timestamptz NOT NULL,
    -- Version of the last applied event of the trip's stream: updates apply only newer events,
    -- so a replay can never move a row backwards.
    stream_version    bigint NOT NULL
);

CREATE INDEX trips_view_customer_id_idx ON trips_view (customer_id);

-- One row per car, from the vehicle's stream.
CREATE TABLE vehicles_view (
    vehicle_id       uuid PRIMARY KEY,
    plate            text NOT NULL,
    vin              text NOT NULL,
    model            text NOT NULL,
    lat              double precision NOT NULL,
    lon              double precision NOT NULL,
    fuel_percent     smallint NOT NULL CHECK (fuel_percent BETWEEN 0 AND 100),
    odometer_m       bigint NOT NULL,
    doors_locked     boolean NOT NULL,
    status           text NOT NULL CHECK (status IN ('available', 'in_trip')),
    current_trip_id  uuid,
    updated_at       timestamptz NOT NULL,
    stream_version   bigint NOT NULL,
    CHECK ((status = 'in_trip') = (current_trip_id IS NOT NULL))
);

-- "Available cars near a point" without scanning the table: a two-dimensional GiST index on the
-- car's position, only over available cars. query-api pre-filters with a bounding box computed
-- from the radius (`point(lon, lat) <@ box(...)`, which this index answers), then computes the
-- exact haversine distance of the few candidates in SQL and orders by it.
--
-- Why not PostGIS: not installed on this machine. Why not the contrib `cube`/`earthdistance`
-- extensions, which are available here: earthdistance is not a trusted extension (creating it
-- needs a superuser, which a managed database does not give the application); its ll_to_earth()
-- (version 1.1, the one shipped with PostgreSQL 15) calls earth() without a schema, so an
-- expression index on it breaks under the empty search_path of pg_restore and autovacuum; and its
-- Earth radius (6378168 m) differs from the domain's (6371008.8 m), so distances shown to users
-- would disagree with the ones the domain computes. A core GiST index on `point` needs nothing
-- beyond PostgreSQL itself and is just as selective for a city-sized search.
CREATE INDEX vehicles_view_available_position_idx ON vehicles_view
    USING gist (point(lon, lat)) WHERE status = 'available';
