/* The sidecar from C: for a body "STORE KEY", reads the secret KEY of the secret store STORE,
 * saves "from c" as "o-1" of the state store "orders" and reads it back; replies with what
 * came back, or the first error and why. */
#include <fwasm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(fwasm_response *res, const char *what, int64_t status) {
    char why[256] = {0};
    fwasm_last_error(why, sizeof why);
    char reply[512];
    snprintf(reply, sizeof reply, "%s failed (%lld): %s", what, (long long)status, why);
    fwasm_response_set_body(res, reply, strlen(reply));
}

FWASM_HANDLER(req, res) {
    char store[64] = {0}, key[64] = {0};
    snprintf(store, sizeof store, "%.*s", (int)req->body_len, (const char *)req->body);
    char *space = strchr(store, ' ');
    if (!space) {
        fwasm_response_set_status(res, 400);
        return;
    }
    *space = 0;
    snprintf(key, sizeof key, "%s", space + 1);

    uint8_t *secret = NULL, *state = NULL;
    int64_t n = fwasm_sidecar_get_secret(store, key, &secret);
    if (n < 0) {
        fail(res, "get_secret", n);
        return;
    }
    int32_t saved = fwasm_sidecar_save_state("orders", "o-1", "from c", 6);
    if (saved < 0) {
        fail(res, "save_state", saved);
        return;
    }
    n = fwasm_sidecar_get_state("orders", "o-1", &state);
    if (n < 0) {
        fail(res, "get_state", n);
        return;
    }
    char reply[512];
    snprintf(reply, sizeof reply, "secret %s state %s", (char *)secret, (char *)state);
    fwasm_response_set_body(res, reply, strlen(reply));
    free(secret);
    free(state);
}
