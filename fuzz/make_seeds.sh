#!/usr/bin/env bash
# Writes seed inputs for the fuzz targets into corpus/<target>/ (git-ignored), built from
# certificates made here with openssl (keys live in a temp dir and are deleted).
# Needs: openssl, python3. Usage: fuzz/make_seeds.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 3650 -subj "/CN=Fuzz Root/O=certgate"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr \
  -subj "/CN=Fuzz Intermediate/O=certgate"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > ca.ext
ossl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out int.pem -days 3650 -extfile ca.ext
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr \
  -utf8 -multivalue-rdn \
  -subj "/C=IN/ST=KA/L=BLR/O=Boomi/OU=Boomi/CN=localhost+UID=j1/emailAddress=abc@test.com"
printf 'extendedKeyUsage=clientAuth\nsubjectAltName=DNS:client.example,IP:127.0.0.1\n' > leaf.ext
ossl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -out leaf.pem -days 365 -extfile leaf.ext
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout odd.key -out odd.pem -utf8 \
  -subj $'/CN=\\ lead,\\+plus\\\\back\\ /O=Caf\xc3\xa9 \xe2\x82\xac/2.5.4.17=560001/serialNumber=42/DC=example/DC=com'
for c in ca int leaf odd; do ossl x509 -in "$c.pem" -outform DER -out "$c.der"; done

python3 - "$here" <<'PY'
import base64, os, sys, urllib.parse
here = sys.argv[1]
def rd(p, mode="r"):
    with open(p, mode) as f:
        return f.read()
leaf_pem, int_pem = rd("leaf.pem"), rd("int.pem")
leaf_der, int_der, ca_der, odd_der = (rd(n + ".der", "rb") for n in ("leaf", "int", "ca", "odd"))
b64 = lambda d: base64.b64encode(d).decode()
quote = lambda s, safe="": urllib.parse.quote(s, safe=safe)
chain = leaf_pem + int_pem
header = {
    "pem": leaf_pem,
    "pem_chain": chain,
    "pem_spaces": chain.replace("\n", " "),
    "pem_tabs": leaf_pem.strip().replace("\n", "\n\t"),
    "nginx_escaped": quote(chain),
    "alb": quote(leaf_pem, safe="+=/"),
    "b64": b64(leaf_der),
    "b64_nopad": b64(leaf_der).rstrip("="),
    "b64_url": base64.urlsafe_b64encode(leaf_der).decode(),
    "traefik_v3": b64(leaf_der) + "," + b64(int_der),
    "traefik_v2": quote(b64(leaf_der) + "," + b64(int_der)),
    "rfc9440": ":" + b64(leaf_der) + ":",
    "rfc9440_chain": ":" + b64(leaf_der) + ":, :" + b64(int_der) + ":",
    "xfcc": 'By=spiffe://gw;Hash=ab12;Subject="CN=a\\, \\"b\\";O=c";Cert="%s";Chain="%s";URI=spiffe://c;DNS=c.example,By=x;Cert=%s'
        % (quote(leaf_pem), quote(chain), quote(int_pem)),
}
dn_strings = [
    "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com",
    "CN=John+UID=j1,OU=People,DC=example,DC=com",
    "CN=\\ lead\\,\\+plus\\\\back\\ ,O=Caf\u00e9 \u20ac,2.5.4.17=#0c06353630303031",
    "CN=\\#hash,O=a\\00b,SERIALNUMBER=42,T=Dr,GN=Jo,SN=Doe,STREET=Main St",
]
patterns = [
    "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,Email=abc@test.com",
    "Email=abc@test.com, OU=boomi, O=Boomi, L=BLR, ST=KA, C=IND, CN=localhost",
    "CN=local?ost,C=*,ST=*,L=*,O=Boomi,OU=*,E=*@test.com",
    "CN=localhost,**", "CN=*,**,OU=Boomi,**", "**,O=Boomi,**", "**,O=Other,**", "CN=*",
    "CN=John+UID=j1,*,**", "2.5.4.3=a\\*b\\?c\\2C,S=x,USERID=u,EMAILADDRESS=e",
    "CN=a,,O=b",
]
def write(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
for name, value in header.items():
    write("header_decode", name, value)
for name, der in (("leaf", leaf_der), ("int", int_der), ("ca", ca_der), ("odd", odd_der)):
    write("dn_render", name + ".der", der)
for i, s in enumerate(dn_strings):
    write("dn_render", "dn%d.txt" % i, s)
for i, s in enumerate(patterns):
    write("dn_pattern", "p%02d.txt" % i, s)
print("seeds written under", os.path.join(here, "corpus"))
PY
