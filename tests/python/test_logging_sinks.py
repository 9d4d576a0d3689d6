"""LiteLLM's `s3` and `datadog` logging callbacks, end to end, against real protocol endpoints on
loopback (written from LiteLLM's `s3_v2.py` and `datadog/datadog.py`).

`s3`: moto's S3 server (in a thread of this process) with request signing enforced once the
bucket is made, so sluice's SigV4 PUTs are checked as S3 checks them; the objects are listed and
read back with boto3. `datadog`: a stand-in for Datadog's logs intake (POST /api/v2/logs, the
key in DD-API-KEY, gzip, 202), in stdlib `http.server`.

The gateway, `sluice mock` and the helpers are those of `test_logging_callbacks.py`.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

from conftest import MASTER_KEY, callback_failures, start_gateway, wait_for_failures
from conftest import refused_start as conftest_refused_start
from test_logging_callbacks import chat, logging_config, new_key

BUCKET = "sluice-logs"
REGION = "us-east-1"


class Moto:
    """moto's S3 (and IAM) server: a bucket, and an IAM user whose key signs every request."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        anyone = {"endpoint_url": self.url, "region_name": REGION}
        iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **anyone)
        iam.create_user(UserName="sluice")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="sluice", PolicyName="logs", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="sluice")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.s3 = boto3.client("s3", aws_access_key_id=self.key_id, aws_secret_access_key=self.secret, **anyone)
        self.s3.create_bucket(Bucket=BUCKET)
        # From here on every request must be signed by a key IAM knows, with a signature that
        # matches: a PUT sluice signs wrong is refused, as S3 would refuse it.
        self.previous_auth = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    def objects(self, prefix: str) -> dict[str, dict]:
        """Every object under `prefix`: its key → its JSON."""
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                out[item["Key"]] = json.loads(body)
        return out

    def wait_for(self, prefix: str, count: int, timeout: float = 15.0) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.objects(prefix)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{count} objects under {prefix!r} expected within {timeout} s; got {self.objects(prefix)}")

    def stop(self) -> None:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = self.previous_auth
        self.server.stop()


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m
    m.stop()


def s3_litellm(lists: str, params: dict[str, object]) -> str:
    """`litellm_settings` lines: the callback lists, then `s3_callback_params`."""
    lines = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in params.items())
    return lists + "  s3_callback_params:\n" + lines


def s3_gateway(log_dir, mock, name: str, lists: str, params: dict[str, object], env: dict[str, str]):
    db = f"sqlite://{log_dir / (name + '-' + uuid.uuid4().hex[:8] + '.db')}"
    return start_gateway(log_dir, name, logging_config(mock.url, db, s3_litellm(lists, params), env))


