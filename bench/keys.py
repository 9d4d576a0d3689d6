#!/usr/bin/env python3
"""What virtual keys cost: the seed benchmark with N keys in the database, master key vs a
virtual key on every request, sluice's CPU time per request from /proc; and issue #21's speed
point: with many keys, teams and spend-log rows, CPU per request against an empty database, and
how fast the spend routes answer.

    bench/keys.py [--sluice target/release/sluice] [--keys 10000] [--teams 0] [--logs 0]
                  [--postgres [URL]] [--duration 10s] [--repeats 3]

    # issue #21: 10,000 keys, 1,000 teams and 1M spend-log rows in PostgreSQL
    bench/keys.py --postgres --keys 10000 --teams 1000 --logs 1000000

Two gateways run side by side, each on its own database: "full" gets the keys (through
`/key/generate`, each with a budget, an rpm limit and a model list, so every check runs; spread
round-robin over `--teams` teams made with `/team/new`) and `--logs` spend-log rows with their
daily aggregates (bulk-inserted with SQL, spread over the last 30 days, many keys, users and
teams); "empty" gets one key. Both use the seed's config (`examples/seed-openai.yaml`) and are
pinned to core 0 with one worker; `sluice mock` and `sluice load` (64 closed-loop users, the seed
payload) share core 1, and so does a local PostgreSQL server with `--postgres` (its processes are
moved there for the run and back after). The runs alternate master key on full / virtual key on full / virtual key
on empty, in ABBA order (every run adds spend-log rows, which makes later runs a little dearer),
and the medians are compared. Then the spend routes are timed on the full database (median of
5 calls each): `/spend/logs` paged, by key, by request id and by date range, and the daily
activity routes. `--postgres` uses fresh databases on the server at URL (default
postgresql://root@127.0.0.1:5432, needs `psql`), dropped at the end; without it, the embedded
SQLite files. `--smoke` makes it a few seconds long for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MASTER = "sk-1234"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(argv: list[str], cpu: int | None, log: Path) -> tuple[subprocess.Popen, str]:
    if cpu is not None and len(os.sched_getaffinity(0)) > 1:
        argv = ["taskset", "-c", str(cpu), *argv]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if "listening on http://" in line:
            return p, line.split("listening on ")[1].strip()
        if not line and p.poll() is not None:
            break
    raise RuntimeError(f"{argv} did not start: {log.read_text()[-500:]}")


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def get_ms(url: str) -> tuple[float, int]:
    """One admin GET: milliseconds and the size of the answer."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {MASTER}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, len(body)


def make_teams(base: str, n: int) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: post(base + "/team/new", {"team_alias": f"bench-team-{i}"})["team_id"], range(n)))


def pin_postgres(cpu: int) -> dict[int, set[int]]:
    """Moves the local PostgreSQL server's processes (and so the backends it forks from now on)
    onto `cpu`, away from the gateway's core: sharing it, the database's inserts into the
    million-row tables showed up as the gateway's CPU (+21.8 % against +0.5 % pinned away).
    Returns each process's affinity before, for `unpin_postgres`."""
    before = {}
    out = subprocess.run(["pgrep", "postgres"], capture_output=True, text=True)
    for pid in (int(p) for p in out.stdout.split()):
        try:
            before[pid] = os.sched_getaffinity(pid)
            os.sched_setaffinity(pid, {cpu})
        except (PermissionError, ProcessLookupError) as e:
            print(f"cannot pin PostgreSQL process {pid} to core {cpu}: {e}", file=sys.stderr)
    return before


def unpin_postgres(before: dict[int, set[int]]) -> None:
    for pid, cpus in before.items():
        try:
            os.sched_setaffinity(pid, cpus)
        except (PermissionError, ProcessLookupError):
            pass


def make_keys(base: str, n: int, teams: list[str]) -> list[dict]:
    """`/key/generate` answers: the raw `key` and its `token` (hash)."""

    def one(i: int) -> dict:
        body = {"models": ["fake-openai-endpoint"], "max_budget": 1000.0, "rpm_limit": 10_000_000,
                "key_alias": f"bench-{i}"}
        if teams:
            body["team_id"] = teams[i % len(teams)]
        return post(base + "/key/generate", body)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


