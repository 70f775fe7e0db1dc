# Shared by the C and Go recipes (plugins/client-name-*/build.sh), which
# source it: argument parsing (--out FILE, --help), tool checks that print the
# install command, and fetching a file out of a crate on crates.io (checked
# against its sha256, cached under ~/.cache/tessera). Not meant to be run.

# Prints the calling script's usage: lines 2-4 of its header comment.
usage() {
    sed -n '2,4s/^# \{0,1\}//p' "$0"
}

# Reads --out FILE (into $out) and --help from the script's arguments.
parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --out)
                [ $# -ge 2 ] || { echo "build.sh: --out needs a file name" >&2; exit 2; }
                out="$2"
                shift 2
                ;;
            --out=*)
                out="${1#--out=}"
                shift
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *)
                echo "build.sh: unknown argument: $1" >&2
                usage >&2
                exit 2
                ;;
        esac
    done
}

missing() {
    echo "build.sh: $1 not found; install it with:" >&2
    echo "    $2" >&2
    exit 1
}

# Checks a tool is on PATH (or is an executable path).
need() {
    command -v "$1" > /dev/null 2>&1 || missing "$1" "$2"
}

# Fetches artefact $4 of crate $1 version $2 (sha256 $3) from crates.io into
# the cache, once, and prints its path. A .crate file is a gzipped tar.
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/tessera"
from_crate() {
    local crate="$1" version="$2" sha256="$3" path="$4"
    local dir="$cache_root/$crate-$version"
    if [ ! -e "$dir/$path" ]; then
        need curl "apt-get install curl"
        need sha256sum "apt-get install coreutils"
        need tar "apt-get install tar"
        echo "build.sh: fetching $crate $version into $dir" >&2
        mkdir -p "$dir"
        local tmp
        tmp="$(mktemp "$dir/crate.XXXXXX")"
        curl -fsSL --retry 2 -o "$tmp" "https://static.crates.io/crates/$crate/$crate-$version.crate"
        if ! echo "$sha256  $tmp" | sha256sum --check --quiet; then
            rm -f "$tmp"
            echo "build.sh: checksum mismatch for $crate $version" >&2
            exit 1
        fi
        tar -xzf "$tmp" -C "$dir" --strip-components=1 "$crate-$version/$path"
        rm -f "$tmp"
    fi
    echo "$dir/$path"
}

