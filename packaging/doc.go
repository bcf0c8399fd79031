// Package packaging holds wellgate's Debian packaging: the nfpm recipe (a template that
// scripts/package.sh fills in), the systemd unit, the maintainer scripts, the short
// configuration installed as /etc/wellgate/wellgate.toml and the lintian override.
//
// Its tests check what `make package` built: every path, mode and owner in the three .debs,
// lintian, systemd-analyze, the ARM binaries under qemu, and, as root on the machine itself,
// install, upgrade (kept edits, no prompt, a failing check that fails the upgrade), remove
// and purge. They run from `make test-package`, which builds the packages first and sets
// WELLGATE_PACKAGE_TEST=1; elsewhere they skip. scripts/version.sh is tested everywhere.
package packaging
