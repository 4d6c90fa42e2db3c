#!/usr/bin/env bash
# make bench: install what the benchmark needs (nginx, wrk, the LiteLLM venv, Portkey from npm), then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if [ ! -x bench/.venv-litellm/bin/litellm ]; then
  python3 -m venv bench/.venv-litellm
  bench/.venv-litellm/bin/pip install --quiet "litellm[proxy]==1.108.7"
fi
if [ ! -f bench/.portkey/node_modules/@portkey-ai/gateway/build/start-server.js ] && command -v npm >/dev/null; then
  npm install --prefix bench/.portkey --no-audit --no-fund --loglevel=error @portkey-ai/gateway@1.15.2
fi
pg_isready -h 127.0.0.1 -q || { echo "make bench needs PostgreSQL on 127.0.0.1:5432"; exit 1; }
redis-cli -h 127.0.0.1 ping >/dev/null || { echo "make bench needs Redis on 127.0.0.1:6379"; exit 1; }
exec .venv/bin/python bench/run.py "$@"
