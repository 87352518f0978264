-- The scheduler's pacing and send windows (services/scheduler/pacing.h, window.h).

-- Due rows are claimed per campaign (a fair share each), so the due index leads
-- with the campaign: a claim, or the look for the next due row, reads only the
-- running campaigns' rows, and a paused campaign's backlog is never walked past.
-- It replaces the global due index of 0001, which nothing else reads.
CREATE INDEX deliveries_campaign_due_idx ON deliveries
    (campaign_id, (coalesce(next_attempt_at, due_at))) WHERE status = 'pending';
DROP INDEX IF EXISTS deliveries_due_idx;

-- Lateness (max_lateness_minutes, and the staleness bound of campaigns without one)
-- counts from lateness_from when it is set, else from due_at: a delivery held for
-- its send window counts from the window's opening, and one a person retried from
-- the moment of the retry, not from a due time it was never allowed to go at.
--
-- Send windows (quiet hours in the recipient's zone): due_at stays the instant the
-- schedule gave; a delivery due outside its window waits, next_attempt_at and
-- lateness_from set to the window's opening. window_closes_at is when that window
-- ends: a delivery still pending then (a paused or slow campaign) is held again
-- until the next opening. Instants only: the recipient's zone itself is never
-- stored (design.md).
ALTER TABLE deliveries ADD COLUMN lateness_from timestamptz;
ALTER TABLE deliveries ADD COLUMN window_closes_at timestamptz;

-- A 429's Retry-After pauses the whole bot. Recorded here, not only in the memory
-- of the scheduler that applied the result, because results reach a standby too
-- (senders dial every scheduler) and a new leader must not hammer a bot that the
-- platform asked to wait.
CREATE TABLE scheduler_bot_pauses (
    bot_id        uuid PRIMARY KEY REFERENCES bots(id) ON DELETE CASCADE,
    paused_until  timestamptz NOT NULL,
    pauses        bigint NOT NULL DEFAULT 1,  -- 429s that started or lengthened a pause
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Audiences are read in passes, each reading the platform's list live and taking
-- the recipients due up to pass_horizon (the pass's start plus the load-ahead,
-- 26 h): nobody is read earlier than that before their due time, although a
-- local-time run spans 26 h of zones (50 h with if_passed next_day). loaded_until
-- is the horizon of the last finished pass; a pass is in progress while
-- pass_horizon is past it. The run is 'loaded' once a pass reaches its last due time.
ALTER TABLE campaign_runs ADD COLUMN pass_horizon timestamptz;
ALTER TABLE campaign_runs ADD COLUMN pass_started_at timestamptz;
ALTER TABLE campaign_runs ADD COLUMN loaded_until timestamptz;
