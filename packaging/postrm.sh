#!/bin/sh
# postrm for wellgate. Remove keeps the configuration, the data (store-and-forward queue,
# bdSeq, broker sessions) and the user, and leaves the unit's enable state for a later
# reinstall. Purge deletes all of them.
set -e

UNIT=wellgate.service
DATA=/var/lib/wellgate

case "$1" in
remove)
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload
	fi
	;;

purge)
	# The enable symlinks and deb-systemd-helper's state file.
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper purge "$UNIT"
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload
	fi
	# dpkg itself removes the conffile, its .dpkg-* backups and /etc/wellgate when empty
	# (certificates an admin put there stay).
	rm -rf "$DATA"
	# userdel (passwd, required) rather than deluser: adduser may be gone by now, and
	# deluser warns about crontabs on boxes without cron.
	if getent passwd wellgate >/dev/null; then
		userdel wellgate
	fi
	if getent group wellgate >/dev/null; then
		groupdel wellgate
	fi
	;;

upgrade | failed-upgrade | abort-install | abort-upgrade | disappear)
	;;

*)
	echo "postrm called with unknown argument '$1'" >&2
	exit 1
	;;
esac

exit 0
