#!/usr/bin/env bash
# Generates the benchmark PKI with the openssl CLI.
#
#   bench/lib/pki.sh OUT_DIR
#
# For each of ecdsa (P-256) and rsa (RSA-2048), OUT_DIR/<alg>/ gets:
#   server-root.pem            root CA that signs the server chain (the client trusts it)
#   server-int.pem             intermediate CA
#   server-chain.pem, server.key   leaf (CN=localhost, SAN localhost + 127.0.0.1) + intermediate
#   server-combined.pem        chain + key in one file (haproxy's `crt`)
#   client-ca.pem              the client CA the proxies trust
#   client.pem, client.key     the client certificate (CN=bench-client,OU=Bench,O=certgate,C=US)
#   client.urlenc              client.pem URL-encoded (a header value like nginx's $ssl_client_escaped_cert)
# and OUT_DIR/ca-1000.pem: 999 unrelated ECDSA CAs followed by ecdsa/client-ca.pem (1000 CAs).
# The client certificates name an OCSP responder in their AIA ($BENCH_OCSP_URL, default
# http://127.0.0.1:28005/); <alg>/client.crl is the client CA's (empty) CRL and
# <alg>/ocsp-index.txt the responder's index (`openssl ocsp -index`), for the revocation scenario.
# Certificates are valid for 30 days; an existing, still valid OUT_DIR of this layout is kept.
set -euo pipefail

out=${1:?usage: pki.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

layout="2 ${BENCH_OCSP_URL:-http://127.0.0.1:28005/}"
if [[ -f "$out/complete" ]] && [[ "$(cat "$out/complete")" == "$layout" ]] \
    && openssl x509 -checkend 86400 -noout -in "$out/ecdsa/client.pem" >/dev/null 2>&1 \
    && openssl x509 -checkend 86400 -noout -in "$out/rsa/server-chain.pem" >/dev/null 2>&1; then
    echo "pki: reusing $out"
    exit 0
fi
rm -f "$out/complete"

cnf="$out/openssl.cnf"
cat >"$cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[int_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = OCSP;URI:@@OCSP_URL@@
[ca]
default_ca = bench_ca
[bench_ca]
database = @@CA_DIR@@/index.txt
crlnumber = @@CA_DIR@@/crlnumber
default_md = sha256
default_crl_days = 30
CNF
sed -i "s|@@OCSP_URL@@|${BENCH_OCSP_URL:-http://127.0.0.1:28005/}|" "$cnf"

keygen() { # alg file
    if [[ $1 == ecdsa ]]; then
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" 2>/dev/null
    else
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" 2>/dev/null
    fi
}
selfsigned() { # key subject out
    openssl req -x509 -new -key "$1" -subj "$2" -days 30 -config "$cnf" -extensions ca_ext -out "$3"
}
issue() { # key subject ca ca_key ext out
    openssl req -new -key "$1" -subj "$2" -config "$cnf" -out "$6.csr"
    openssl x509 -req -in "$6.csr" -CA "$3" -CAkey "$4" -set_serial "0x$(openssl rand -hex 12)" \
        -days 30 -extfile "$cnf" -extensions "$5" -out "$6" 2>/dev/null
    rm -f "$6.csr"
}

for alg in ecdsa rsa; do
    d="$out/$alg"
    mkdir -p "$d"
    keygen $alg "$d/server-root.key"
    selfsigned "$d/server-root.key" "/O=certgate-bench/CN=Bench Server Root CA ($alg)" "$d/server-root.pem"
    keygen $alg "$d/server-int.key"
    issue "$d/server-int.key" "/O=certgate-bench/CN=Bench Server Intermediate CA ($alg)" \
        "$d/server-root.pem" "$d/server-root.key" int_ext "$d/server-int.pem"
    keygen $alg "$d/server.key"
    issue "$d/server.key" "/O=certgate-bench/CN=localhost" \
        "$d/server-int.pem" "$d/server-int.key" server_ext "$d/server.pem"
    cat "$d/server.pem" "$d/server-int.pem" >"$d/server-chain.pem"
    cat "$d/server-chain.pem" "$d/server.key" >"$d/server-combined.pem"
    keygen $alg "$d/client-ca.key"
    selfsigned "$d/client-ca.key" "/O=certgate-bench/CN=Bench Client CA ($alg)" "$d/client-ca.pem"
    keygen $alg "$d/client.key"
    issue "$d/client.key" "/C=US/O=certgate/OU=Bench/CN=bench-client" \
        "$d/client-ca.pem" "$d/client-ca.key" client_ext "$d/client.pem"
    # The client CA's CRL (empty) and the OCSP responder's index (the client certificate, valid).
    cadir="$d/ca-db"
    mkdir -p "$cadir"
    : >"$cadir/index.txt"
    echo 01 >"$cadir/crlnumber"
    sed "s|@@CA_DIR@@|$cadir|g" "$cnf" >"$cadir/ca.cnf"
    openssl ca -gencrl -config "$cadir/ca.cnf" -keyfile "$d/client-ca.key" -cert "$d/client-ca.pem" \
        -out "$d/client.crl" 2>/dev/null
    expiry=$(date -u -d "$(openssl x509 -enddate -noout -in "$d/client.pem" | cut -d= -f2)" +%y%m%d%H%M%SZ)
    serial=$(openssl x509 -serial -noout -in "$d/client.pem" | cut -d= -f2)
    subject=$(openssl x509 -subject -noout -nameopt compat -in "$d/client.pem" | sed 's/^subject=//')
    printf 'V\t%s\t\t%s\tunknown\t%s\n' "$expiry" "$serial" "$subject" >"$d/ocsp-index.txt"
    python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.quote(open(sys.argv[1]).read(), safe=""))' \
        "$d/client.pem" >"$d/client.urlenc"
    chmod 600 "$d"/*.key "$d/server-combined.pem"
done

# 999 decoy CAs (each with its own key), then the real client CA last.
decoys="$out/decoys"
mkdir -p "$decoys"
for i in $(seq -w 1 999); do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
        -subj "/O=certgate-bench/OU=Decoys/CN=Bench Decoy CA $i" -days 30 \
        -config "$cnf" -extensions ca_ext -out "$decoys/ca-$i.pem" 2>/dev/null
done
cat "$decoys"/ca-*.pem "$out/ecdsa/client-ca.pem" >"$out/ca-1000.pem"
echo "$layout" >"$out/complete"
echo "pki: generated in $out"
