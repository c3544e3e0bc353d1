-- event-store: group commit. Several concurrent appends in one transaction and one round trip,
-- each in its own subtransaction, so one request's conflict refuses that request alone.
--
-- The requests arrive as the arrays `append_events` takes, concatenated; `*_ends` give each
-- request's end (exclusive, cumulative) in the arrays of streams, events, claims to take and
-- claims to release, and the per-request scalars come as arrays indexed by request.
--
-- Every stream head the batch touches is locked first, in stream-id order, so a batch cannot
-- deadlock with another batch or with a single append (which locks in the same order).
--
-- Returns, per request in order, its events as `append_events` returns them.
--
-- With `p_isolate` false, any request's error fails the whole statement (and the transaction):
-- the cheap way, for the common case where no request conflicts. With `p_isolate` true, each
-- request runs in its own subtransaction: a request refused with VL001, VL002, VL003 or 23505
-- gets one row with `out_error` set to that SQLSTATE and `out_detail` to the error's detail (for
-- 23505, the constraint's name), and the others are kept. Any other error still fails the whole
-- statement.
CREATE FUNCTION append_events_batch(
    p_stream_ends      integer[],
    p_streams          text[],
    p_expected         bigint[],
    p_event_ends       integer[],
    p_event_stream     integer[],
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_data             jsonb[],
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
