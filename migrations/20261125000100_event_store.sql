-- event-store: the log of every event, stream heads, exclusive claims and command results.
-- Owned and written only by the event-store crate.

-- One row per event. `position` is unique but is NOT commit order: with concurrent writers a
-- higher position can commit first. Readers therefore order by (transaction_id, position) and only
-- read below the oldest transaction still in flight; see event-store/src/log.rs.
CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    category        text NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    stream_version  bigint NOT NULL CHECK (stream_version >= 1),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    data            jsonb NOT NULL,
    correlation_id  uuid NOT NULL,
    causation_id    uuid,
    actor           text NOT NULL,
    command_id      uuid,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- The delivery order of the whole log.
CREATE INDEX events_log_order_idx ON events (transaction_id, position);

-- The head of each stream: appends lock its row, so the expected-version check is exact and
-- appends to one stream are serialized while appends to different streams run in parallel.
CREATE TABLE streams (
    stream_id   text PRIMARY KEY,
    version     bigint NOT NULL
);

-- Exclusive claims ("active-trip:vehicle:<id>"): at most one holder at a time, enforced by the
-- primary key inside the append transaction.
CREATE TABLE exclusive_claims (
    claim         text PRIMARY KEY,
    holder_stream text NOT NULL,
    acquired_at   timestamptz NOT NULL
);

-- The first result of each idempotent command, written in the same transaction as its events,
-- so a retry with the same key gets the same answer and appends nothing.
CREATE TABLE command_results (
    scope         text NOT NULL,
    idempotency_key text NOT NULL,
    request_hash  text NOT NULL,
    status        smallint NOT NULL,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

-- Appends events to one or more streams in one statement: checks every stream's expected version
-- (-1 any, 0 no stream yet, n exactly n events), takes and releases claims, records the command
-- result, and returns the new rows. Streams are locked in stream-id order so that two appends
-- touching the same streams cannot deadlock.
--
-- Errors, by SQLSTATE: VL001 wrong expected version (detail: stream id, expected, actual);
-- VL002 claim held by someone else (detail: claim); VL003 command result already recorded
-- (detail: idempotency key).
CREATE FUNCTION append_events(
    p_streams          text[],
    p_expected         bigint[],
    p_event_stream     integer[],
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_data             jsonb[],
    p_occurred_at      timestamptz[],
    p_correlation_id   uuid,
    p_causation_id     uuid,
    p_actor            text,
    p_command_id       uuid,
    p_recorded_at      timestamptz,
    p_acquire          text[],
    p_acquire_holder   text,
    p_release          text[],
    p_result_scope     text,
    p_result_key       text,
    p_result_hash      text,
    p_result_status    smallint,
    p_result_body      jsonb
) RETURNS TABLE (out_position bigint, out_stream_id text, out_stream_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    stream_count integer := coalesce(array_length(p_streams, 1), 0);
    event_count  integer := coalesce(array_length(p_event_ids, 1), 0);
    heads        bigint[] := array_fill(0::bigint, ARRAY[greatest(stream_count, 1)]);
    current      bigint;
    idx          integer;
    inserted     integer;
    held         text;
BEGIN
    -- Lock and check each stream head, in stream-id order.
    FOR idx IN
        SELECT i FROM generate_subscripts(p_streams, 1) AS i ORDER BY p_streams[i]
    LOOP
        SELECT version INTO current FROM streams WHERE stream_id = p_streams[idx] FOR UPDATE;
        IF NOT FOUND THEN
            current := 0;
        END IF;
        IF p_expected[idx] >= 0 AND p_expected[idx] <> current THEN
            RAISE EXCEPTION 'wrong expected version for stream %', p_streams[idx]
                USING ERRCODE = 'VL001',
                      DETAIL = p_streams[idx] || ' ' || p_expected[idx] || ' ' || current;
        END IF;
        heads[idx] := current;
    END LOOP;

    IF coalesce(array_length(p_release, 1), 0) > 0 THEN
        DELETE FROM exclusive_claims WHERE claim = ANY (p_release);
    END IF;

    IF coalesce(array_length(p_acquire, 1), 0) > 0 THEN
        INSERT INTO exclusive_claims (claim, holder_stream, acquired_at)
        SELECT c, p_acquire_holder, p_recorded_at FROM unnest(p_acquire) AS c
        ON CONFLICT (claim) DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted < array_length(p_acquire, 1) THEN
            -- Taking a claim the same holder already has is not a conflict.
            SELECT c INTO held FROM unnest(p_acquire) AS c
            WHERE EXISTS (SELECT 1 FROM exclusive_claims e
                          WHERE e.claim = c AND e.holder_stream <> p_acquire_holder)
            LIMIT 1;
            IF held IS NOT NULL THEN
                RAISE EXCEPTION 'claim % is held', held
                    USING ERRCODE = 'VL002', DETAIL = held;
            END IF;
        END IF;
    END IF;

    IF p_result_key IS NOT NULL THEN
        INSERT INTO command_results (scope, idempotency_key, request_hash, status, body, created_at)
        VALUES (p_result_scope, p_result_key, p_result_hash, p_result_status, p_result_body, p_recorded_at)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted = 0 THEN
            RAISE EXCEPTION 'command % already has a result', p_result_key
                USING ERRCODE = 'VL003', DETAIL = p_result_key;
        END IF;
    END IF;

    -- Number the events per stream after the head, then move each head.
    RETURN QUERY
    INSERT INTO events AS e (
        stream_id, stream_version, event_id, event_type, schema_version, data,
        correlation_id, causation_id, actor, command_id, occurred_at, recorded_at)
    SELECT p_streams[s.stream_idx],
           heads[s.stream_idx] + row_number() OVER (PARTITION BY s.stream_idx ORDER BY s.ord),
           s.event_id, s.event_type, s.schema_version, s.data,
           p_correlation_id, p_causation_id, p_actor, p_command_id, s.occurred_at, p_recorded_at
    FROM unnest(p_event_stream, p_event_ids, p_event_types, p_schema_versions, p_data, p_occurred_at)
         WITH ORDINALITY AS s(stream_idx, event_id, event_type, schema_version, data, occurred_at, ord)
    ORDER BY s.ord
    RETURNING e.position, e.stream_id, e.stream_version;

    INSERT INTO streams AS st (stream_id, version)
    SELECT p_streams[i], heads[i] + count(*)
    FROM unnest(p_event_stream) AS i
    GROUP BY i
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version;
END;
$$;
