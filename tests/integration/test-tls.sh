#!/usr/bin/env bash
# NBD over TLS with the clients people use. certtool makes a CA, a server certificate (CN and
# SAN localhost, SAN 127.0.0.1), a client certificate, and an unrelated second CA with its own
# client; psktool makes the PSK keys. The daemon is restarted once per configuration:
#   tls=on       plaintext and STARTTLS both work; a per-export tls=require export refuses
#                plaintext; data written over TLS by qemu-io reads back over plaintext too
#   tls=require  plaintext nbdinfo (GO, LIST, old-style EXPORT_NAME) is refused; nbds:// works
#                with nbdinfo and qemu-img (tls-creds-x509); qemu-io pattern round trip
#   verify-peer  a client certificate from our CA is accepted; one from the other CA, or none,
#                is refused (and logged)
#   PSK          nbdinfo and qemu-img with the right key work; an unknown user or a wrong key is
#                refused
#   tls=off      STARTTLS is refused with a policy error
# Every refusal must leave the daemon serving: each section ends with a working client.
source "$(dirname "$0")/lib.sh"

PKI=$DIR/pki
mkdir -p "$PKI"
ct() { certtool --no-text "$@" 2>/dev/null; }

# ---- credentials ----------------------------------------------------------------------------
cat >"$PKI/ca.info" <<EOF
cn = LCPFS test CA
ca
cert_signing_key
expiration_days = 30
EOF
cat >"$PKI/other-ca.info" <<EOF
cn = Unrelated test CA
ca
cert_signing_key
expiration_days = 30
EOF
cat >"$PKI/server.info" <<EOF
organization = LCPFS test
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 30
EOF
cat >"$PKI/client.info" <<EOF
organization = LCPFS test
cn = client
tls_www_client
encryption_key
signing_key
expiration_days = 30
EOF
for k in ca other-ca server client other-client; do
    ct --generate-privkey --key-type=ecdsa --outfile "$PKI/$k-key.pem"
done
ct --generate-self-signed --load-privkey "$PKI/ca-key.pem" --template "$PKI/ca.info" \
    --outfile "$PKI/ca-cert.pem"
ct --generate-self-signed --load-privkey "$PKI/other-ca-key.pem" --template "$PKI/other-ca.info" \
    --outfile "$PKI/other-ca-cert.pem"
sign() { # sign KEY TEMPLATE CA OUT
    ct --generate-certificate --load-privkey "$PKI/$1-key.pem" --template "$PKI/$2.info" \
        --load-ca-certificate "$PKI/$3-cert.pem" --load-ca-privkey "$PKI/$3-key.pem" \
        --outfile "$PKI/$4"
}
sign server server ca server-cert.pem
sign client client ca client-cert.pem
sign other-client client other-ca other-client-cert.pem
check "server certificate verifies against our CA" \
    bash -c "certtool --verify --load-ca-certificate $PKI/ca-cert.pem --infile $PKI/server-cert.pem >/dev/null 2>&1"
check "the other client certificate does not verify against our CA" \
    bash -c "! certtool --verify --load-ca-certificate $PKI/ca-cert.pem --infile $PKI/other-client-cert.pem >/dev/null 2>&1"

# Client credential directories in the layout libnbd and qemu expect (ca-cert.pem,
# client-cert.pem, client-key.pem). Every one trusts our CA for the server's certificate.
mkdir -p "$DIR/cli-ok" "$DIR/cli-other" "$DIR/cli-nocert"
for d in cli-ok cli-other cli-nocert; do cp "$PKI/ca-cert.pem" "$DIR/$d/ca-cert.pem"; done
cp "$PKI/client-cert.pem" "$DIR/cli-ok/client-cert.pem"
cp "$PKI/client-key.pem" "$DIR/cli-ok/client-key.pem"
cp "$PKI/other-client-cert.pem" "$DIR/cli-other/client-cert.pem"
cp "$PKI/other-client-key.pem" "$DIR/cli-other/client-key.pem"
# qemu refuses to even connect with a client certificate its own ca-cert.pem does not vouch for,
# so its copy trusts both CAs: then only the server can refuse the certificate.
cp -r "$DIR/cli-other" "$DIR/cli-other-qemu"
cat "$PKI/ca-cert.pem" "$PKI/other-ca-cert.pem" >"$DIR/cli-other-qemu/ca-cert.pem"

