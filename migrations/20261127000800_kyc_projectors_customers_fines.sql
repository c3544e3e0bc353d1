-- projectors: what the KYC and fine sagas add to two read models. Owned and written only by the
-- projectors crate (CustomersProjector, FinesProjector).

-- Why a customer's documents await a person's review (the KYC provider asked for it, or did not
-- answer by the deadline), while they do; NULL once decided or when new documents arrive.
ALTER TABLE customers_view ADD COLUMN manual_review_reason text;

-- A fine leaves `open` once: matched to the trip that had the car (and charged to its payer), or
-- assigned to the fleet for review when no trip had it.
ALTER TABLE fines_view DROP CONSTRAINT fines_view_status_check;
ALTER TABLE fines_view ADD CONSTRAINT fines_view_status_check
    CHECK (status IN ('open', 'matched', 'assigned_to_fleet'));
ALTER TABLE fines_view
    ADD COLUMN trip_id uuid,
    ADD COLUMN customer_id uuid,
    -- `customer:<uuid>` or `company:<uuid>`: who was charged.
    ADD COLUMN account_id text;
