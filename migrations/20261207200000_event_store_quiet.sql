-- Quiet transactions (followers' batches: projectors, sagas, the sealer) promise to append no
-- events, so the log's readers in their process leave them out of the delivery horizon (see
-- event-store's `quiet` module). This guard keeps the promise: under `velka.quiet` no statement
-- may insert into `events`. One check per statement, not per row.
CREATE FUNCTION events_refuse_quiet() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('velka.quiet', true) = 'on' THEN
        RAISE EXCEPTION 'a quiet transaction (a follower''s batch) cannot append events'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_refuse_quiet
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_quiet();