# PSK keys: the server's file holds alice and bob; the clients hold alice's, and a wrong one.
mkdir -p "$DIR/psk-ok" "$DIR/psk-bad" "$DIR/psk-mallory"
psktool -u alice -p "$PKI/server.psk" >/dev/null
psktool -u bob -p "$PKI/server.psk" >/dev/null
grep '^alice:' "$PKI/server.psk" >"$DIR/psk-ok/keys.psk"
psktool -u alice -p "$DIR/psk-bad/keys.psk" >/dev/null # same user, another random key
psktool -u mallory -p "$DIR/psk-mallory/keys.psk" >/dev/null
check "psktool wrote two server keys" test "$(wc -l <"$PKI/server.psk")" -eq 2
check "the wrong key differs" bash -c "! cmp -s $DIR/psk-ok/keys.psk $DIR/psk-bad/keys.psk"

X509=(-o nbd.tls-cert="$PKI/server-cert.pem" -o nbd.tls-key="$PKI/server-key.pem")
TLSURI() { # TLSURI EXPORT CERTDIR -> nbds://127.0.0.1:PORT/EXPORT?tls-certificates=CERTDIR
    echo "nbds://127.0.0.1:$PORT/$1?tls-certificates=$2"
}
# qemu-img/qemu-io over TLS: --object $(qx509 DIR) or $(qpsk DIR), --image-opts $(qopts).
qopts() { echo "driver=nbd,host=127.0.0.1,port=$PORT,export=vol0,tls-creds=tls0"; }
qx509() { echo "tls-creds-x509,id=tls0,endpoint=client,dir=$1"; }
qpsk() { echo "tls-creds-psk,id=tls0,endpoint=client,dir=$1,username=alice"; }
# lib.sh's start_daemon appends to one log and waits for "ready:", which a previous run already
# wrote: restart() also waits for this run's own line, and remembers where its log starts.
LOG0=0
restart() {
    local n
    touch "$DIR/lcpfsd.log"
    n=$(grep -c 'ready: connect' "$DIR/lcpfsd.log" || true)
    LOG0=$(wc -l <"$DIR/lcpfsd.log")
    start_daemon "$@"
    for _ in $(seq 1 200); do
        [ "$(grep -c 'ready: connect' "$DIR/lcpfsd.log")" -gt "$n" ] && return 0
        kill -0 "$PID" 2>/dev/null || fail "lcpfsd exited at start"
        sleep 0.05
    done
    fail "lcpfsd did not become ready"
}
logged() { # logged PATTERN: this run of the daemon logged it (waits up to 2 s)
    for _ in $(seq 1 40); do
        tail -n +"$((LOG0 + 1))" "$DIR/lcpfsd.log" | grep -F "$1" >/dev/null && return 0
        sleep 0.05
    done
    return 1
}
logged_more() { # logged_more PATTERN N: the log holds more than N lines with it (waits up to 2 s)
    for _ in $(seq 1 40); do
        [ "$(grep -cF "$1" "$DIR/lcpfsd.log")" -gt "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
# A plaintext client that insists on old-style NBD_OPT_EXPORT_NAME (no fixed newstyle).
export_name_client() {
    nbdsh -c "h.set_handshake_flags(0)" -c "h.connect_uri('$(URI vol0)')" \
        -c "print(h.get_size())" 2>/dev/null
}

# ---- tls=on: STARTTLS offered, plaintext still allowed --------------------------------------
restart -o nbd.tls=on "${X509[@]}" -o nbd-export.tls-only.volume=tank/vol0 \
    -o nbd-export.tls-only.tls=require
check "on: plaintext nbdinfo works" bash -c "nbdinfo $(URI vol0) | grep -q 'export-size: 268435456'"
check "on: TLS nbdinfo works" bash -c "nbdinfo '$(TLSURI vol0 "$DIR/cli-ok")' | grep -q 'export-size: 268435456'"
check "on: the session was logged as TLS" logged "serving 'tank/vol0' (read-write, structured, TLS)"
check "on: plaintext list works" bash -c "nbdinfo --list $(URI '') 2>/dev/null | grep -q 'export=\"vol0\"'"
check "on: export with tls=require refuses plaintext" bash -c "! nbdinfo $(URI tls-only) >/dev/null 2>&1"
check "on: export with tls=require is served over TLS" \
    bash -c "nbdinfo '$(TLSURI tls-only "$DIR/cli-ok")' | grep -q 'export-size: 268435456'"
check "on: qemu-io writes a pattern over TLS" bash -c "qemu-io --object $(qx509 "$DIR/cli-ok") \
    --image-opts '$(qopts)' -c 'write -P 0x5a 0 4M' -c 'write -P 0xa5 1M 4096' -c flush >/dev/null"
check "on: plaintext reads what TLS wrote" bash -c "qemu-io -f raw -r -c 'read -P 0x5a 0 1M' \
    -c 'read -P 0xa5 1M 4096' -c 'read -P 0x5a 1052672 3141632' $(URI vol0) >/dev/null"
stop_daemon

# ---- tls=require: nothing but STARTTLS before TLS -------------------------------------------
restart -o nbd.tls=require "${X509[@]}"
check "require: plaintext nbdinfo is refused" bash -c "! nbdinfo $(URI vol0) >$DIR/err 2>&1"
check "require: the client is told TLS is required" grep -qi 'tls' "$DIR/err"
check "require: plaintext list is refused" bash -c "! nbdinfo --list $(URI '') >/dev/null 2>&1"
check "require: plaintext EXPORT_NAME is refused" bash -c "$(declare -f export_name_client URI); \
    PORT=$PORT; ! export_name_client"
check "require: EXPORT_NAME refusal is logged" logged "plaintext EXPORT_NAME refused"
check "require: nbds:// with nbdinfo" \
    bash -c "nbdinfo '$(TLSURI vol0 "$DIR/cli-ok")' | grep -q 'export-size: 268435456'"
check "require: nbds:// list" bash -c "nbdinfo --list '$(TLSURI '' "$DIR/cli-ok")' | grep -q 'export=\"vol0\"'"
check "require: a client without our CA rejects the server" \
    bash -c "mkdir -p $DIR/cli-wrongca && cp $PKI/other-ca-cert.pem $DIR/cli-wrongca/ca-cert.pem && \
    ! nbdinfo '$(TLSURI vol0 "$DIR/cli-wrongca")' >/dev/null 2>&1"
check "require: qemu-img info over X.509" bash -c "qemu-img info --object $(qx509 "$DIR/cli-ok") \
    --image-opts '$(qopts)' | grep -q 'virtual size: 256 MiB'"
check "require: qemu-img without TLS is refused" bash -c "! qemu-img info -f raw $(URI vol0) >/dev/null 2>&1"
check "require: data written earlier over TLS is there" bash -c "qemu-io --object $(qx509 "$DIR/cli-ok") \
    --image-opts '$(qopts)' -r -c 'read -P 0x5a 0 1M' -c 'read -P 0xa5 1M 4096' >/dev/null"
# A larger round trip through the TLS stream: 24 MiB of random data in, read back, compared.
head -c 24M /dev/urandom >"$DIR/rand.raw"
check "require: qemu-img convert into the volume over TLS" bash -c "qemu-img convert -n \
    --object $(qx509 "$DIR/cli-ok") -f raw $DIR/rand.raw --target-image-opts '$(qopts)'"
check "require: the same bytes come back over TLS" bash -c "nbdcopy \
    '$(TLSURI vol0 "$DIR/cli-ok")' - | head -c 24M | cmp - $DIR/rand.raw"
check "require: qemu-io pattern over TLS" bash -c "qemu-io --object $(qx509 "$DIR/cli-ok") \
    --image-opts '$(qopts)' -c 'write -P 0x3c 32M 8M' -c 'read -P 0x3c 32M 8M' >/dev/null"
stop_daemon

# ---- verify-peer: client certificates signed by tls-ca only ---------------------------------
restart -o nbd.tls=require "${X509[@]}" -o nbd.tls-ca="$PKI/ca-cert.pem" \
    -o nbd.tls-verify-peer=on
check "verify-peer: client certificate from our CA is accepted" \
    bash -c "nbdinfo '$(TLSURI vol0 "$DIR/cli-ok")' | grep -q 'export-size: 268435456'"
check "verify-peer: client certificate from another CA is refused" \
    bash -c "! nbdinfo '$(TLSURI vol0 "$DIR/cli-other")' >/dev/null 2>&1"
check "verify-peer: the bad certificate was logged" logged "certificate verify failed"
check "verify-peer: no client certificate is refused" \
    bash -c "! nbdinfo '$(TLSURI vol0 "$DIR/cli-nocert")' >/dev/null 2>&1"
check "verify-peer: the missing certificate was logged" logged "peer did not return a certificate"
check "verify-peer: qemu-img with our client certificate" bash -c "qemu-img info \
    --object $(qx509 "$DIR/cli-ok") --image-opts '$(qopts)' | grep -q 'virtual size: 256 MiB'"
n=$(grep -c 'certificate verify failed' "$DIR/lcpfsd.log")
check "verify-peer: qemu-img with the other CA's certificate is refused" bash -c "! qemu-img info \
    --object $(qx509 "$DIR/cli-other-qemu") --image-opts '$(qopts)' >/dev/null 2>&1"
check "verify-peer: ... by the server, which logged it" logged_more "certificate verify failed" "$n"
check "verify-peer: still serving after the refusals" bash -c "qemu-io --object $(qx509 "$DIR/cli-ok") \
    --image-opts '$(qopts)' -r -c 'read -P 0x3c 32M 8M' >/dev/null"
stop_daemon

# ---- PSK ------------------------------------------------------------------------------------
restart -o nbd.tls=require -o nbd.tls-psk-file="$PKI/server.psk"
PSKURI() { echo "nbds://$1@127.0.0.1:$PORT/vol0?tls-psk-file=$2"; }
check "psk: nbdinfo with alice's key" \
    bash -c "nbdinfo '$(PSKURI alice "$DIR/psk-ok/keys.psk")' | grep -q 'export-size: 268435456'"
check "psk: wrong key is refused" bash -c "! nbdinfo '$(PSKURI alice "$DIR/psk-bad/keys.psk")' >/dev/null 2>&1"
check "psk: unknown user is refused" \
    bash -c "! nbdinfo '$(PSKURI mallory "$DIR/psk-mallory/keys.psk")' >/dev/null 2>&1"
check "psk: the unknown identity was logged" logged "TLS-PSK identity 'mallory' is unknown"
check "psk: plaintext is refused" bash -c "! nbdinfo $(URI vol0) >/dev/null 2>&1"
check "psk: qemu-img info with tls-creds-psk" bash -c "qemu-img info --object $(qpsk "$DIR/psk-ok") \
    --image-opts '$(qopts)' | grep -q 'virtual size: 256 MiB'"
check "psk: qemu-img with the wrong key is refused" bash -c "! qemu-img info \
    --object $(qpsk "$DIR/psk-bad") --image-opts '$(qopts)' >/dev/null 2>&1"
check "psk: qemu-io pattern round trip" bash -c "qemu-io --object $(qpsk "$DIR/psk-ok") \
    --image-opts '$(qopts)' -c 'write -P 0x71 64M 2M' -c 'read -P 0x71 64M 2M' \
    -c 'read -P 0x3c 32M 8M' >/dev/null"
stop_daemon

# ---- tls=off: STARTTLS gets a policy error, plaintext works ---------------------------------
restart
check "off: nbds:// is refused" bash -c "! nbdinfo '$(TLSURI vol0 "$DIR/cli-ok")' >/dev/null 2>&1"
check "off: plaintext reads the data written over X.509 and PSK" bash -c "qemu-io -f raw -r \
    -c 'read -P 0x3c 32M 8M' -c 'read -P 0x71 64M 2M' $(URI vol0) >/dev/null"
check "off: the random bytes copied in over TLS survived the restarts" \
    bash -c "nbdcopy $(URI vol0) - | head -c 24M | cmp - $DIR/rand.raw"
stop_daemon
check "no sanitizer report in the daemon log" bash -c "! grep -q 'Sanitizer' $DIR/lcpfsd.log"
finish
