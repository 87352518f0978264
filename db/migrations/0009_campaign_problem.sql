-- Why a campaign cannot go on, for the person who owns it (GET .../campaigns/{id}
-- answers it as "problem"): a short, factual sentence naming what to change, or
-- NULL when nothing is wrong. The scheduler sets it when a run cannot be loaded
-- (a members_of audience larger than BCRM_SCHEDULER_MEMBERS_MAX) and clears it
-- when the run gets past that point.
ALTER TABLE campaigns ADD COLUMN problem text;
