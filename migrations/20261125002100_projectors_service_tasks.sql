-- projectors: service_tasks_view, one row per service task, for fleet staff and support.
-- Times come from the events, never from the wall clock, so a rebuild writes identical rows.
CREATE TABLE service_tasks_view (
    task_id          uuid PRIMARY KEY,
    vehicle_id       uuid NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('refuel', 'wash', 'relocate', 'repair')),
    status           text NOT NULL CHECK (status IN ('open', 'assigned', 'in_progress', 'completed')),
    -- Who has the task (assigned, working on it, or who completed it); null while open.
    staff_id         text,
    -- The note given when the task was opened, and the one given when it was completed.
    note             text,
    completion_note  text,
    -- The trip after which the system opened the task (low fuel), if it did.
    after_trip_id    uuid,
    opened_at        timestamptz NOT NULL,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL,
    stream_version   bigint NOT NULL,
    CHECK ((status = 'open') = (staff_id IS NULL)),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);

-- A car's open tasks, and a staff member's, without scanning the finished ones.
CREATE INDEX service_tasks_view_open_vehicle_idx ON service_tasks_view (vehicle_id)
    WHERE status <> 'completed';
CREATE INDEX service_tasks_view_open_staff_idx ON service_tasks_view (staff_id)
    WHERE status IN ('assigned', 'in_progress');
