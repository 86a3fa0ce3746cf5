-- Flows and tasks (weir-flows). Versions 100+ belong to weir-flows.
CREATE TABLE IF NOT EXISTS flow_bindings (
    dataset_id TEXT NOT NULL,
    flow_type TEXT NOT NULL,
    config TEXT NOT NULL,
    configured BIGINT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    stop_reason TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, flow_type)
);

CREATE TABLE IF NOT EXISTS flow_runs (
    run_id BIGSERIAL PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    flow_type TEXT NOT NULL,
    status TEXT NOT NULL,
    wait_reason TEXT,
    due_at BIGINT,
    outcome TEXT,
    last_error TEXT,
    causes TEXT NOT NULL,
    records_awaited BIGINT NOT NULL DEFAULT 0,
    attempt BIGINT NOT NULL DEFAULT 0,
    priority BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
-- At most one waiting run per flow: new causes merge into it.
CREATE UNIQUE INDEX IF NOT EXISTS flow_runs_one_waiting ON flow_runs (dataset_id, flow_type)
    WHERE status = 'waiting';
CREATE INDEX IF NOT EXISTS flow_runs_due ON flow_runs (status, due_at);
CREATE INDEX IF NOT EXISTS flow_runs_flow ON flow_runs (dataset_id, flow_type, run_id);

CREATE TABLE IF NOT EXISTS flow_tasks (
    task_id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    priority BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    holder TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_tasks_queue ON flow_tasks (state, priority, task_id);
CREATE INDEX IF NOT EXISTS flow_tasks_run ON flow_tasks (run_id);
