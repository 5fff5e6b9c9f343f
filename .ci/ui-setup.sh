#!/usr/bin/env bash
# What tests/server and tests/ui need on a fresh Debian machine, beyond Python packages:
# Node.js >= 20.19 with npm (to build the JupyterLab extension during `pip install`) and
# Debian's Chromium (driven by Python Playwright; Playwright's own browser download is never
# used). Idempotent and quick when everything is already there. Run as root (or with sudo).
#
# Then:   pip install -e ".[test,ui-test]"      # builds the sidebar with npm (about 2 min)
#         pytest tests/server tests/ui
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# Headless Chromium still wants fonts to render text (and screenshots).
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
# tests/hosts makes network namespaces, veth pairs and tc qdiscs (iproute2).
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || need_apt+=(iproute2)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ui-setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The extension's bundler (Rspack 2) needs Node.js ^20.19 or >= 22.12.
node_version="$(node --version | sed 's/^v//')"
major="${node_version%%.*}"
minor="$(echo "$node_version" | cut -d. -f2)"
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; } || { [ "$major" -eq 21 ]; } || { [ "$major" -eq 22 ] && [ "$minor" -lt 12 ]; }; then
  echo "ui-setup: Node.js $node_version is too old to build the sidebar (needs ^20.19 or >=22.12)." >&2
  echo "ui-setup: install a newer Node.js (for example: npm install -g n && n 22)." >&2
  exit 1
fi

echo "ui-setup: node $(node --version), npm $(npm --version), $(chromium --version 2>/dev/null | head -1)"
