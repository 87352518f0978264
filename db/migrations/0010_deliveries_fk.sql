-- A delivery reaches its campaign through its run (deliveries.run_id REFERENCES
-- campaign_runs ON DELETE CASCADE, and campaign_runs.campaign_id REFERENCES campaigns
-- ON DELETE CASCADE), so deleting a campaign still deletes its deliveries. The
-- second, direct reference cost a referential check per row on every audience page
-- written (a 1,000,000-recipient campaign writes a million rows in its first
-- seconds); deliveries.campaign_id stays, as the column the indexes and the api's
-- queries use, and the scheduler writes it from the run's own row.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_campaign_id_fkey;
