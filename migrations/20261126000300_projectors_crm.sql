-- projectors: read models for support, CRM and the app. Owned and written only by the projectors
-- crate (PossessionsProjector, CustomersProjector); query-api reads them.

-- GiST over (uuid, tstzrange) needs the btree operator classes for the plain column.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Who had which car when, one row per trip, from the trip's stream: "who was driving car X at
-- time T" for traffic fines. `during` is `[started_at,)` while the trip runs and
-- `[started_at, ended_at)` once it ended, so two successive trips of one car never share an
-- instant. Times come from the events, so a rebuild writes the same ranges.
CREATE TABLE vehicle_possessions (
    trip_id           uuid PRIMARY KEY,
    vehicle_id        uuid NOT NULL,
    customer_id       uuid NOT NULL,
    -- The account that pays for the trip (`customer:<uuid>` or `company:<uuid>`), fixed at start.
    payer_account_id  text NOT NULL,
    company_id        uuid,
    during            tstzrange NOT NULL,
    stream_version    bigint NOT NULL
);

-- "Car X at time T" is `vehicle_id = X AND during @> T`: one GiST index answers both parts.
CREATE INDEX vehicle_possessions_vehicle_during_idx ON vehicle_possessions
    USING gist (vehicle_id, during);

-- Each car's plate, normalised by domain::value::Plate::parse when projected (Latin look-alikes
-- become Cyrillic), from VehicleAddedToFleet: fines and support look cars up by plate.
CREATE TABLE vehicle_plates (
    vehicle_id  uuid PRIMARY KEY,
    plate       text NOT NULL,
    model       text NOT NULL,
    added_at    timestamptz NOT NULL
);

CREATE INDEX vehicle_plates_plate_idx ON vehicle_plates (plate);

-- One row per customer, from the customer's stream: the support console's profile and search.
-- Phone, e-mail and licence number are stored as the domain normalised them, and search
-- normalises its query the same way, so equality is enough.
CREATE TABLE customers_view (
    customer_id        uuid PRIMARY KEY,
    name               text NOT NULL,
    phone              text NOT NULL,
    email              text NOT NULL,
    birth_date         date NOT NULL,
    -- The licence last given: at registration, or with the last KYC documents.
    licence_number     text NOT NULL,
    verification       text NOT NULL CHECK (verification IN ('pending', 'verified', 'rejected')),
    rejection_reason   text,
    -- Active blocks, sorted (domain::customer::BlockReason as words).
    blocks             text[] NOT NULL DEFAULT '{}',
    company_id         uuid,
    registered_at      timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    stream_version     bigint NOT NULL
);

CREATE INDEX customers_view_phone_idx ON customers_view (phone);
CREATE INDEX customers_view_email_idx ON customers_view (email);
CREATE INDEX customers_view_licence_number_idx ON customers_view (licence_number);

-- "My trips", newest first, a page at a time: the cursor is (started_at, trip_id) of the last
-- trip shown, and the next page is the trips below it in this order.
CREATE INDEX trips_view_customer_started_idx ON trips_view
    (customer_id, started_at DESC, trip_id DESC);