def test_each_call_becomes_one_object_in_the_bucket(log_dir, mock, moto):
    folder = "logs-" + uuid.uuid4().hex[:6]
    gw = s3_gateway(
        log_dir,
        mock,
        "s3-logged",
        '  callbacks: ["prometheus"]\n  success_callback: ["s3"]\n  failure_callback: ["s3"]\n',
        {
            "s3_bucket_name": BUCKET,
            "s3_region_name": REGION,
            "s3_endpoint_url": moto.url,
            "s3_aws_access_key_id": moto.key_id,
            "s3_aws_secret_access_key": "os.environ/SLUICE_TEST_S3_SECRET",
            "s3_path": folder,
            "s3_use_key_prefix": True,
            "s3_flush_interval": 1,
        },
        {"SLUICE_TEST_S3_SECRET": moto.secret},
    )
    try:
        alias = "s3-key-" + uuid.uuid4().hex[:6]
        made = new_key(gw, key_alias=alias)
        key, key_hash = made["key"], made["token"]
        ok = chat(gw, key, "fake-openai-endpoint")
        assert ok.status_code == 200, ok.text
        bad = chat(gw, key, "dead")
        assert bad.status_code >= 500, bad.text
        ok_id, bad_id = ok.headers["x-litellm-call-id"], bad.headers["x-litellm-call-id"]

        objects = moto.wait_for(folder + "/", 2)
        by_id = {o["id"]: (k, o) for k, o in objects.items()}
        assert set(by_id) == {ok_id, bad_id}, objects.keys()

        # LiteLLM's layout: s3_path / key alias / date / time-H-M-S-micros_{id}.json
        object_key, record = by_id[ok_id]
        layout = rf"^{folder}/{alias}/(\d{{4}}-\d{{2}}-\d{{2}})/time-\d{{2}}-\d{{2}}-\d{{2}}-\d{{6}}_{re.escape(ok_id)}\.json$"
        match = re.match(layout, object_key)
        assert match, object_key
        assert match.group(1) == time.strftime("%Y-%m-%d", time.gmtime(record["startTime"]))
        assert record["status"] == "success"
        assert record["model"] == "any" and record["model_group"] == "fake-openai-endpoint"
        usage = ok.json()["usage"]
        assert record["prompt_tokens"] == usage["prompt_tokens"] > 0
        assert record["completion_tokens"] == usage["completion_tokens"] > 0
        assert record["response_cost"] == pytest.approx(float(ok.headers["x-litellm-response-cost"]))
        assert record["response_cost"] > 0
        assert record["metadata"]["user_api_key_hash"] == key_hash
        assert record["metadata"]["user_api_key_alias"] == alias

        _, failure = by_id[bad_id]
        assert failure["status"] == "failure" and failure["model_group"] == "dead"
        assert failure["error_information"]["error_code"] == str(bad.status_code)

        head = moto.s3.head_object(Bucket=BUCKET, Key=object_key)
        assert head["ContentType"] == "application/json"
        # The raw key is written nowhere, nor the AWS secret.
        for body in objects.values():
            text = json.dumps(body)
            assert key not in text and moto.secret not in text
        assert callback_failures(gw, "s3") == 0
    finally:
        gw.stop()
    assert moto.secret not in gw.stderr_path.read_text(errors="replace")


@pytest.mark.parametrize(
    "case",
    ["wrong-secret", "missing-bucket"],
)
def test_a_refused_put_is_counted_and_costs_the_requests_nothing(log_dir, mock, moto, case):
    folder = "refused-" + uuid.uuid4().hex[:6]
    params = {
        "s3_bucket_name": BUCKET if case == "wrong-secret" else "no-such-bucket-" + uuid.uuid4().hex[:6],
        "s3_endpoint_url": moto.url,
        "s3_aws_access_key_id": moto.key_id,
        "s3_aws_secret_access_key": "not-the-secret" if case == "wrong-secret" else moto.secret,
        "s3_path": folder,
        "s3_flush_interval": 0.5,
    }
    gw = s3_gateway(log_dir, mock, "s3-" + case, '  callbacks: ["prometheus", "s3"]\n', params, {})
    try:
        for _ in range(5):
            r = chat(gw, MASTER_KEY, "fake-openai-endpoint")
            assert r.status_code == 200, r.text
        wait_for_failures(gw, "s3")
        assert moto.objects(folder + "/") == {}
        # Still serving after the failures.
        assert chat(gw, MASTER_KEY, "fake-openai-endpoint").status_code == 200
    finally:
        gw.stop()
    log = gw.stderr_path.read_text(errors="replace")
    assert ("SignatureDoesNotMatch" if case == "wrong-secret" else "NoSuchBucket") in log, log[-2000:]
    assert "not-the-secret" not in log


