"""Runs TensorZero's HTTP gateway from PyPI's `tensorzero` for bench.py.

The package starts the gateway's own axum server (its OpenAI-compatible routes,
`tensorzero_core::utils::gateway::start_openai_compatible_gateway`) inside this process, on a port it
picks: what its documented `patch_openai_client` does. The address goes to the file named by the
second argument; then Python only sleeps while the gateway's Rust threads serve.

Usage: python tensorzero_http.py CONFIG.toml URL_FILE
"""

import os
import sys
import time

import tensorzero

config, url_file = sys.argv[1], sys.argv[2]
gateway = tensorzero._start_http_gateway(config_file=config, clickhouse_url=None, postgres_url=None,
                                         valkey_url=None, async_setup=False)
with open(url_file + ".part", "w") as f:
    f.write(gateway.base_url)
os.rename(url_file + ".part", url_file)
while True:
    time.sleep(3600)
