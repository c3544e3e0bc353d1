-- payments: a card hold is noted *before* the gateway is asked for it, so that a crash at any
-- instant leaves a trace of every hold whose outcome Velka does not know.
--
-- `uncertain_holds` (command-api) noted a hold only after its answer was lost; a crash between
-- the gateway's hold and the note left a hold nothing knew of. Its rows become intents: a row
-- is written before the hold is asked for, deleted once a trip has taken the hold (its
-- `PaymentHeld` is on the account), and otherwise settled by `payments::sweeper` from
-- `release_from` on: the hold is abandoned on the account (`HoldAbandoned`, so no retried start
-- can take it any more), cancelled at the gateway, and the row marked `released_at` (kept two
-- days, so a late retry is refused before it asks the gateway). A start refused for good sets
-- `release_from` to now, so a crash between its abandon and its cancel is picked up at once.
-- Writer: payments.
ALTER TABLE uncertain_holds RENAME TO hold_intents;
ALTER TABLE hold_intents
    ADD COLUMN release_from timestamptz,
    ADD COLUMN release_reason text,
    -- Holds asked for before this migration carried no metadata; asking again with the same
    -- key must send the same request, or the gateway refuses the key.
    ADD COLUMN with_metadata boolean NOT NULL DEFAULT false;
UPDATE hold_intents SET release_from = noted_at + interval '10 minutes';
ALTER TABLE hold_intents
    ALTER COLUMN release_from SET NOT NULL,
    ALTER COLUMN with_metadata SET DEFAULT true;
CREATE INDEX hold_intents_due ON hold_intents (release_from) WHERE released_at IS NULL;

-- Holds the gateway keeps open that nothing Velka recorded explains, as the reconciler
-- (`payments::reconciler`) first saw them: let go once they have stayed unexplained past the
-- grace period, by the injected clock. `explained_at` marks a hold a trip took (never looked at
-- again); rows of holds no longer open at the gateway are deleted. Writer: payments.
CREATE TABLE gateway_holds_seen (
    payment_id      text PRIMARY KEY,
    customer_ref    text NOT NULL,
    hold_key        text,
    amount_kopecks  bigint NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    explained_at    timestamptz,
    released_at     timestamptz
);
