"""How long the admin UI's pages take to answer with many keys: each route a page calls, timed
from the client (median and worst of N calls), against a running sluice.

    python bench/ui_pages.py --url http://127.0.0.1:4000 --key sk-1234 --seed-keys 10000

`--seed-keys N` first makes keys through `/key/generate` until N exist (each aliased
`bench-ui-<n>`). The routes are those the pages call as an admin: the shell, `/key/list`
(page 1 and the last page, 25 a page), `/key/list` by alias, `/v1/model/info`,
`/user/daily/activity` over 30 days, `/spend/logs` (50 rows), `/team/list`, `/user/list` and
`/ui/api/live`.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

import requests


def timed(session: requests.Session, url: str, n: int) -> tuple[float, float, int]:
    took = []
    status = 0
    for _ in range(n):
        t = time.perf_counter()
        r = session.get(url, timeout=60)
        took.append((time.perf_counter() - t) * 1000)
        status = r.status_code
    return statistics.median(took), max(took), status


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:4000")
    p.add_argument("--key", default="sk-1234")
    p.add_argument("--seed-keys", type=int, default=0)
    p.add_argument("--calls", type=int, default=20)
    a = p.parse_args()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {a.key}"
    have = s.get(f"{a.url}/key/list", params={"size": 1}, timeout=60).json()["total_count"]
    for n in range(have, a.seed_keys):
        r = s.post(f"{a.url}/key/generate", json={"key_alias": f"bench-ui-{n}"}, timeout=60)
        r.raise_for_status()
    total = s.get(f"{a.url}/key/list", params={"size": 1}, timeout=60).json()["total_count"]
    last = max(1, -(-total // 25))
    today = datetime.date.today()
    month = {"start_date": str(today - datetime.timedelta(days=29)), "end_date": str(today), "page_size": 1000}
    q = lambda d: "?" + "&".join(f"{k}={v}" for k, v in d.items())  # noqa: E731
    routes = [
        ("/ui/keys (the shell)", "/ui/keys"),
        ("/key/list page 1", "/key/list?return_full_object=true&page=1&size=25"),
        (f"/key/list page {last}", f"/key/list?return_full_object=true&page={last}&size=25"),
        ("/key/list by alias", "/key/list?return_full_object=true&key_alias=bench-ui-5000"),
        ("/v1/model/info", "/v1/model/info"),
        ("/user/daily/activity 30 days", "/user/daily/activity" + q(month)),
        ("/spend/logs 50 rows", "/spend/logs?summarize=false&page=1&page_size=50"),
        ("/team/list", "/team/list"),
        ("/user/list", "/user/list?page=1&page_size=100"),
        ("/ui/api/live", "/ui/api/live"),
    ]
    print(f"{total} keys; {a.calls} calls each")
    print(f"| route | median ms | worst ms | status |\n|---|---|---|---|")
    for name, path in routes:
        med, worst, status = timed(s, a.url + path, a.calls)
        print(f"| {name} | {med:.1f} | {worst:.1f} | {status} |")


if __name__ == "__main__":
    main()
