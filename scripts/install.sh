#!/bin/sh
# Installs the wharf helper from a wharf server, as the server serves this script:
#
#   curl -fsSL <server>/downloads/install.sh | sh                    # into ~/.local/bin
#   curl -fsSL <server>/downloads/install.sh | sh -s -- ~/bin        # or a folder of your choice
#
# It picks the file for this machine — the single executable (no Node needed) on Linux x64 with
# glibc, else the one-file ES module when Node.js 20 or later is installed — downloads it from the
# same server, checks its sha256 against the server's SHA256SUMS, and installs it as `wharf`. It
# never needs root: it writes only into the folder it installs to.
#
# Settings (all optional):
#   first argument, or WHARF_INSTALL_DIR   where to install (default ~/.local/bin)
#   WHARF_DOWNLOAD_URL                     the server to download from (default: the one that
#                                          served this script, written in below by it)
#   WHARF_INSTALL_FILE                     wharf-linux-x64 or wharf.mjs, instead of choosing
#
# The checksum guards against a broken or altered download between you and the server (a proxy,
# a mirror, a truncated transfer); it cannot vouch for the server itself: use https.
set -eu

# Written in by the server when it serves this script (server/http/routes/downloads.ts).
served_by='@WHARF_SERVER_URL@'

say() { printf 'wharf: %s\n' "$*"; }
die() {
  printf 'wharf: %s\n' "$*" >&2
  exit 1
}

server=${WHARF_DOWNLOAD_URL:-$served_by}
case $server in
  @*) die "this install.sh was not served by a wharf server: set WHARF_DOWNLOAD_URL to the server's URL (e.g. https://ide.example.com)" ;;
  http://* | https://*) ;;
  *) die "WHARF_DOWNLOAD_URL must be an http:// or https:// URL (got \"$server\")" ;;
esac
server=${server%/}

[ $# -le 1 ] || die "usage: install.sh [folder to install into]"
dir=${1:-${WHARF_INSTALL_DIR:-}}
if [ -z "$dir" ]; then
  [ -n "${HOME:-}" ] || die "HOME is not set: name the folder to install into (sh install.sh <folder>, or WHARF_INSTALL_DIR)"
  dir=$HOME/.local/bin
fi

# --- what to download -------------------------------------------------------------------------

os=$(uname -s 2>/dev/null || echo unknown)
arch=$(uname -m 2>/dev/null || echo unknown)

# Node.js 20 or later on PATH: prints its version, or fails.
node_version() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [m] = process.versions.node.split("."); if (Number(m) < 20) process.exit(1); console.log(process.versions.node)' 2>/dev/null
}

file=${WHARF_INSTALL_FILE:-}
case $file in
  '')
    # The executable is a Node build for glibc: a musl system (Alpine) cannot start it.
    if [ "$os" = Linux ] && { [ "$arch" = x86_64 ] || [ "$arch" = amd64 ]; } && [ -e /lib64/ld-linux-x86-64.so.2 ]; then
      file=wharf-linux-x64
    elif node_version >/dev/null; then
      file=wharf.mjs
    else
      found=$(node --version 2>/dev/null || true)
      if [ -n "$found" ]; then found="found node $found"; else found="no node on PATH"; fi
      die "there is no wharf executable for $os $arch, and the portable helper needs Node.js 20 or later ($found): install Node.js 20+ and run this again"
    fi
    ;;
  wharf-linux-x64) ;;
  wharf.mjs) node_version >/dev/null || die "wharf.mjs needs Node.js 20 or later on PATH" ;;
  *) die "WHARF_INSTALL_FILE must be wharf-linux-x64 or wharf.mjs (got \"$file\")" ;;
esac

# --- tools ------------------------------------------------------------------------------------

# fetch URL FILE: downloads URL into FILE, failing on an HTTP error.
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --proto '=http,https' -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is installed: install one of them and run this again"
fi

# sha256 FILE: prints FILE's sha256 in hex.
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }
else
  die "no sha256 tool (sha256sum, shasum or openssl) is installed, so the download cannot be checked"
fi

# --- download and check -----------------------------------------------------------------------

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t wharf-install)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "downloading $server/downloads/$file"
fetch "$server/downloads/$file" "$tmp/$file" || die "could not download $server/downloads/$file (see above); nothing was installed"
fetch "$server/downloads/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not download $server/downloads/SHA256SUMS (see above); nothing was installed"

expected=$(awk -v name="$file" '$2 == name || $2 == "*" name { print $1; exit }' "$tmp/SHA256SUMS")
[ -n "$expected" ] || die "$server/downloads/SHA256SUMS has no line for $file; nothing was installed"
actual=$(sha256 "$tmp/$file")
if [ "$actual" != "$expected" ]; then
  die "the downloaded $file does not match its sha256 in $server/downloads/SHA256SUMS (expected $expected, got $actual): it was altered or cut short on the way; nothing was installed"
fi
say "sha256 of $file checked: $actual"

# --- install ----------------------------------------------------------------------------------

mkdir -p "$dir" 2>/dev/null || die "cannot create $dir: choose a folder you can write to (sh install.sh <folder>)"
[ -w "$dir" ] || die "cannot write to $dir: choose a folder you can write to (sh install.sh <folder>)"
dir=$(cd "$dir" && pwd)

# Copied next to its final name, then renamed over it: a running wharf keeps its old file, and
# nobody ever starts a half-written one.
install_file() { # install_file SOURCE NAME MODE
  cp "$1" "$dir/.$2.$$.tmp" && chmod "$3" "$dir/.$2.$$.tmp" && mv -f "$dir/.$2.$$.tmp" "$dir/$2" || {
    rm -f "$dir/.$2.$$.tmp"
    die "cannot write $dir/$2"
  }
}

if [ "$file" = wharf.mjs ]; then
  # Node 20 reads a file without an extension as CommonJS: the module keeps its .mjs name, and
  # `wharf` is a two-line script that runs it.
  install_file "$tmp/$file" wharf.mjs 755
  quoted=$(printf '%s\n' "$dir/wharf.mjs" | sed "s/'/'\\\\''/g")
  printf '#!/bin/sh\nexec node '\''%s'\'' "$@"\n' "$quoted" >"$tmp/wharf"
  install_file "$tmp/wharf" wharf 755
  say "installed $dir/wharf (runs $dir/wharf.mjs with node $(node_version))"
else
  install_file "$tmp/$file" wharf 755
  say "installed $dir/wharf ($file)"
fi

version=$("$dir/wharf" --version 2>&1) || die "the installed $dir/wharf does not run: $version"
say "$version"

case ":${PATH:-}:" in
  *":$dir:"*) ;;
  *) say "$dir is not on your PATH: add it, e.g. with  export PATH=\"$dir:\$PATH\"  in your shell's profile" ;;
esac
