/* oauth.h: Slack's OAuth v2 install flow, approved at once.
 *
 * GET /oauth/v2/authorize?client_id&scope&redirect_uri&state[&team=T...] stands
 * for the page where a workspace admin clicks "Allow": it redirects straight to
 * redirect_uri with a one-time code and the state (or error=access_denied when
 * deny=1). oauth.v2.access then trades the code, with the app's client id and
 * secret (HTTP Basic or form fields), for the workspace's bot token.
 */
#ifndef SIM_OAUTH_H
#define SIM_OAUTH_H

#include <stdint.h>

struct api_call;
struct http_request;
struct http_response;
struct sim;

struct sim_oauth_app {
    const char *client_id;     /* borrowed from the environment */
    const char *client_secret; /* borrowed from the environment */
};

void oauth_init(const struct sim_oauth_app *app);
const struct sim_oauth_app *oauth_app(void);
/* Forgets every code not yet exchanged. */
void oauth_reset(void);
void oauth_authorize(struct sim *sim, const struct http_request *req, struct http_response *resp);
/* The oauth.v2.access method (needs no token). */
void method_oauth_v2_access(struct api_call *c);

#endif
