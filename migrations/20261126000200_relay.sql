-- relay: where the NATS relay is in the log. Owned and written only by the relay crate.

-- The last event whose JetStream publish was acknowledged, in delivery order (see
-- event-store/src/log.rs); the same position type as projector_checkpoints. Moved only after
-- every publish of a batch has been acknowledged, so a crash repeats a batch (removed again by
-- JetStream's Nats-Msg-Id deduplication) and never skips one.
CREATE TABLE relay_checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    updated_at      timestamptz NOT NULL
);
