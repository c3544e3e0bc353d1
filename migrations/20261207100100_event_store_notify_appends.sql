-- event-store: every append notifies channel `velka_log` when it commits, so that followers in
-- other processes (API nodes, workers) wake at once instead of at their next poll. A hint only:
-- what is delivered is still decided by the gap-free read (`event-store/src/log.rs`). One
-- notification per INSERT statement (a statement trigger; PostgreSQL also folds identical
-- notifications of one transaction into one), with an empty payload.
CREATE FUNCTION event_store_notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('velka_log', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_append
    AFTER INSERT ON events
    FOR EACH STATEMENT
    EXECUTE FUNCTION event_store_notify_append();