def test_the_s3_logger_assumes_its_role_through_sts(log_dir, mock, moto):
    """`s3_aws_role_name`: STS AssumeRole at moto (signed with the base key, which may only assume
    the role), then the PUTs signed with the role's temporary credentials and session token —
    both checked by moto as AWS checks them."""
    tag = uuid.uuid4().hex[:6]
    anyone = {"endpoint_url": moto.url, "region_name": REGION}
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")  # setting up IAM, unsigned
    try:
        iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **anyone)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
        role_arn = iam.create_role(RoleName=f"logs-{tag}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        s3_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_role_policy(RoleName=f"logs-{tag}", PolicyName="logs", PolicyDocument=json.dumps(s3_only))
        iam.create_user(UserName=f"assumer-{tag}")
        assume_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
        iam.put_user_policy(UserName=f"assumer-{tag}", PolicyName="assume", PolicyDocument=json.dumps(assume_only))
        key = iam.create_access_key(UserName=f"assumer-{tag}")["AccessKey"]
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    folder = "role-" + tag
    gw = s3_gateway(
        log_dir,
        mock,
        "s3-role",
        '  callbacks: ["prometheus"]\n  success_callback: ["s3"]\n',
        {
            "s3_bucket_name": BUCKET,
            "s3_region_name": REGION,
            "s3_endpoint_url": moto.url,
            "s3_aws_access_key_id": key["AccessKeyId"],
            "s3_aws_secret_access_key": "os.environ/SLUICE_TEST_S3_SECRET",
            "s3_aws_role_name": role_arn,
            "s3_aws_session_name": "sluice-logs",
            "s3_aws_sts_endpoint": moto.url,
            "s3_path": folder,
            "s3_flush_interval": 1,
        },
        {"SLUICE_TEST_S3_SECRET": key["SecretAccessKey"]},
    )
    try:
        made = new_key(gw)
        ok = chat(gw, made["key"], "fake-openai-endpoint")
        assert ok.status_code == 200, ok.text
        objects = moto.wait_for(folder + "/", 1)
        assert [o["id"] for o in objects.values()] == [ok.headers["x-litellm-call-id"]]
        assert callback_failures(gw, "s3") == 0
    finally:
        gw.stop()


def refused_start(log_dir, mock, name: str, litellm: str, env: dict[str, str]) -> str:
    cfg = logging_config(mock.url, "sqlite://" + str(log_dir / "never.db"), litellm, env)
    return conftest_refused_start(log_dir, name, cfg, ("AWS_", "DD_", "LITELLM_DD_"))


def test_an_s3_callback_without_a_bucket_stops_the_start(log_dir, mock):
    err = refused_start(
        log_dir, mock, "s3-no-bucket", s3_litellm('  success_callback: ["s3"]\n', {"s3_region_name": REGION}), {}
    )
    assert "s3_callback_params.s3_bucket_name" in err and "litellm_settings.success_callback[0]" in err, err


# ---- datadog ----


class Intake:
    """A stand-in for Datadog's logs intake: POST /api/v2/logs with the right DD-API-KEY, gzip
    or not, answered 202; anything else 403 (as Datadog answers a bad key) or 404."""

    def __init__(self, api_key: str) -> None:
        self.requests: list[tuple[dict, list]] = []
        self.refused = 0
        self.lock = threading.Lock()
        intake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path != "/api/v2/logs":
                    return self.answer(404, b'{"errors":["not found"]}')
                if headers.get("dd-api-key") != api_key:
                    with intake.lock:
                        intake.refused += 1
                    return self.answer(403, b'{"errors":["Forbidden"]}')
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                with intake.lock:
                    intake.requests.append((headers, json.loads(body)))
                self.answer(202, b"{}")

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def items(self) -> list[dict]:
        with self.lock:
            return [item for _, body in self.requests for item in body]

    def wait_for(self, call_id: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.items():
                if json.loads(item["message"])["id"] == call_id:
                    return item
            time.sleep(0.1)
        raise AssertionError(f"no log item for {call_id} within {timeout} s; got {self.items()}")

    def stop(self) -> None:
        self.server.shutdown()


def test_calls_reach_the_datadog_intake_in_litellms_shape(log_dir, mock):
    dd_key = "dd-key-" + uuid.uuid4().hex[:8]
    intake = Intake(dd_key)
    db = f"sqlite://{log_dir / ('datadog-' + uuid.uuid4().hex[:8] + '.db')}"
    cfg = logging_config(
        mock.url,
        db,
        '  callbacks: ["prometheus", "datadog"]\n',
        {
            "DD_API_KEY": dd_key,
            "DD_SITE": "datadoghq.com",
            "DD_BASE_URL": intake.url,
            "DD_SERVICE": "sluice-gw",
            "DD_ENV": "test",
            "HOSTNAME": "gw-host-1",
        },
    )
    gw = start_gateway(log_dir, "datadog", cfg)
    try:
        made = new_key(gw, key_alias="dd-" + uuid.uuid4().hex[:6], metadata={"tags": ["from-key"]})
        key, key_hash = made["key"], made["token"]
        ok = chat(gw, key, "fake-openai-endpoint")
        assert ok.status_code == 200, ok.text
        bad = chat(gw, key, "dead")
        assert bad.status_code >= 500, bad.text

        item = intake.wait_for(ok.headers["x-litellm-call-id"])
        assert sorted(item) == ["ddsource", "ddtags", "hostname", "message", "service", "status"]
        assert item["ddsource"] == "litellm"
        assert item["service"] == "sluice-gw"
        assert item["hostname"] == "gw-host-1"
        assert item["status"] == "info"
        tags = item["ddtags"].split(",")
        for tag in ["env:test", "service:sluice-gw", "version:unknown", "HOSTNAME:gw-host-1", "request_tag:from-key"]:
            assert tag in tags, tags
        record = json.loads(item["message"])
        assert record["status"] == "success" and record["model_group"] == "fake-openai-endpoint"
        assert record["prompt_tokens"] == ok.json()["usage"]["prompt_tokens"] > 0
        assert record["response_cost"] == pytest.approx(float(ok.headers["x-litellm-response-cost"]))
        assert record["metadata"]["user_api_key_hash"] == key_hash

        failure = intake.wait_for(bad.headers["x-litellm-call-id"])
        assert failure["status"] == "error"
        assert json.loads(failure["message"])["status"] == "failure"

        with intake.lock:
            requests_seen = list(intake.requests)
        for headers, body in requests_seen:
            assert headers["content-encoding"] == "gzip" and headers["content-type"] == "application/json"
            assert isinstance(body, list)
            assert key not in json.dumps(body)
        assert intake.refused == 0
    finally:
        gw.stop()
        intake.stop()
    assert dd_key not in gw.stderr_path.read_text(errors="replace")


def test_a_wrong_datadog_key_is_counted_and_costs_the_requests_nothing(log_dir, mock):
    intake = Intake("the-right-key")
    db = f"sqlite://{log_dir / ('datadog-bad-' + uuid.uuid4().hex[:8] + '.db')}"
    cfg = logging_config(
        mock.url,
        db,
        '  callbacks: ["prometheus"]\n  success_callback: ["datadog"]\n',
        {"DD_API_KEY": "a-wrong-key", "DD_SITE": "datadoghq.com", "DD_BASE_URL": intake.url},
    )
    gw = start_gateway(log_dir, "datadog-bad-key", cfg)
    try:
        started = time.monotonic()
        for _ in range(20):
            r = chat(gw, MASTER_KEY, "fake-openai-endpoint")
            assert r.status_code == 200, r.text
        assert time.monotonic() - started < 10
        wait_for_failures(gw, "datadog")
        assert intake.refused >= 1 and intake.items() == []
    finally:
        gw.stop()
        intake.stop()
    log = gw.stderr_path.read_text(errors="replace")
    assert "403" in log and "a-wrong-key" not in log


def test_a_datadog_callback_without_its_key_stops_the_start(log_dir, mock):
    err = refused_start(log_dir, mock, "datadog-no-key", '  callbacks: ["datadog"]\n', {"DD_SITE": "datadoghq.com"})
    assert "DD_API_KEY" in err and "litellm_settings.callbacks[0]" in err, err
