-- sagas: the saga runtime's durable state. Owned and written only by the sagas crate.

-- One row per saga instance: its state (the saga's own JSON), whether it is still running, and
-- the last event it reacted to, in delivery order, so that a replay of the log from an older
-- checkpoint never applies an event to an instance twice.
CREATE TABLE saga_instances (
    saga                 text NOT NULL,
    instance_id          text NOT NULL,
    state                jsonb NOT NULL,
    status               text NOT NULL CHECK (status IN ('active', 'completed')),
    version              bigint NOT NULL,
    last_transaction_id  xid8,
    last_position        bigint,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (saga, instance_id)
);

CREATE INDEX saga_instances_by_status ON saga_instances (saga, status);

-- Where each saga is in the log; the same position encoding as projector_checkpoints. Moved in
-- the transaction that stores the batch's states, timers and commands. `last_error` says why the
-- last attempt failed (cleared by the next successful batch), for the admin view.
CREATE TABLE saga_checkpoints (
    saga            text PRIMARY KEY,
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_error      text,
    last_error_at   timestamptz
);

-- Durable timers. `due_at` is business time (the injected clock); `retry_after` is wall-clock
-- time (the database's), set when the saga's on_timer failed, so a failing timer does not starve
-- the others. `fired_at` is set when the timer fired or was cancelled (`cancelled`).
CREATE TABLE saga_timers (
    timer_id     uuid PRIMARY KEY,
    saga         text NOT NULL,
    instance_id  text NOT NULL,
    name         text NOT NULL,
    due_at       timestamptz NOT NULL,
    payload      jsonb NOT NULL,
    fired_at     timestamptz,
    cancelled    boolean NOT NULL DEFAULT false,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    retry_after  timestamptz,
    created_at   timestamptz NOT NULL,
    FOREIGN KEY (saga, instance_id) REFERENCES saga_instances (saga, instance_id)
);

CREATE INDEX saga_timers_due ON saga_timers (due_at) WHERE fired_at IS NULL;
CREATE INDEX saga_timers_by_instance ON saga_timers (saga, instance_id, name)
    WHERE fired_at IS NULL;

-- The outbox: commands a saga decided to send, stored with the state that decided them. The id
-- is derived from what caused the command (event or timer id), the saga, the instance and the
-- command's index in the reaction, so deciding again (a replay) inserts nothing new; it is the
-- command's Idempotency-Key, so sending again (a retry, a crash after sending) appends nothing.
-- `next_attempt_at` (wall-clock, the database's) is both the retry backoff and the lease a
-- dispatcher takes while it sends.
CREATE TABLE saga_commands (
    command_id       uuid PRIMARY KEY,
    saga             text NOT NULL,
    instance_id      text NOT NULL,
    name             text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);

CREATE INDEX saga_commands_pending ON saga_commands (next_attempt_at)
    WHERE status = 'pending';
