-- bots_token_invalid(bot_ids): what bcrm does when a platform refuses a bot's token,
-- wherever it finds out (a send's answer at the scheduler, a live read at the api,
-- Slack's tokens_revoked event): the bots become token_invalid and their scheduled
-- or running campaigns paused, each pause announced on bcrm_campaigns, all in this
-- one statement. Returns how many bots changed and how many campaigns were paused.
-- A bot reconnected since (active with a new token) is not told apart here: the
-- caller asks only about a refusal it has just seen.
CREATE FUNCTION bots_token_invalid(bot_ids uuid[], OUT bots bigint, OUT campaigns_paused bigint)
LANGUAGE sql AS $$
    WITH b AS (
        UPDATE bots SET status = 'token_invalid', updated_at = now()
        WHERE id = ANY(bot_ids) AND status IN ('verifying', 'active') RETURNING id
    ), p AS (
        UPDATE campaigns SET status = 'paused', updated_at = now()
        WHERE bot_id = ANY(bot_ids) AND status IN ('scheduled', 'running') RETURNING id
    ), announced AS (
        SELECT pg_notify('bcrm_campaigns', id::text) FROM p
    )
    SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM announced)
$$;
