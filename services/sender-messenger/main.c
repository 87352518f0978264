/* sender-messenger: delivers campaign messages to Messenger and answers live
 * page queries. Everything but the Messenger specifics lives in the worker
 * framework (common/worker); the Messenger specifics live in messenger_*.c. */
#include "bcrm/worker.h"
#include "messenger.h"

int main(void)
{
    return worker_main(&messenger_platform);
}
