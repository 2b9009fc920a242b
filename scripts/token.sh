#!/usr/bin/env bash
# Mints OAuth 2.0 bearer tokens (JWS compact) for calling order-api by hand:
# any customer, scope and lifetime, and every kind of broken token the API must
# refuse (wrong alg, HS256 with a public key as secret, none, duplicate keys).
# Keys live in .local/auth/ (git-ignored); --init creates them once. Only bash,
# openssl and coreutils: no jq, no Python. The token goes to stdout, nothing
# else does, and no key material is ever printed.
#
# Usage: scripts/token.sh --help
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

usage() {
  cat <<'EOF'
usage: scripts/token.sh [options]            print a signed access token on stdout
       scripts/token.sh --init                create the local signing key and JWKS
       scripts/token.sh --add-key FILE --kid K   add FILE's public key to the JWKS

  --init              create .local/auth/signing-key.pem (RSA 2048, kid local-1, mode 600)
                      and .local/auth/jwks.json (its public JWK), each only when missing
  --customer ID       the caller: sets "sub" and "customer" (default c-123)
  --scope "S ..."     space-separated scopes (default "orders/read orders/write")
  --admin             add orders/admin
  --ttl S             lifetime in seconds (default 3600; negative makes an expired token)
  --iss URL           issuer (default https://order-service.local)
  --aud A[,B]         audience, a list becomes an array (default order-api)
  --kid K             key id in the header (default local-1; "" leaves it out)
  --key FILE          signing key, PEM (default .local/auth/signing-key.pem)
  --alg ALG           RS256 (default for RSA keys), ES256 (default for EC P-256 keys),
                      HS256 (signed with --hmac-secret-file) or none (unsigned)
  --hmac-secret-file F  the HS256 secret, e.g. .local/auth/jwks.json to try alg confusion
  --claims JSON       members merged into the payload, replacing defaults of the same name,
                      e.g. '{"token_use":"id"}' or '{"nbf":4102444800}'
  --raw-header JSON   the header exactly as given (e.g. with a duplicate "alg")
  --raw-payload JSON  the payload exactly as given (e.g. with a duplicate "sub")
  --add-key FILE      add the public key of FILE (RSA >= 2048 or EC P-256 PEM, private or
                      public) to .local/auth/jwks.json under --kid, for trying rotation
  --dir DIR           where the key and JWKS live (default $ORDER_LOCAL_DIR/auth, .local/auth)
  -h, --help          this text

examples:
  TOKEN=$(scripts/token.sh --customer c-123)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/orders
  scripts/token.sh --ttl -120                        # expired: 401 "expired"
  scripts/token.sh --alg none                        # 401 "algorithm not allowed"
  scripts/token.sh --alg HS256 --hmac-secret-file .local/auth/jwks.json
  scripts/token.sh --claims '{"token_use":"id"}'     # 401 "not an access token"
  scripts/token.sh --scope orders/read               # POST /orders answers 403
EOF
}

die() {
  echo "token: $*" >&2
  exit 2
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
hex_of() { od -An -v -tx1 | tr -d ' \n'; }
# Writes the bytes a hex string stands for (printf is a builtin: nothing on a command line).
unhex() {
  local hex=$1 esc="" i
  for ((i = 0; i < ${#hex}; i += 2)); do esc+="\\x${hex:i:2}"; done
  printf '%b' "$esc"
}

# A JSON string literal; control characters are refused rather than escaped.
json_str() {
  local s=$1
  [[ $s == *[[:cntrl:]]* ]] && die "control characters are not allowed in \"$s\""
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Splits a JSON object into its top-level members ("key":value, as written) in
# the array MEMBERS and their decoded-enough keys in KEYS. Strings and nesting
# are tracked so commas inside values do not split.
split_object() {
  local s=$1
  local n=${#s} i=0 depth=0 in_str=0 esc=0 c start=-1 member
  MEMBERS=()
  KEYS=()
  while ((i < n)) && [[ ${s:i:1} =~ [[:space:]] ]]; do ((i++)) || true; done
  [[ ${s:i:1} == "{" ]] || die "--claims must be a JSON object"
  ((i++)) || true
  start=$i
  for (( ; i < n; i++)); do
    c=${s:i:1}
    if ((in_str)); then
      if ((esc)); then esc=0; elif [[ $c == "\\" ]]; then esc=1; elif [[ $c == '"' ]]; then in_str=0; fi
      continue
    fi
    case $c in
      '"') in_str=1 ;;
      '{' | '[') ((depth++)) || true ;;
      ']') ((depth--)) || true ;;
      '}' | ',')
        if ((depth == 0)); then
          member=${s:start:i-start}
          member=${member#"${member%%[![:space:]]*}"}
          member=${member%"${member##*[![:space:]]}"}
          if [[ -n $member ]]; then
            [[ $member =~ ^\"(([^\"\\]|\\.)*)\"[[:space:]]*: ]] || die "--claims: cannot read member: $member"
            MEMBERS+=("$member")
            KEYS+=("${BASH_REMATCH[1]}")
          fi
          start=$((i + 1))
          if [[ $c == "}" ]]; then
            [[ -z ${s:i+1} || ${s:i+1} =~ ^[[:space:]]*$ ]] || die "--claims: text after the object"
            return 0
          fi
        elif [[ $c == "}" ]]; then
          ((depth--)) || true
        fi
        ;;
    esac
  done
  die "--claims: the object is not closed"
}

# "RSA" or "EC" for a PEM key file (private or public); refuses anything else.
key_type() {
  local text
  text=$(openssl pkey -in "$1" -pubout 2>/dev/null | openssl pkey -pubin -noout -text 2>/dev/null) ||
    die "$1 is not a PEM key openssl can read"
  if [[ $text == *Modulus:* ]]; then
    echo RSA
  elif [[ $text == *"NIST CURVE: P-256"* ]]; then
    echo EC
  else
    die "$1: only RSA and EC P-256 keys are supported"
  fi
}

# The public JWK of a PEM key file.
public_jwk() {
  local file=$1 kid=$2 pub mod exp x y
  pub=$(openssl pkey -in "$file" -pubout 2>/dev/null) || die "cannot read $file"
  case $(key_type "$file") in
    RSA)
      mod=$(openssl rsa -pubin -noout -modulus <<<"$pub" 2>/dev/null) || die "cannot read $file"
      mod=${mod#Modulus=}
      ((${#mod} * 4 >= 2048)) || die "$file: RSA keys must have at least 2048 bits"
      exp=$(openssl rsa -pubin -noout -text <<<"$pub" | sed -nE 's/^Exponent: [0-9]+ \(0x([0-9a-fA-F]+)\)$/\1/p')
      [[ -n $exp ]] || die "$file: cannot read the RSA exponent"
      ((${#exp} % 2 == 0)) || exp="0$exp"
      printf '{"kty":"RSA","kid":%s,"use":"sig","alg":"RS256","n":"%s","e":"%s"}' \
        "$(json_str "$kid")" "$(unhex "$mod" | b64url)" "$(unhex "$exp" | b64url)"
      ;;
    EC)
      # The SubjectPublicKeyInfo of a P-256 key ends with the point 04 || x || y.
      x=$(openssl pkey -pubin -outform DER <<<"$pub" | tail -c 64 | hex_of)
      y=${x:64}
      x=${x:0:64}
      printf '{"kty":"EC","kid":%s,"use":"sig","alg":"ES256","crv":"P-256","x":"%s","y":"%s"}' \
        "$(json_str "$kid")" "$(unhex "$x" | b64url)" "$(unhex "$y" | b64url)"
      ;;
  esac
}

# Writes a JWKS file atomically, one key per line so --add-key can append.
write_jwks() {
  local file=$1 tmp
  shift
  tmp="$file.tmp.$$"
  {
    echo '{"keys":['
    local i
    for ((i = 1; i <= $#; i++)); do
      if ((i < $#)); then echo "${!i},"; else echo "${!i}"; fi
    done
    echo ']}'
  } >"$tmp"
  mv "$tmp" "$file"
}

init() {
  local dir=$1 key="$1/signing-key.pem" jwks="$1/jwks.json"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [[ -e $key ]]; then
    echo "token: $key already exists; kept" >&2
  else
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key.tmp" 2>/dev/null)
    mv "$key.tmp" "$key"
    chmod 600 "$key"
    echo "token: created $key (RSA 2048, kid local-1)" >&2
  fi
  if [[ -e $jwks ]]; then
    echo "token: $jwks already exists; kept" >&2
  else
    write_jwks "$jwks" "$(public_jwk "$key" local-1)"
    echo "token: created $jwks" >&2
  fi
}

add_key() {
  local file=$1 kid=$2 jwks="$3/jwks.json" lines=() line
  [[ -n $kid ]] || die "--add-key needs --kid"
  [[ -r $file ]] || die "cannot read $file"
  if [[ -e $jwks ]]; then
    mapfile -t lines <"$jwks"
    [[ ${lines[0]} == '{"keys":[' && ${lines[-1]} == ']}' ]] ||
      die "$jwks is not in the layout this script writes; edit it by hand"
    lines=("${lines[@]:1:${#lines[@]}-2}")
    for line in "${lines[@]}"; do
      [[ $line == *"\"kid\":$(json_str "$kid")"* ]] && die "$jwks already holds kid $kid"
    done
    lines=("${lines[@]%,}")
  else
    mkdir -p "$3"
  fi
  lines+=("$(public_jwk "$file" "$kid")")
  write_jwks "$jwks" "${lines[@]}"
  echo "token: added kid $kid to $jwks (${#lines[@]} keys)" >&2
}

# HMAC-SHA256 (RFC 2104) of $1 keyed with the bytes of file $2, spelled out so
# the secret never appears on a command line (openssl's -macopt would put it in
# the process list).
hmac_sha256() {
  local input=$1 keyhex ipad="" opad="" i b inner
  keyhex=$(hex_of <"$2")
  ((${#keyhex} > 128)) && keyhex=$(unhex "$keyhex" | openssl dgst -sha256 -binary | hex_of)
  while ((${#keyhex} < 128)); do keyhex+="00"; done
  for ((i = 0; i < 128; i += 2)); do
    b=$((16#${keyhex:i:2}))
    ipad+=$(printf '%02x' $((b ^ 0x36)))
    opad+=$(printf '%02x' $((b ^ 0x5c)))
  done
  inner=$({
    unhex "$ipad"
    printf '%s' "$input"
  } | openssl dgst -sha256 -binary | hex_of)
  {
    unhex "$opad"
    unhex "$inner"
  } | openssl dgst -sha256 -binary | b64url
}

# ECDSA signatures come out of openssl as DER; JWS wants r || s, 32 bytes each.
es256_raw() {
  local der ints=() v
  der=$(printf '%s' "$1" | openssl dgst -sha256 -sign "$2" -binary 2>/dev/null | hex_of) ||
    die "cannot sign with $2"
  mapfile -t ints < <(unhex "$der" | openssl asn1parse -inform DER | sed -nE 's/.*prim: INTEGER +:([0-9A-Fa-f]+)$/\1/p')
  ((${#ints[@]} == 2)) || die "unexpected ECDSA signature from openssl"
  for v in "${ints[@]}"; do
    while ((${#v} < 64)); do v="0$v"; done
    printf '%s' "${v: -64}"
  done
}

dir="${ORDER_LOCAL_DIR:-$ROOT/.local}/auth"
customer=c-123 scope="orders/read orders/write" admin=0 ttl=3600
iss=https://order-service.local aud=order-api kid=local-1 key="" alg="" secret_file=""
claims="" raw_header="" raw_payload="" do_init=0 add_file="" kid_set=0
while (($#)); do
  case $1 in
    -h | --help) usage && exit 0 ;;
    --init) do_init=1 ;;
    --admin) admin=1 ;;
    --customer | --scope | --ttl | --iss | --aud | --kid | --key | --alg | --hmac-secret-file | \
      --claims | --raw-header | --raw-payload | --add-key | --dir)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --customer) customer=$2 ;;
        --scope) scope=$2 ;;
        --ttl) ttl=$2 ;;
        --iss) iss=$2 ;;
        --aud) aud=$2 ;;
        --kid) kid=$2 kid_set=1 ;;
        --key) key=$2 ;;
        --alg) alg=$2 ;;
        --hmac-secret-file) secret_file=$2 ;;
        --claims) claims=$2 ;;
        --raw-header) raw_header=$2 ;;
        --raw-payload) raw_payload=$2 ;;
        --add-key) add_file=$2 ;;
        --dir) dir=$2 ;;
      esac
      shift
      ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

if ((do_init)); then
  init "$dir"
  exit 0
fi
if [[ -n $add_file ]]; then
  ((kid_set)) || die "--add-key needs --kid"
  add_key "$add_file" "$kid" "$dir"
  exit 0
fi

[[ $ttl =~ ^-?[0-9]+$ ]] || die "--ttl must be a whole number of seconds"
key=${key:-$dir/signing-key.pem}
if [[ -z $alg ]]; then
  [[ -r $key ]] || die "no signing key at $key: run scripts/token.sh --init"
  if [[ $(key_type "$key") == EC ]]; then alg=ES256; else alg=RS256; fi
fi
case $alg in
  RS256 | ES256)
    [[ -r $key ]] || die "no signing key at $key: run scripts/token.sh --init"
    want=RSA
    [[ $alg == ES256 ]] && want=EC
    [[ $(key_type "$key") == "$want" ]] || die "--alg $alg needs an $want key; $key is not one"
    ;;
  HS256) [[ -n $secret_file && -r $secret_file ]] || die "--alg HS256 needs a readable --hmac-secret-file" ;;
  none) ;;
  *) die "--alg must be RS256, ES256, HS256 or none" ;;
esac

if [[ -n $raw_header ]]; then
  header=$raw_header
else
  header="{\"alg\":$(json_str "$alg"),\"typ\":\"JWT\""
  [[ -n $kid ]] && header+=",\"kid\":$(json_str "$kid")"
  header+="}"
fi

if [[ -n $raw_payload ]]; then
  payload=$raw_payload
else
  ((admin)) && scope="${scope:+$scope }orders/admin"
  now=$(date +%s)
  if [[ $aud == *,* ]]; then
    IFS=, read -ra auds <<<"$aud"
    aud_json="["
    for a in "${auds[@]}"; do aud_json+="$(json_str "$a"),"; done
    aud_json="${aud_json%,}]"
  else
    aud_json=$(json_str "$aud")
  fi
  DEF_KEYS=(iss aud sub customer scope token_use iat exp jti)
  DEF_VALUES=("$(json_str "$iss")" "$aud_json" "$(json_str "$customer")" "$(json_str "$customer")"
    "$(json_str "$scope")" '"access"' "$now" "$((now + ttl))" "\"$(openssl rand -hex 16)\"")
  MEMBERS=() KEYS=()
  [[ -n $claims ]] && split_object "$claims"
  payload="{"
  for i in "${!DEF_KEYS[@]}"; do
    overridden=0
    for k in "${KEYS[@]}"; do [[ $k == "${DEF_KEYS[i]}" ]] && overridden=1; done
    ((overridden)) || payload+="\"${DEF_KEYS[i]}\":${DEF_VALUES[i]},"
  done
  for m in "${MEMBERS[@]}"; do payload+="$m,"; done
  payload="${payload%,}}"
fi

input="$(printf '%s' "$header" | b64url).$(printf '%s' "$payload" | b64url)"
case $alg in
  RS256) sig=$(printf '%s' "$input" | openssl dgst -sha256 -sign "$key" -binary | b64url) ;;
  ES256) sig=$(unhex "$(es256_raw "$input" "$key")" | b64url) ;;
  HS256) sig=$(hmac_sha256 "$input" "$secret_file") ;;
  none) sig="" ;;
esac
printf '%s.%s\n' "$input" "$sig"
