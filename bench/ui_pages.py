#!/usr/bin/env python3
"""How long the admin UI's pages take to answer with many keys, teams and spend-log rows: every
API call each page makes (`crates/ui/assets/*.js`), timed from the client (median and worst of N
calls after one warm-up call).

    # issue #23's speed point: 10,000 keys, 1,000 teams, 1M spend-log rows in PostgreSQL
    bench/ui_pages.py --postgres --keys 10000 --teams 1000 --logs 1000000

    # against a sluice already running (its own data; --seed-keys N tops it up to N keys)
    bench/ui_pages.py --url http://127.0.0.1:4000 --key sk-1234 [--seed-keys 10000]

Without `--url` it loads the data as `bench/keys.py` does, with keys.py's
own code: a fresh database (PostgreSQL with `--postgres [URL]`, else a SQLite file), a gateway on the seed config (`examples/seed-openai.yaml`, one worker,
pinned to core 0), teams and keys made through `/team/new` and `/key/generate`, the spend-log
rows and their daily aggregates bulk-inserted in SQL (date-ordered, one call in 1,000 failed);
PostgreSQL's processes are moved to core 1 for the run, as keys.py does. The database is dropped
at the end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keys as kb  # noqa: E402  (bench/keys.py: the bulk data loading, shared)


def timed(session: requests.Session, method: str, url: str, body: dict | None, n: int) -> tuple[float, float, int, int]:
    """Median and worst milliseconds of `n` calls (after one not counted), the status and size."""
    session.request(method, url, json=body, timeout=60)
    took = []
    status, size = 0, 0
    for _ in range(n):
        t = time.perf_counter()
        r = session.request(method, url, json=body, timeout=60)
        _ = r.content
        took.append((time.perf_counter() - t) * 1000)
        status, size = r.status_code, len(r.content)
    return statistics.median(took), max(took), status, size


def routes(s: requests.Session, url: str, key_alias: str, team: str | None) -> list[tuple[str, str, str, dict | None]]:
    """(page: call, method, path, body) for every call the pages make as an admin."""
    total = s.get(f"{url}/key/list", params={"size": 1}, timeout=60).json()["total_count"]
    last = max(1, -(-total // 25))
    today = datetime.datetime.now(datetime.timezone.utc).date()

    def days(n: int) -> str:
        return f"start_date={today - datetime.timedelta(days=n - 1)}&end_date={today}"

    recent = s.get(f"{url}/spend/logs?summarize=false&page=1&page_size=50", timeout=60).json() or []
    tokens = sorted({r["api_key"] for r in recent if r.get("api_key")})
    some_key = tokens[0] if tokens else "none"
    some_user = next((r["user"] for r in recent if r.get("user")), "none")
    some_request = recent[-1]["request_id"] if recent else "none"
    logs = "/spend/logs?summarize=false&page=1&page_size=50"
    out = [
        ("shell: /ui/keys", "GET", "/ui/keys", None),
        ("shell: /ui/session", "GET", "/ui/session", None),
        ("dashboard: /spend/logs 200 rows", "GET", "/spend/logs?summarize=false&page=1&page_size=200", None),
        ("dashboard: /ui/api/live", "GET", "/ui/api/live", None),
        ("dashboard: /user/daily/activity today", "GET", f"/user/daily/activity?{days(1)}&page_size=1000", None),
        ("dashboard, models: /v1/model/info", "GET", "/v1/model/info", None),
        ("keys: /key/list page 1", "GET", "/key/list?return_full_object=true&page=1&size=25", None),
        (f"keys: /key/list page {last}", "GET", f"/key/list?return_full_object=true&page={last}&size=25", None),
        ("keys: /key/list by alias", "GET", f"/key/list?return_full_object=true&page=1&size=25&key_alias={key_alias}",
         None),
        ("keys: /key/list by user", "GET", f"/key/list?return_full_object=true&page=1&size=25&user_id={some_user}",
         None),
        ("logs: /spend/logs 50 rows", "GET", logs, None),
        ("logs: page 100", "GET", logs.replace("page=1", "page=100"), None),
        ("logs: by key", "GET", f"{logs}&api_key={some_key}", None),
        ("logs: by user", "GET", f"{logs}&user_id={some_user}", None),
        ("logs: model (every row's)", "GET", f"{logs}&model=fake-openai-endpoint", None),
        ("logs: model (no rows)", "GET", f"{logs}&model=gpt-4o-unused", None),
        ("logs: status success", "GET", f"{logs}&status=success", None),
        ("logs: status failure", "GET", f"{logs}&status=failure", None),
        ("logs: request id", "GET", f"{logs}&request_id={some_request}", None),
        ("logs: one day", "GET", f"{logs}&{days(1)}", None),
        ("logs: /v2/key/info of a page's keys", "POST", "/v2/key/info", {"keys": tokens}),
        ("spend: /user/daily/activity 7 days", "GET", f"/user/daily/activity?{days(7)}&page_size=1000", None),
        ("spend: /user/daily/activity 30 days", "GET", f"/user/daily/activity?{days(30)}&page_size=1000", None),
        ("spend: /user/daily/activity 90 days", "GET", f"/user/daily/activity?{days(90)}&page_size=1000", None),
        ("spend: /global/spend/report by team 30 days", "GET", f"/global/spend/report?group_by=team&{days(30)}", None),
        ("spend: /global/spend/report by customer 30 days", "GET",
         f"/global/spend/report?group_by=customer&{days(30)}", None),
        ("teams: /team/list", "GET", "/team/list", None),
        ("users: /user/list", "GET", "/user/list?page=1&page_size=100", None),
        ("organizations: /organization/list", "GET", "/organization/list", None),
    ]
    if team:
        out.insert(10, ("keys: /key/list by team", "GET",
                        f"/key/list?return_full_object=true&page=1&size=25&team_id={team}", None))
        out.insert(15, ("logs: by team", "GET", f"{logs}&team_id={team}", None))
    return out


def measure(url: str, key: str, calls: int, key_alias: str, team: str | None, what: str) -> int:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    total = s.get(f"{url}/key/list", params={"size": 1}, timeout=60).json()["total_count"]
    print(f"{what}; {total} keys; {calls} calls each after one warm-up")
    print("| page: call | median ms | worst ms | status | bytes |\n|---|---:|---:|---:|---:|")
    slow = 0
    for name, method, path, body in routes(s, url, key_alias, team):
        med, worst, status, size = timed(s, method, url + path, body, calls)
        slow += med >= 100
        print(f"| {name} | {med:.1f} | {worst:.1f} | {status} | {size} |", flush=True)
    if slow:
        print(f"{slow} call(s) took 100 ms or more (median)", file=sys.stderr)
    return 0


def with_own_gateway(a: argparse.Namespace) -> int:
    pinned = len(os.sched_getaffinity(0)) > 1
    gw_cpu, other_cpu = (0, 1) if pinned else (None, None)
    affinity = kb.pin_postgres(other_cpu) if a.postgres and pinned else {}
    with tempfile.TemporaryDirectory(prefix="sluice-ui-bench-") as tmp:
        tmp = Path(tmp)
        mock, mock_url = kb.start([a.sluice, "mock", "--host", "127.0.0.1", "--port", "0"], other_cpu, tmp / "mock.log")
        cfg = (kb.REPO / "examples" / "seed-openai.yaml").read_text().replace("http://127.0.0.1:8090/", mock_url + "/")
        (tmp / "config.yaml").write_text(cfg)
        procs, db = [mock], None
        try:
            db = kb.Db(tmp, "ui", a.postgres)
            os.environ["DATABASE_URL"] = db.url
            gw, base = kb.start([a.sluice, "--config", str(tmp / "config.yaml"), "--host", "127.0.0.1", "--port", "0",
                                 "--num_workers", "1"], gw_cpu, tmp / "gateway.log")
            procs.append(gw)
            t0 = time.monotonic()
            teams = kb.make_teams(base, a.teams)
            keys = kb.make_keys(base, a.keys, teams)
            print(f"created {len(teams)} teams and {len(keys)} keys through the API in {time.monotonic() - t0:.1f} s",
                  flush=True)
            if a.logs:
                t0 = time.monotonic()
                db.seed_logs(a.logs, keys, teams)
                print(f"inserted {a.logs} spend-log rows and their daily aggregates in {time.monotonic() - t0:.1f} s",
                      flush=True)
            what = (f"{'PostgreSQL' if a.postgres else 'SQLite'}, {len(teams)} teams, {a.logs} spend-log rows, "
                    f"{Path(a.sluice).name} pinned to core {gw_cpu}")
            return measure(base, kb.MASTER, a.calls, f"bench-{len(keys) // 2}", teams[len(teams) // 2] if teams else None,
                           what)
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
            if db:
                db.drop()
            kb.unpin_postgres(affinity)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running sluice (otherwise one is started on a fresh database)")
    p.add_argument("--key", default=kb.MASTER)
    p.add_argument("--seed-keys", type=int, default=0, help="with --url: make keys until this many exist")
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--sluice", default=str(kb.REPO / "target" / "release" / "sluice"))
    p.add_argument("--postgres", nargs="?", const="postgresql://root@127.0.0.1:5432", default=None,
                   help="a fresh PostgreSQL database on this server (default: a SQLite file)")
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--teams", type=int, default=1_000)
    p.add_argument("--logs", type=int, default=1_000_000)
    a = p.parse_args()
    if not a.url:
        return with_own_gateway(a)
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {a.key}"
    have = s.get(f"{a.url}/key/list", params={"size": 1}, timeout=60).json()["total_count"]
    for n in range(have, a.seed_keys):
        s.post(f"{a.url}/key/generate", json={"key_alias": f"bench-ui-{n}"}, timeout=60).raise_for_status()
    return measure(a.url, a.key, a.calls, "bench-ui-5000", None, a.url)


if __name__ == "__main__":
    sys.exit(main())
