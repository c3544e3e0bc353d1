-- audit: indexes on the event store's `events` table for the audit history (GET /v1/audit/events)
-- and `velka audit export`. The event-store crate stays the only writer of `events`; these only
-- serve the audit crate's reads.
--
-- History pages in delivery order, (transaction_id, position), like every reader of the log, so
-- a page boundary never skips an event that commits late. Each filter that can match a large
-- part of the log has an index that yields its events already in that order, so a page is one
-- index range scan from the cursor, however long the history.

CREATE INDEX events_category_log_order_idx ON events (category, transaction_id, position);
CREATE INDEX events_type_log_order_idx ON events (event_type, transaction_id, position);
CREATE INDEX events_actor_log_order_idx ON events (actor, transaction_id, position);
CREATE INDEX events_correlation_log_order_idx ON events (correlation_id, transaction_id, position);
-- A time range alone (and the export) narrows by recorded time.
CREATE INDEX events_recorded_at_idx ON events (recorded_at);
