#!/bin/sh
# Prints the version of the wellgate checkout in DIR (default: this repository), in a form
# that dpkg accepts and that sorts the way builds were made:
#
#   on tag vX.Y.Z                    X.Y.Z
#   N commits after tag vX.Y.Z       X.Y.Z+N.gHASH     (after X.Y.Z, before the next tag)
#   on tag vX.Y.Z-rc1 (pre-release)  X.Y.Z~rc1         (before X.Y.Z)
#   no vX.Y.Z tag at all             0.0.0~gitYYYYMMDD.HASH  (YYYYMMDD: the commit's date, UTC)
#
# `git describe` alone gives "a516813" (dpkg: "version number does not start with digit") or
# "v0.9.0-3-ga516813", which nfpm turns into 0.9.0~3-ga516813: below 0.9.0, so every later
# build looked like a downgrade. Only tags of the form vX.Y.Z[-pre] are considered.
#
# usage: scripts/version.sh [DIR]
set -eu
dir=${1:-$(dirname "$0")/..}
cd "$dir"

if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "version.sh: $PWD is not a git checkout with a commit; using 0.0.0~unknown" >&2
	echo "0.0.0~unknown"
	exit 0
fi

hash=$(git rev-parse --short=7 HEAD)
if desc=$(git describe --tags --long --abbrev=7 --match 'v[0-9]*.[0-9]*.[0-9]*' 2>/dev/null); then
	# desc is vX.Y.Z[-pre]-N-gHASH
	tag=${desc%-*-g*}
	rest=${desc#"$tag"-}
	n=${rest%%-*}
	ver=${tag#v}
	case $ver in
	*[!0-9A-Za-z.~+-]*)
		echo "version.sh: tag $tag has characters dpkg does not accept" >&2
		exit 1 ;;
	esac
	# A pre-release suffix sorts before the release: 1.2.0-rc1 -> 1.2.0~rc1.
	case $ver in
	*-*) ver=$(printf '%s' "$ver" | sed 's/-/~/') ;;
	esac
	if [ "$n" = 0 ]; then
		echo "$ver"
	else
		echo "$ver+$n.g$hash"
	fi
else
	day=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
	echo "0.0.0~git$day.$hash"
fi
