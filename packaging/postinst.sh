#!/bin/sh
# postinst for wellgate. dpkg may run it more than once (a configure that failed is run
# again by `dpkg --configure`), so every step is idempotent.
#
# The unit is handled as debhelper's dh_installsystemd does (the way mosquitto's package
# does it), with deb-systemd-helper and deb-systemd-invoke from init-system-helpers
# (Essential), so that it also works where systemd is not running (an SD-card image built
# in a chroot): enabling is a symlink plus a state file; starting happens only where
# /run/systemd/system exists. Errors are not hidden: a step that fails fails the script.
set -e

CONF=/etc/wellgate/wellgate.toml
DATA=/var/lib/wellgate
UNIT=wellgate.service

# The system user the service runs as; dialout gives it the serial ports.
ensure_user() {
	if ! getent group wellgate >/dev/null; then
		addgroup --quiet --system wellgate
	fi
	if ! getent passwd wellgate >/dev/null; then
		adduser --quiet --system --ingroup wellgate --home "$DATA" --no-create-home \
			--shell /usr/sbin/nologin --gecos "wellgate edge gateway" wellgate
	fi
	if getent group dialout >/dev/null && ! id -nG wellgate | grep -qw dialout; then
		adduser --quiet wellgate dialout
	fi
}

# Owners and modes that dpkg could not set when the user did not exist yet at unpack time.
# A dpkg-statoverride set by the admin wins.
fix_owner() { # path owner:group mode
	if [ -e "$1" ] && ! dpkg-statoverride --list "$1" >/dev/null; then
		chown "$2" "$1"
		chmod "$3" "$1"
	fi
}

# The configuration must pass the installed binary's own check before the service is
# (re)started: an upgrade that no longer accepts the file fails here, loudly, and leaves the
# running gateway alone, instead of installing "successfully" and leaving the gateway down.
check_config() {
	if [ ! -e "$CONF" ]; then
		echo "wellgate: $CONF does not exist (removed by the admin?); the service will not start until it does." >&2
		return 1
	fi
	if ! out=$(/usr/bin/wellgate check -config "$CONF" 2>&1); then
		cat >&2 <<EOF

wellgate: $CONF does not pass 'wellgate check' of the version just unpacked:
$out

wellgate: the running service was NOT restarted and the package is left unconfigured.
wellgate: Fix the file (reference: /usr/share/doc/wellgate/config.example.toml), then run
wellgate:   dpkg --configure wellgate

EOF
		exit 1
	fi
	echo "$out"
}

case "$1" in
configure)
	ensure_user
	if [ -z "$2" ]; then
		# First configuration: on a first unpack the group wellgate did not exist yet, so
		# dpkg fell back to root. Later upgrades unpack with the right owner and keep an
		# admin's changes to the kept file.
		fix_owner "$CONF" root:wellgate 0640
		fix_owner "$DATA" wellgate:wellgate 0750
	fi

	# Enable on first install, even without a running systemd. On an upgrade, was-enabled is
	# false if the admin disabled the unit: keep it disabled and only update the state file.
	if deb-systemd-helper --quiet was-enabled "$UNIT"; then
		deb-systemd-helper enable "$UNIT"
	else
		deb-systemd-helper update-state "$UNIT"
	fi

	config_ok=yes
	check_config || config_ok=no

	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload
		if [ "$config_ok" = yes ]; then
			if [ -z "$2" ]; then
				# First install: start it (deb-systemd-invoke skips a disabled unit).
				deb-systemd-invoke start "$UNIT"
			else
				# Upgrade: restart only if it is running; a stopped or disabled gateway stays so.
				deb-systemd-invoke try-restart "$UNIT"
			fi
		fi
	fi
	;;

abort-upgrade)
	# An upgrade failed before it was unpacked completely and this version's files are back.
	# prerm did not stop the service for the upgrade, so there is nothing to start.
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload
	fi
	;;

abort-remove | abort-deconfigure)
	# prerm stopped the service, then the removal failed: start it again (unless disabled).
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload
		deb-systemd-invoke start "$UNIT"
	fi
	;;

*)
	echo "postinst called with unknown argument '$1'" >&2
	exit 1
	;;
esac

exit 0
