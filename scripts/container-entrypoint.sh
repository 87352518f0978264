#!/bin/sh
# container-entrypoint.sh: the image's entrypoint (see Dockerfile, docker-compose.yml).
#
#   bcrm-entrypoint keys      makes the identity keys, the vault's master key and the
#                             allowlist in $BCRM_KEYS_DIR (default /keys) unless they
#                             exist; the one-shot key-init service runs this.
#   bcrm-entrypoint PROGRAM   runs PROGRAM; BCRM_VAULT_PUBLIC_KEY, when unset, is read
#                             from $BCRM_KEYS_DIR/vault.pub, which keys wrote.
set -eu
keys_dir=${BCRM_KEYS_DIR:-/keys}

if [ "${1:-}" = keys ]; then
    umask 077
    for role in vault api sender-slack sender-messenger ops; do
        if [ ! -s "$keys_dir/$role.pub" ]; then
            rm -f "$keys_dir/$role.key"
            bcrmctl keygen "$keys_dir/$role.key" > "$keys_dir/$role.pub.tmp"
            mv "$keys_dir/$role.pub.tmp" "$keys_dir/$role.pub"
        fi
    done
    [ -s "$keys_dir/master.key" ] || bcrmctl masterkey "$keys_dir/master.key"
    : > "$keys_dir/allowlist.tmp"
    for role in api sender-slack sender-messenger ops; do
        echo "$role $(cat "$keys_dir/$role.pub")" >> "$keys_dir/allowlist.tmp"
    done
    mv "$keys_dir/allowlist.tmp" "$keys_dir/allowlist"
    echo "keys ready in $keys_dir"
    exit 0
fi

if [ -z "${BCRM_VAULT_PUBLIC_KEY:-}" ] && [ -s "$keys_dir/vault.pub" ]; then
    BCRM_VAULT_PUBLIC_KEY=$(cat "$keys_dir/vault.pub")
    export BCRM_VAULT_PUBLIC_KEY
fi
exec "$@"
