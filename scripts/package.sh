#!/usr/bin/env bash
# Builds one wellgate .deb with nfpm, from a binary that is already built.
#
#   scripts/package.sh -a ARCH -v VERSION -b BINARY [-o OUTDIR]
#
# ARCH is the Debian architecture (amd64, arm64 or armhf); VERSION a Debian version (see
# scripts/version.sh); BINARY the static linux binary for ARCH. Writes
# OUTDIR/wellgate_VERSION_ARCH.deb (OUTDIR defaults to dist/) and prints its path.
#
# nfpm does not expand environment variables in contents[].src, so the recipe
# packaging/nfpm.yaml is a template whose @...@ placeholders are filled in here, in a
# temporary directory that also holds the files generated for the package: the copyright
# file with the list of linked Go modules, changelog.Debian.gz and the man page.
#
# nfpm runs through the Go toolchain at a pinned version (NFPM overrides it).
set -euo pipefail

NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0}
GO=${GO:-go}
MAINTAINER="wellgate maintainers <ops@wellgate.example.com>"

root=$(cd "$(dirname "$0")/.." && pwd)
arch="" version="" binary="" out="$root/dist"
while getopts "a:v:b:o:" opt; do
	case $opt in
	a) arch=$OPTARG ;;
	v) version=$OPTARG ;;
	b) binary=$OPTARG ;;
	o) out=$OPTARG ;;
	*) echo "usage: $0 -a ARCH -v VERSION -b BINARY [-o OUTDIR]" >&2; exit 2 ;;
	esac
done
case $arch in
amd64 | arm64 | armhf) ;;
*) echo "package.sh: ARCH must be amd64, arm64 or armhf, not '$arch'" >&2; exit 2 ;;
esac
if [ -z "$version" ] || [ -z "$binary" ]; then
	echo "usage: $0 -a ARCH -v VERSION -b BINARY [-o OUTDIR]" >&2
	exit 2
fi
case $version in
[0-9]*) ;;
*) echo "package.sh: version '$version' does not start with a digit; dpkg would refuse it" >&2; exit 2 ;;
esac
if [ ! -f "$binary" ]; then
	echo "package.sh: $binary: no such file" >&2
	exit 2
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The commit's date, not the clock, so that the same commit packages the same files.
if commit=$(git -C "$root" rev-parse HEAD 2>/dev/null); then
	epoch=$(git -C "$root" log -1 --format=%ct HEAD)
else
	commit=unknown
	epoch=${SOURCE_DATE_EPOCH:-$(date +%s)}
fi
rfc2822=$(LC_ALL=C date -u -d "@$epoch" '+%a, %d %b %Y %H:%M:%S +0000')
manday=$(date -u -d "@$epoch" '+%Y-%m-%d')

# copyright: the project's notice and the Go modules linked into this binary.
{
	cat "$root/packaging/copyright"
	echo
	"$GO" version -m "$binary" | awk '$1 == "dep" { printf "  %s %s\n", $2, $3 }'
} >"$work/copyright"

# changelog.Debian.gz: one entry for this version, with the commits since the last release tag.
{
	echo "wellgate ($version) stable; urgency=medium"
	echo
	range=HEAD
	if prev=$(git -C "$root" describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' HEAD 2>/dev/null); then
		if [ "$(git -C "$root" rev-list -n1 "$prev")" != "$commit" ]; then
			range="$prev..HEAD"
		elif prev2=$(git -C "$root" describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' "HEAD^" 2>/dev/null); then
			range="$prev2..HEAD"
		fi
	fi
	n=0
	if [ "$commit" != unknown ]; then
		while IFS= read -r subject; do
			printf '%s\n' "$subject" | fold -s -w 74 | sed -e '1s/^/  * /' -e '2,$s/^/    /' -e 's/ *$//'
			n=$((n + 1))
		done < <(git -C "$root" log --no-merges --format=%s -n 50 "$range")
	fi
	[ "$n" -gt 0 ] || echo "  * Built from commit $commit."
	echo
	echo " -- $MAINTAINER  $rfc2822"
} >"$work/changelog.Debian"
gzip -9n "$work/changelog.Debian"

# wellgate.1.gz: the man page, from the command's own usage text. The binary is run if this
# machine can run it (its own architecture, or qemu through binfmt_misc); else the same text
# comes from the source.
if ! help=$("$binary" help 2>/dev/null); then
	help=$(cd "$root" && "$GO" run ./cmd/wellgate help)
fi
roff_escape() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/" -e 's/-/\\-/g'; }
{
	echo ".TH WELLGATE 1 \"$manday\" \"wellgate $version\" \"User Commands\""
	echo ".SH NAME"
	echo "wellgate \\- wellsite OT-to-MQTT edge gateway (Modbus to Sparkplug B)"
	echo ".SH SYNOPSIS"
	echo ".nf"
	printf '%s\n' "$help" | roff_escape
	echo ".fi"
	cat <<'EOF'
.SH DESCRIPTION
.B wellgate
polls PLCs, RTUs and flow computers over Modbus TCP and RTU, turns every tag into a
Sparkplug B metric, publishes it into its own embedded MQTT broker and, when configured,
to the upstream broker in front of Ignition, keeping values in an on-disk queue while the
upstream link is down. A local status page shows every tag's value and quality.
.PP
.B check
loads and validates a configuration without connecting to anything and reports every
problem as FILE:LINE. The service runs it before every start.
.SH FILES
.TP
.I /etc/wellgate/wellgate.toml
the configuration read by the service
.TP
.I /usr/share/doc/wellgate/config.example.toml
every key, commented
.TP
.I /var/lib/wellgate
the store-and-forward queue, bdSeq counters and broker sessions
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
EOF
} >"$work/wellgate.1"
gzip -9n "$work/wellgate.1"

sed -e "s|@ARCH@|$arch|g" -e "s|@VERSION@|$version|g" -e "s|@BINARY@|$binary|g" \
	-e "s|@ROOT@|$root|g" -e "s|@WORK@|$work|g" "$root/packaging/nfpm.yaml" >"$work/nfpm.yaml"
if grep -n '@[A-Z]*@' "$work/nfpm.yaml" >&2; then
	echo "package.sh: placeholders left in the nfpm recipe" >&2
	exit 1
fi

deb="$out/wellgate_${version}_${arch}.deb"
rm -f "$deb"
SOURCE_DATE_EPOCH=$epoch "$GO" run "$NFPM" package --config "$work/nfpm.yaml" --packager deb --target "$deb" >&2
echo "$deb"
