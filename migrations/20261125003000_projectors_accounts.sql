-- projectors: the accounts read model, built from the `account-…` streams. Owned and written only
-- by the projectors crate (AccountsProjector); query-api reads it for GET /v1/accounts/{id}.
--
-- The money invariants are CHECKs as well as domain rules: a projection that would show more
-- refunded and waived than charged, or totals that do not add up, fails the batch (the runner
-- stops on it and says so) rather than show a wrong balance.

-- One row per account: its sums, and the version of the last account event applied, which guards
-- every write of this projector (an event at or below it is a replay and is skipped).
CREATE TABLE accounts_view (
    -- `customer:<uuid>` (later `company:<uuid>`): domain::account::AccountId as text.
    account_id        text PRIMARY KEY,
    charged_kopecks   bigint NOT NULL DEFAULT 0 CHECK (charged_kopecks >= 0),
    refunded_kopecks  bigint NOT NULL DEFAULT 0 CHECK (refunded_kopecks >= 0),
    waived_kopecks    bigint NOT NULL DEFAULT 0 CHECK (waived_kopecks >= 0),
    open_kopecks      bigint NOT NULL DEFAULT 0 CHECK (open_kopecks >= 0),
    updated_at        timestamptz NOT NULL,
    stream_version    bigint NOT NULL,
    CHECK (charged_kopecks = refunded_kopecks + waived_kopecks + open_kopecks)
);

-- One row per charge.
CREATE TABLE account_charges_view (
    charge_id         uuid PRIMARY KEY,
    account_id        text NOT NULL REFERENCES accounts_view (account_id),
    -- Who caused it (the driver).
    customer_id       uuid NOT NULL,
    -- domain::account::ChargeReason: trip_price, paid_waiting, fine, fine_admin_fee, penalty.
    reason            text NOT NULL,
    -- The source: trip, reservation, fine or penalty, and its id.
    source_kind       text NOT NULL,
    source_id         uuid NOT NULL,
    amount_kopecks    bigint NOT NULL CHECK (amount_kopecks > 0),
    refunded_kopecks  bigint NOT NULL DEFAULT 0 CHECK (refunded_kopecks >= 0),
    waived_kopecks    bigint NOT NULL DEFAULT 0 CHECK (waived_kopecks >= 0),
    added_at          timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CHECK (refunded_kopecks + waived_kopecks <= amount_kopecks)
);

CREATE INDEX account_charges_view_account_idx ON account_charges_view (account_id, added_at);

-- Each refund and waiver of a charge, with the agent who made it (the event's actor).
CREATE TABLE account_adjustments_view (
    -- The refund id, or the event id of a waiver (waivers have no id of their own).
    adjustment_id     uuid PRIMARY KEY,
    charge_id         uuid NOT NULL REFERENCES account_charges_view (charge_id),
    kind              text NOT NULL CHECK (kind IN ('refund', 'waiver')),
    amount_kopecks    bigint NOT NULL CHECK (amount_kopecks > 0),
    reason            text NOT NULL,
    actor             text NOT NULL,
    at                timestamptz NOT NULL
);

CREATE INDEX account_adjustments_view_charge_idx ON account_adjustments_view (charge_id, at);
