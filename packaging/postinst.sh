#!/bin/sh
set -e
if ! getent passwd wellgate >/dev/null; then
	adduser --system --group --home /var/lib/wellgate --no-create-home wellgate >/dev/null 2>&1 || \
	useradd --system --user-group --home-dir /var/lib/wellgate --shell /usr/sbin/nologin wellgate
fi
chown wellgate:wellgate /var/lib/wellgate
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl enable wellgate.service >/dev/null 2>&1 || true
	systemctl restart wellgate.service >/dev/null 2>&1 || true
fi
