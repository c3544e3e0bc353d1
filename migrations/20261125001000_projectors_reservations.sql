-- projectors: reservations, the demand that prices quotes, and reserved cars in vehicles_view.
-- Owned and written only by the projectors crate; query-api, the quote route (demand and supply
-- observations) and the reservation expiry worker (due reservations) read them.

-- A car can now be held by a reservation. The status check is re-created under its original
-- name with the new status, and the reservation holding the car is kept beside the trip.
ALTER TABLE vehicles_view DROP CONSTRAINT IF EXISTS vehicles_view_status_check;
ALTER TABLE vehicles_view ADD CONSTRAINT vehicles_view_status_check
    CHECK (status IN ('available', 'in_trip', 'reserved'));
ALTER TABLE vehicles_view ADD COLUMN current_reservation_id uuid;
ALTER TABLE vehicles_view ADD CONSTRAINT vehicles_view_reservation_check
    CHECK ((status = 'reserved') = (current_reservation_id IS NOT NULL));

-- One row per reservation, from the reservation's stream. The expiry worker finds active
-- reservations past `expires_at` here (after a restart too: the deadline is in ReservationMade,
-- so a rebuild finds the same ones), then expires each through the command pipeline, which
-- decides on the reservation's own stream.
CREATE TABLE reservations_view (
    reservation_id        uuid PRIMARY KEY,
    customer_id           uuid NOT NULL,
    vehicle_id            uuid NOT NULL,
    quote_id              uuid,
    status                text NOT NULL
                          CHECK (status IN ('active', 'converted', 'cancelled', 'expired')),
    made_at               timestamptz NOT NULL,
    free_until            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    ended_at              timestamptz,
    -- The trip it turned into, once converted.
    trip_id               uuid,
    -- The domain's RentalTerms (trip tariff and waiting tariff), fixed when it was made.
    terms                 jsonb NOT NULL,
    lat                   double precision NOT NULL,
    lon                   double precision NOT NULL,
    -- The waiting charged by the event that ended it; null while active.
    waited_s              bigint CHECK (waited_s >= 0),
    paid_minutes          bigint CHECK (paid_minutes >= 0),
    paid_waiting_kopecks  bigint CHECK (paid_waiting_kopecks >= 0),
    updated_at            timestamptz NOT NULL,
    stream_version        bigint NOT NULL,
    CHECK ((status = 'active') = (ended_at IS NULL)),
    CHECK ((status = 'converted') = (trip_id IS NOT NULL))
);

-- "Which reservations are due?" reads only the active ones, oldest deadline first.
CREATE INDEX reservations_view_due_idx ON reservations_view (expires_at) WHERE status = 'active';
CREATE INDEX reservations_view_customer_id_idx ON reservations_view (customer_id);

-- Demand for cars, for the dynamic price of a quote: one row per quote issued or reservation
-- made, where and by whom. The quote route counts the distinct customers in a pricing zone over
-- the last minutes (the zone is computed from lat/lon with the same division as the domain's
-- grid, so a new grid applies without a rebuild). Rows older than a day are pruned as newer
-- events arrive; the cut-off comes from the events' own times, so a rebuild keeps the same rows.
CREATE TABLE demand_activity (
    -- The QuoteIssued or ReservationMade event: applying it twice is a no-op.
    event_id     uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('quote', 'reservation')),
    customer_id  uuid NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    occurred_at  timestamptz NOT NULL
);

CREATE INDEX demand_activity_occurred_at_idx ON demand_activity (occurred_at);