class Db:
    """A fresh database for one gateway: a SQLite file, or a PostgreSQL database made with psql."""

    def __init__(self, tmp: Path, name: str, postgres: str | None):
        self.server = postgres
        if postgres:
            self.name = f"sluice_bench_{name}_{uuid.uuid4().hex[:8]}"
            self.psql(f"CREATE DATABASE {self.name}", db="postgres")
            self.url = f"{postgres.rstrip('/')}/{self.name}"
        else:
            self.path = tmp / f"{name}.db"
            self.url = f"sqlite://{self.path}"

    def psql(self, sql: str, db: str | None = None) -> str:
        out = subprocess.run(["psql", f"{self.server.rstrip('/')}/{db or self.name}", "-v", "ON_ERROR_STOP=1",
                              "-Atc", sql], capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def drop(self) -> None:
        if self.server:
            self.psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", db="postgres")

    def seed_logs(self, n: int, keys: list[dict], teams: list[str]) -> None:
        """`n` spend-log rows over the last 30 days, key i % len(keys), 1,000 users, the keys'
        teams, one call in 1,000 failed, and the daily aggregates they add up to (as the spend
        writer would have upserted them), all in SQL. Both tables are written in date order, as
        a gateway writes them day by day (the logs as calls end, each day's aggregate rows as
        that day's first calls of each group land): a bulk insert in hash order would scatter a
        day's rows over the whole table and defeat every date-range index read."""
        now_ms = int(time.time() * 1000)
        span = 30 * 86_400_000
        pairs = [(i, k["token"], teams[i % len(teams)] if teams else "") for i, k in enumerate(keys)]
        rows = f"""SELECT 'bench-' || s.i, 'acompletion', k.token, 0.000045, 30, 10, 20,
                {now_ms - span} + CAST(s.i AS BIGINT) * {span // max(n, 1)},
                {now_ms - span} + CAST(s.i AS BIGINT) * {span // max(n, 1)} + 250,
                'fake', 'bench-dep', 'fake-openai-endpoint', 'openai', 'http://127.0.0.1:8090/',
                'bench-user-' || (s.i % 1000), NULLIF(k.team_id, ''), NULL, '{{}}', '[]',
                CASE WHEN s.i % 1000 = 0 THEN 'failure' ELSE 'success' END, NULL,
                'chatcmpl-bench-' || s.i"""
        cols = ("request_id, call_type, api_key, spend, total_tokens, prompt_tokens, completion_tokens, start_time, "
                "end_time, model, model_id, model_group, custom_llm_provider, api_base, user_id, team_id, end_user, "
                "metadata, request_tags, status, client_call_id, response_id")
        daily = """INSERT INTO sluice_daily_spend (date, api_key, user_id, team_id, end_user, model, model_group,
                provider, spend, prompt_tokens, completion_tokens, api_requests, successful_requests,
                failed_requests)
            SELECT {day}, api_key, COALESCE(user_id, ''), COALESCE(team_id, ''), COALESCE(end_user, ''), model,
                COALESCE(model_group, ''), COALESCE(custom_llm_provider, ''), SUM(spend), SUM(prompt_tokens),
                SUM(completion_tokens), COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END),
                SUM(CASE WHEN status = 'success' THEN 0 ELSE 1 END)
            FROM sluice_spend_logs WHERE request_id LIKE 'bench-%' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1"""
        # The same per day, team, end user and model (schema migration 16).
        teams_daily = """INSERT INTO sluice_daily_team_spend (date, team_id, end_user, model, spend, prompt_tokens,
                completion_tokens, api_requests)
            SELECT date, team_id, end_user, model, SUM(spend), SUM(prompt_tokens), SUM(completion_tokens),
                SUM(api_requests)
            FROM sluice_daily_spend GROUP BY 1, 2, 3, 4 ORDER BY 1"""
        if self.server:
            keyfile = Path(tempfile.mkstemp(suffix=".csv")[1])
            keyfile.write_text("".join(f"{i},{t},{team}\n" for i, t, team in pairs))
            try:
                self.psql("CREATE UNLOGGED TABLE bench_keys (i BIGINT PRIMARY KEY, token TEXT, team_id TEXT)")
                # psql runs a backslash command given with -c alone.
                self.psql(f"\\copy bench_keys FROM '{keyfile}' WITH (FORMAT csv)")
            finally:
                keyfile.unlink()
            self.psql(f"INSERT INTO sluice_spend_logs ({cols}) {rows} FROM generate_series(1, {n}) AS s(i) "
                      f"JOIN bench_keys k ON k.i = s.i % {len(keys)} ORDER BY s.i")
            day = "to_char(to_timestamp(start_time / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            self.psql(daily.format(day=day) + f"; {teams_daily}; DROP TABLE bench_keys")
            # What autovacuum does to a table a million rows were just inserted into (this
            # machine's server runs with it off): the statistics, and the visibility map that
            # lets a count read an index alone. A statement of its own: VACUUM runs outside a
            # transaction.
            self.psql("VACUUM ANALYZE")
        else:
            import sqlite3

            con = sqlite3.connect(self.path, timeout=60)
            con.execute("CREATE TEMP TABLE bench_keys (i INTEGER PRIMARY KEY, token TEXT, team_id TEXT)")
            con.executemany("INSERT INTO bench_keys VALUES (?, ?, ?)", pairs)
            con.execute(f"INSERT INTO sluice_spend_logs ({cols}) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL "
                        f"SELECT i + 1 FROM s WHERE i < {n}) {rows} FROM s JOIN bench_keys k ON k.i = s.i % {len(keys)} "
                        "ORDER BY s.i")
            con.execute(daily.format(day="strftime('%Y-%m-%d', start_time / 1000, 'unixepoch')"))
            con.execute(teams_daily)
            con.commit()
            con.execute("ANALYZE")
            con.close()


def time_routes(base: str, keys: list[dict], teams: list[str], logs: int) -> list[tuple[str, float, int]]:
    """Median milliseconds (of 5) and answer size of each spend route on the full database."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    week_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 7 * 86_400))
    token = keys[len(keys) // 2]["token"]
    routes = [
        ("/spend/logs newest 100", "/spend/logs", {"page_size": 100}),
        ("/spend/logs page 50 of 100", "/spend/logs", {"page_size": 100, "page": 50}),
        ("/spend/logs by key", "/spend/logs", {"api_key": token, "page_size": 100}),
        ("/spend/logs by request_id", "/spend/logs", {"request_id": f"chatcmpl-bench-{max(logs // 2, 1)}"}),
        ("/spend/logs by date range", "/spend/logs",
         {"start_date": today, "end_date": today, "summarize": "false", "page_size": 100}),
        ("/spend/logs 7 days summarised", "/spend/logs", {"start_date": week_ago, "end_date": today}),
        ("/user/daily/activity 7 days", "/user/daily/activity", {"start_date": week_ago, "end_date": today}),
        ("/user/daily/activity one user", "/user/daily/activity",
         {"start_date": week_ago, "end_date": today, "user_id": "bench-user-7"}),
        ("/global/spend/report by key", "/global/spend/report",
         {"start_date": today, "end_date": today, "group_by": "api_key", "api_key": token}),
        ("/spend/tags 7 days", "/spend/tags", {"start_date": week_ago, "end_date": today}),
    ]
    if teams:
        routes.append(("/team/daily/activity one team", "/team/daily/activity",
                       {"start_date": week_ago, "end_date": today, "team_ids": teams[len(teams) // 2]}))
    out = []
    for label, path, params in routes:
        url = f"{base}{path}?{urllib.parse.urlencode(params)}"
        get_ms(url)
        runs = [get_ms(url) for _ in range(5)]
        out.append((label, statistics.median(ms for ms, _ in runs), runs[0][1]))
    return out


def load(sluice: str, base: str, key: str, duration: str, users: int, cpu: int | None, out: Path) -> dict:
    argv = [sluice, "load", "--host", base, "-u", str(users), "-t", duration, "-q", "--json", str(out),
            "--api-key", key, "--error-file", str(out.with_suffix(".errors.txt"))]
    if cpu is not None and len(os.sched_getaffinity(0)) > 1:
        argv = ["taskset", "-c", str(cpu), *argv]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return json.loads(out.read_text())


def print_routes(base: str, keys: list[dict], teams: list[str], args: argparse.Namespace) -> None:
    """The spend routes' median times on the full database; over 100 ms is reported."""
    print(f"\n{'spend route (' + ('PostgreSQL' if args.postgres else 'SQLite') + ')':<36} {'median ms':>10} "
          f"{'bytes':>10}")
    slow = 0
    for label, ms, size in time_routes(base, keys, teams, args.logs):
        slow += ms >= 100
        print(f"{label:<36} {ms:>10.1f} {size:>10}{'  over 100 ms' if ms >= 100 else ''}")
    if slow:
        print(f"{slow} route(s) took 100 ms or more", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--teams", type=int, default=0, help="teams the keys are spread over")
    ap.add_argument("--logs", type=int, default=0, help="spend-log rows bulk-inserted (with their daily aggregates)")
    ap.add_argument("--postgres", nargs="?", const="postgresql://root@127.0.0.1:5432", default=None,
                    help="use fresh PostgreSQL databases on this server instead of SQLite files")
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--routes-only", action="store_true",
                    help="only time the spend routes on the full database (no CPU runs)")
    ap.add_argument("--smoke", action="store_true", help="100 keys, 10 teams, 1,000 logs, 1 s runs, one repeat (CI)")
    ap.add_argument("--no-spend-logs", action="store_true",
                    help="general_settings.disable_spend_logs: what the per-request log rows cost")
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.teams, args.logs, args.duration, args.repeats = 100, 10, 1_000, "1s", 1
    pinned = len(os.sched_getaffinity(0)) > 1
    gw_cpu, other_cpu = (0, 1) if pinned else (None, None)
    postgres_affinity = pin_postgres(other_cpu) if args.postgres and pinned else {}

    with tempfile.TemporaryDirectory(prefix="sluice-keys-bench-") as tmp:
        tmp = Path(tmp)
        mock, mock_url = start([args.sluice, "mock", "--host", "127.0.0.1", "--port", "0"], other_cpu, tmp / "mock.log")
        cfg = (REPO / "examples" / "seed-openai.yaml").read_text().replace("http://127.0.0.1:8090/", mock_url + "/")
        if args.no_spend_logs:
            cfg = cfg.replace("general_settings:\n", "general_settings:\n  disable_spend_logs: true\n", 1)
        (tmp / "config.yaml").write_text(cfg)
        procs, dbs = [mock], []
        try:
            gws = {}
            for name in ("full", "empty"):
                db = Db(tmp, name, args.postgres)
                dbs.append(db)
                os.environ["DATABASE_URL"] = db.url
                gw, base = start([args.sluice, "--config", str(tmp / "config.yaml"), "--host", "127.0.0.1",
                                  "--port", "0", "--num_workers", "1"], gw_cpu, tmp / f"gateway-{name}.log")
                procs.append(gw)
                gws[name] = (gw, base, db)
            full, base, full_db = gws["full"]
            t0 = time.monotonic()
            teams = make_teams(base, args.teams)
            keys = make_keys(base, args.keys, teams)
            print(f"created {len(teams)} teams and {len(keys)} keys through the API in {time.monotonic() - t0:.1f} s; "
                  f"gateway RSS {rss_mb(full.pid):.1f} MB", flush=True)
            if args.logs:
                t0 = time.monotonic()
                full_db.seed_logs(args.logs, keys, teams)
                print(f"inserted {args.logs} spend-log rows and their daily aggregates in "
                      f"{time.monotonic() - t0:.1f} s", flush=True)
            if args.routes_only:
                print_routes(base, keys, teams, args)
                return 0
            empty_key = make_keys(gws["empty"][1], 1, [])[0]["key"]
            runs = {
                "master key, full": (full, base, MASTER),
                "virtual key, full": (full, base, keys[len(keys) // 2]["key"]),
                "virtual key, empty": (gws["empty"][0], gws["empty"][1], empty_key),
            }
            for gw, b, key in {(g.pid, b): (g, b, k) for g, b, k in runs.values()}.values():
                load(args.sluice, b, key, "1s", args.users, other_cpu, tmp / f"warm-{gw.pid}.json")
            per = {label: [] for label in runs}
            for rep in range(args.repeats):
                order = list(runs.items())
                # ABBA: the spend-log table grows run by run, so no side always runs last.
                for label, (gw, b, key) in order if rep % 2 == 0 else order[::-1]:
                    c0 = cpu_seconds(gw.pid)
                    j = load(args.sluice, b, key, args.duration, args.users, other_cpu,
                             tmp / f"{rep}-{label.replace(' ', '_').replace(',', '')}.json")
                    c1 = cpu_seconds(gw.pid)
                    total = j["aggregated"]
                    n, failures = total["requests"], total["failures"]
                    if failures:
                        print(f"{label}: {failures} failures; see {tmp}", file=sys.stderr)
                    us = (c1 - c0) / max(n, 1) * 1e6
                    per[label].append(us)
                    print(f"run {rep + 1} {label}: {n} requests, {total['rps']:.0f} req/s, "
                          f"{us:.1f} µs CPU/request", flush=True)
            med = {label: statistics.median(v) for label, v in per.items()}
            m, v, e = med["master key, full"], med["virtual key, full"], med["virtual key, empty"]
            print(f"\nmedian CPU per request: master key {m:.1f} µs, virtual key {v:.1f} µs "
                  f"({(v / m - 1) * 100:+.1f}%) with {len(keys)} keys; gateway RSS {rss_mb(full.pid):.1f} MB")
            print(f"virtual key with {len(keys)} keys, {len(teams)} teams, {args.logs} spend-log rows: {v:.1f} µs; "
                  f"on an empty database {e:.1f} µs ({(v / e - 1) * 100:+.1f}%; issue #21 allows +5%)")
            print_routes(base, keys, teams, args)
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
            for db in dbs:
                db.drop()
            unpin_postgres(postgres_affinity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
