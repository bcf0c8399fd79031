#!/bin/sh
# prerm for wellgate: stop the gateway when the package is removed. On an upgrade it keeps
# running; the new version's postinst checks the configuration and then try-restarts it.
set -e

UNIT=wellgate.service

case "$1" in
remove | deconfigure)
	if [ -d /run/systemd/system ]; then
		deb-systemd-invoke stop "$UNIT"
	fi
	;;
upgrade | failed-upgrade)
	;;
*)
	echo "prerm called with unknown argument '$1'" >&2
	exit 1
	;;
esac

exit 0
