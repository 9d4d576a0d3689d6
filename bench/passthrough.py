"""CPU per request of the OpenAI pass-through against the model route (issue #20: the
pass-through's must be at most 1.3x the model route's), on the seed payload.

    python3 bench/passthrough.py target/release/sluice [requests per run, default 3000]

One gateway (one worker) in front of `sluice mock`: `/v1/chat/completions` to a deployment on
the mock, and `/openai/v1/chat/completions` relayed to the same mock (OPENAI_API_BASE). Requests
go one at a time on a keep-alive connection, alternating the two routes over three runs each;
CPU is the gateway's user + system time from /proc, so the client's own cost is not counted
(clock ticks are 10 ms: use enough requests)."""

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile


def start(binary, args, pattern):
    p = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in p.stdout:
        m = re.search(pattern, line.decode())
        if m:
            return p, int(m.group(1))
    raise SystemExit(f"{args[0]} did not start")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    mock, mock_port = start(binary, ["mock", "--port", "0", "--no-default-rate-limit"], r"listening on http://127.0.0.1:(\d+)")
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    config.write(
        f"""model_list:
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_key: fake-key
      api_base: http://127.0.0.1:{mock_port}/
environment_variables:
  OPENAI_API_BASE: http://127.0.0.1:{mock_port}
  OPENAI_API_KEY: fake-key
general_settings:
  master_key: sk-1234
  disable_spend_logs: true
"""
    )
    config.close()
    gateway, port = start(
        binary,
        ["--config", config.name, "--host", "127.0.0.1", "--port", "0", "--num_workers", "1"],
        r"listening on http://127.0.0.1:(\d+)",
    )
    body = json.dumps(
        {"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "This is a test message for the load test"}]}
    )
    headers = {"Authorization": "Bearer sk-1234", "Content-Type": "application/json"}

    def run(path, count):
        c = http.client.HTTPConnection("127.0.0.1", port)
        for _ in range(count):
            c.request("POST", path, body, headers)
            r = c.getresponse()
            r.read()
            assert r.status == 200, (path, r.status)
        c.close()

    routes = ["/v1/chat/completions", "/openai/v1/chat/completions"]
    try:
        for path in routes:
            run(path, 200)
        results = {path: [] for path in routes}
        for _ in range(3):
            for path in routes:
                before = cpu_seconds(gateway.pid)
                run(path, n)
                results[path].append((cpu_seconds(gateway.pid) - before) / n * 1e6)
        for path, runs in results.items():
            print(f"{path}: {' '.join(f'{x:.1f}' for x in runs)} us CPU per request")
        ratio = min(results[routes[1]]) / min(results[routes[0]])
        print(f"pass-through / model route (best runs): {ratio:.2f}")
    finally:
        gateway.kill()
        mock.kill()
        os.unlink(config.name)


if __name__ == "__main__":
    main()
