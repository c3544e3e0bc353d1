-- event-store: keep each event's data as the JSON text its writer sent (`json`), not as `jsonb`.
--
-- Nothing in the database looks inside an event's data: the store appends it, and every reader
-- (loads, projectors, sagas, the chain's sealer and verifier, exports) takes it back whole. As
-- `jsonb` each append parsed it into a binary tree and each read rendered the tree back to text,
-- which was most of what reading the log cost PostgreSQL (`velka bench verify`, BENCHMARKS.md).
-- As `json` the text is checked to be JSON on the way in and returned as it is.
--
-- The chain (audit/src/chain.rs) hashes `data` as text. Converting renders every stored `jsonb`
-- value once, exactly as `data::text` rendered it when the sealer hashed it, so existing entries
-- stay valid; from now on an event's text is hashed as it was sent.
ALTER TABLE events ALTER COLUMN data TYPE json USING data::json;

-- The append functions take the data as `json[]`. Their bodies are unchanged from
-- 20261125000100_event_store.sql and 20261205000100_event_store_append_batch.sql (a function's
-- argument types cannot be altered in place); see those files for what they do.
DROP FUNCTION append_events_batch(integer[], text[], bigint[], integer[], integer[], uuid[], text[],
    integer[], jsonb[], timestamptz[], uuid[], uuid[], text[], uuid[], timestamptz[], integer[],
    text[], text[], integer[], text[], text[], text[], text[], smallint[], jsonb[], boolean);
DROP FUNCTION append_events(text[], bigint[], integer[], uuid[], text[], integer[], jsonb[],
    timestamptz[], uuid, uuid, text, uuid, timestamptz, text[], text, text[], text, text, text,
    smallint, jsonb);

CREATE FUNCTION append_events(
    p_streams          text[],
    p_expected         bigint[],
    p_event_stream     integer[],
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_data             json[],
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

CREATE FUNCTION append_events_batch(
    p_stream_ends      integer[],
    p_streams          text[],
    p_expected         bigint[],
    p_event_ends       integer[],
    p_event_stream     integer[],
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_data             json[],
    p_occurred_at      timestamptz[],
    p_correlation_ids  uuid[],
    p_causation_ids    uuid[],
    p_actors           text[],
    p_command_ids      uuid[],
    p_recorded_at      timestamptz[],
    p_acquire_ends     integer[],
    p_acquire          text[],
    p_acquire_holders  text[],
    p_release_ends     integer[],
    p_release          text[],
    p_result_scopes    text[],
    p_result_keys      text[],
    p_result_hashes    text[],
    p_result_statuses  smallint[],
    p_result_bodies    jsonb[],
    p_isolate          boolean
) RETURNS TABLE (out_request integer, out_position bigint, out_stream_id text,
                 out_stream_version bigint, out_error text, out_detail text)
LANGUAGE plpgsql AS $$
DECLARE
    request_count integer := coalesce(array_length(p_stream_ends, 1), 0);
    r          integer;
    streams_at integer := 0;
    events_at  integer := 0;
    acquire_at integer := 0;
    release_at integer := 0;
    positions  bigint[];
    stream_ids text[];
    versions   bigint[];
    code       text;
    detail     text;
    violated   text;
BEGIN
    PERFORM 1 FROM streams WHERE stream_id = ANY (p_streams) ORDER BY stream_id FOR UPDATE;

    -- The call is written twice on purpose: PL/pgSQL opens a subtransaction on entering any block
    -- with an EXCEPTION clause, so the cheap path must not share the isolating block.
    FOR r IN 1 .. request_count LOOP
        IF NOT p_isolate THEN
            RETURN QUERY
            SELECT r, a.pos, a.sid, a.ver, NULL::text, NULL::text
            FROM append_events(
                p_streams[streams_at + 1 : p_stream_ends[r]],
                p_expected[streams_at + 1 : p_stream_ends[r]],
                p_event_stream[events_at + 1 : p_event_ends[r]],
                p_event_ids[events_at + 1 : p_event_ends[r]],
                p_event_types[events_at + 1 : p_event_ends[r]],
                p_schema_versions[events_at + 1 : p_event_ends[r]],
                p_data[events_at + 1 : p_event_ends[r]],
                p_occurred_at[events_at + 1 : p_event_ends[r]],
                p_correlation_ids[r], p_causation_ids[r], p_actors[r], p_command_ids[r],
                p_recorded_at[r],
                p_acquire[acquire_at + 1 : p_acquire_ends[r]], p_acquire_holders[r],
                p_release[release_at + 1 : p_release_ends[r]],
                p_result_scopes[r], p_result_keys[r], p_result_hashes[r],
                p_result_statuses[r], p_result_bodies[r]
            ) AS a(pos, sid, ver);
        ELSE
            BEGIN
                SELECT array_agg(a.pos ORDER BY a.ord),
                       array_agg(a.sid ORDER BY a.ord),
                       array_agg(a.ver ORDER BY a.ord)
                INTO positions, stream_ids, versions
                FROM append_events(
                    p_streams[streams_at + 1 : p_stream_ends[r]],
                    p_expected[streams_at + 1 : p_stream_ends[r]],
                    p_event_stream[events_at + 1 : p_event_ends[r]],
                    p_event_ids[events_at + 1 : p_event_ends[r]],
                    p_event_types[events_at + 1 : p_event_ends[r]],
                    p_schema_versions[events_at + 1 : p_event_ends[r]],
                    p_data[events_at + 1 : p_event_ends[r]],
                    p_occurred_at[events_at + 1 : p_event_ends[r]],
                    p_correlation_ids[r], p_causation_ids[r], p_actors[r], p_command_ids[r],
                    p_recorded_at[r],
                    p_acquire[acquire_at + 1 : p_acquire_ends[r]], p_acquire_holders[r],
                    p_release[release_at + 1 : p_release_ends[r]],
                    p_result_scopes[r], p_result_keys[r], p_result_hashes[r],
                    p_result_statuses[r], p_result_bodies[r]
                ) WITH ORDINALITY AS a(pos, sid, ver, ord);

                RETURN QUERY
                SELECT r, u.pos, u.sid, u.ver, NULL::text, NULL::text
                FROM unnest(positions, stream_ids, versions) AS u(pos, sid, ver);
            EXCEPTION
                WHEN SQLSTATE 'VL001' OR SQLSTATE 'VL002' OR SQLSTATE 'VL003' OR unique_violation THEN
                    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE,
                                            detail = PG_EXCEPTION_DETAIL,
                                            violated = CONSTRAINT_NAME;
                    out_request := r;
                    out_position := NULL;
                    out_stream_id := NULL;
                    out_stream_version := NULL;
                    out_error := code;
                    out_detail := CASE WHEN code = '23505' THEN violated ELSE detail END;
                    RETURN NEXT;
            END;
        END IF;
        streams_at := p_stream_ends[r];
        events_at := p_event_ends[r];
        acquire_at := p_acquire_ends[r];
        release_at := p_release_ends[r];
    END LOOP;
END;
$$;
