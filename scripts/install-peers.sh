#!/usr/bin/env bash
# Installs the independent test peers that `make test` needs: Debian's mosquitto and socat,
# qemu-user-static for the ARM smoke test, and the npm packages (Eclipse Tahu's sparkplug-payload,
# MQTT.js, node-opcua's server) into .peers/node_modules, which git ignores. Safe to run again: it
# only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto mosquitto-clients)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v qemu-arm-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium) # web's browser test (chromedp)
# The package tests (make test-package): lintian, systemd-analyze, and the man page that
# systemd-analyze verify looks up through man.
command -v lintian >/dev/null 2>&1 || need_apt+=(lintian)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "install-peers: apt-get install ${need_apt[*]}"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -f .peers/node_modules/sparkplug-payload/package.json ] || [ ! -f .peers/node_modules/mqtt/package.json ] ||
	! grep -q '"version": "4\.' .peers/node_modules/long/package.json 2>/dev/null ||
	[ ! -f .peers/node_modules/node-opcua-server/package.json ]; then
	echo "install-peers: npm install sparkplug-payload mqtt node-opcua-server into .peers"
	mkdir -p .peers
	[ -f .peers/package.json ] || echo '{"name":"wellgate-test-peers","private":true}' > .peers/package.json
	# long@4 explicitly: Tahu's decoder tells a Long by `instanceof` its own long, and only a
	# long@4 at the top is shared with protobufjs (node-opcua pulls long@5, which npm would
	# otherwise hoist, and Tahu then decodes Int64 as unsigned).
	npm install --prefix .peers --no-audit --no-fund --silent sparkplug-payload@1.0.3 long@4.0.0 mqtt@5 \
		node-opcua-server@2.186 node-opcua-certificate-manager@2.186 node-opcua-variant@2.186 node-opcua-status-code@2.186 \
		node-opcua-service-secure-channel@2.186 node-opcua-secure-channel@2.186 >/dev/null
fi
echo "install-peers: ok"
