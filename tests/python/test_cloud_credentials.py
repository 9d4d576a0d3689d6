"""Cloud credential chains end to end: sluice's Bedrock deployments signed with credentials from
each AWS source, and its Vertex deployment with a token from the GCE metadata server. Every
credential service is a local stand-in following its public protocol (STS's Query API with XML
answers, the ECS container endpoint, EC2's IMDSv2, the metadata server); the model upstream is
`sluice mock --record`, whose `GET /mock/last` shows what sluice signed with."""

import concurrent.futures
import datetime
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway, start_mock

CHAT = [{"role": "user", "content": "hi"}]


class StandIn:
    """A loopback HTTP server answering with `handler(method, path, headers, body)` ->
    (status, content_type, body), keeping every request it saw."""

    def __init__(self, handler, delay: float = 0.0):
        self.seen = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.seen.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
                if delay:
                    threading.Event().wait(delay)
                status, ctype, text = handler(self.command, self.path, headers, body)
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = "http://" + self.addr
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def expiration(seconds: int) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sts_xml(action: str, key_id: str, token: str) -> str:
    return (
        f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{action}Result><Credentials>'
        f"<AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>secret-{key_id}</SecretAccessKey>"
        f"<SessionToken>{token}</SessionToken><Expiration>{expiration(3600)}</Expiration>"
        f"</Credentials></{action}Result></{action}Response>"
    )


def sts_handler(method, path, headers, body):
    form = dict(urllib.parse.parse_qsl(body))
    action = form.get("Action")
    if action == "AssumeRoleWithWebIdentity" and form.get("WebIdentityToken") == "eyJ.irsa-token":
        return 200, "text/xml", sts_xml(action, "ASIAIRSA", "irsa-session")
    if action == "AssumeRoleWithWebIdentity" and form.get("WebIdentityToken") == "eyJ.config-token":
        return 200, "text/xml", sts_xml(action, "ASIAWEBID", "webid-session")
    if action == "AssumeRole" and "Credential=AKIDBASE/" in headers.get("authorization", ""):
        return 200, "text/xml", sts_xml(action, "ASIAROLE", "role-session")
    err = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>"
    return 403, "text/xml", err


def bedrock(mock_url: str, **params) -> dict:
    return {"model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "api_base": mock_url, "aws_region_name": "us-east-1", **params}


def no_process_aws() -> dict:
    """The gateway's environment without anything of the machine's own AWS or Google setup."""
    return {"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "GOOGLE_APPLICATION_CREDENTIALS": ""}


def gateway_config(models, env: dict) -> str:
    text = render_config(models, {"master_key": MASTER_KEY})
    lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in env.items())
    return f"environment_variables:\n{lines}{text}"


def last(mock) -> dict:
    r = requests.get(mock.url + "/mock/last", timeout=10)
    assert r.status_code == 200
    return r.json()


def signed_with(seen: dict) -> tuple[str, str | None]:
    auth = seen["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential="), auth
    key_id = auth.split("Credential=", 1)[1].split("/", 1)[0]
    assert "/us-east-1/bedrock/aws4_request" in auth, auth
    token = seen["headers"].get("x-amz-security-token")
    if token is not None:
        assert "x-amz-security-token" in auth.split("SignedHeaders=", 1)[1].split(",", 1)[0], auth
    return key_id, token


@pytest.fixture(scope="module")
def mock(log_dir):
    m = start_mock(log_dir, "mock-creds", "--record")
    yield m
    m.stop()


@pytest.fixture(scope="module")
def sts():
    s = StandIn(sts_handler, delay=0.2)
    yield s
    s.stop()


def chat(gw, model: str):
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    return c.chat.completions.create(model=model, messages=CHAT)


def test_config_sources_sign_bedrock(log_dir, mock, sts, tmp_path):
    """aws_web_identity_token + aws_role_name, aws_role_name over keys, aws_profile_name."""
    creds = tmp_path / "credentials"
    creds.write_text("[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\naws_session_token = profile-token\n")
    models = [
        ("webid", bedrock(mock.url, aws_role_name="arn:aws:iam::1:role/webid", aws_web_identity_token="eyJ.config-token", aws_sts_endpoint=sts.url)),
        ("role", bedrock(mock.url, aws_access_key_id="AKIDBASE", aws_secret_access_key="base-secret", aws_role_name="arn:aws:iam::1:role/r", aws_session_name="litellm", aws_sts_endpoint=sts.url)),
        ("profile", bedrock(mock.url, aws_profile_name="dev")),
    ]
    gw = start_gateway(log_dir, "gateway-creds-config", gateway_config(models, {**no_process_aws(), "AWS_SHARED_CREDENTIALS_FILE": str(creds)}))
    try:
        assert chat(gw, "webid").choices[0].message.content
        assert signed_with(last(mock)) == ("ASIAWEBID", "webid-session")
        assert chat(gw, "role").choices[0].message.content
        assert signed_with(last(mock)) == ("ASIAROLE", "role-session")
        role_calls = [s for s in sts.seen if "Action=AssumeRole&" in s["body"]]
        assert "RoleSessionName=litellm" in role_calls[-1]["body"]
        assert chat(gw, "profile").choices[0].message.content
        assert signed_with(last(mock)) == ("AKIDPROFILE", "profile-token")
    finally:
        gw.stop()


def test_irsa_from_the_environment_one_sts_call_for_concurrent_requests(log_dir, mock, sts, tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJ.irsa-token")
    env = {**no_process_aws(), "AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": "arn:aws:iam::1:role/irsa", "AWS_ENDPOINT_URL_STS": sts.url}
    gw = start_gateway(log_dir, "gateway-creds-irsa", gateway_config([("irsa", bedrock(mock.url))], env))
    try:
        before = len(sts.seen)
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: chat(gw, "irsa"), range(12)))
        assert all(a.choices[0].message.content for a in answers)
        irsa_calls = [s for s in sts.seen[before:] if "eyJ.irsa-token" in s["body"]]
        assert len(irsa_calls) == 1, sts.seen[before:]
        assert signed_with(last(mock)) == ("ASIAIRSA", "irsa-session")
    finally:
        gw.stop()


def test_ecs_container_credentials(log_dir, mock, tmp_path):
    def ecs(method, path, headers, body):
        if path == "/v2/credentials/task" and headers.get("authorization") == "ecs-auth":
            return 200, "application/json", json.dumps({"AccessKeyId": "ASIAECS", "SecretAccessKey": "s", "Token": "ecs-session", "Expiration": expiration(3600)})
        return 401, "application/json", "{}"

    agent = StandIn(ecs)
    env = {**no_process_aws(), "AWS_CONTAINER_CREDENTIALS_FULL_URI": agent.url + "/v2/credentials/task", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ecs-auth"}
    gw = start_gateway(log_dir, "gateway-creds-ecs", gateway_config([("ecs", bedrock(mock.url))], env))
    try:
        assert chat(gw, "ecs").choices[0].message.content
        assert signed_with(last(mock)) == ("ASIAECS", "ecs-session")
    finally:
        gw.stop()
        agent.stop()


def test_ec2_imds_v2(log_dir, mock):
    def imds(method, path, headers, body):
        if method == "PUT" and path == "/latest/api/token" and headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
            return 200, "text/plain", "imds-token"
        if headers.get("x-aws-ec2-metadata-token") != "imds-token":
            return 401, "text/plain", ""
        if path == "/latest/meta-data/iam/security-credentials/":
            return 200, "text/plain", "web-role"
        if path == "/latest/meta-data/iam/security-credentials/web-role":
            return 200, "text/plain", json.dumps({"Code": "Success", "AccessKeyId": "ASIAEC2", "SecretAccessKey": "s", "Token": "ec2-session", "Expiration": expiration(21600)})
        return 404, "text/plain", ""

    ec2 = StandIn(imds)
    env = {**no_process_aws(), "AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": ec2.url}
    gw = start_gateway(log_dir, "gateway-creds-imds", gateway_config([("ec2", bedrock(mock.url))], env))
    try:
        assert chat(gw, "ec2").choices[0].message.content
        assert signed_with(last(mock)) == ("ASIAEC2", "ec2-session")
        assert [s["method"] for s in ec2.seen] == ["PUT", "GET", "GET"]
    finally:
        gw.stop()
        ec2.stop()


def test_no_aws_credentials_says_what_to_set(log_dir, mock):
    gw = start_gateway(log_dir, "gateway-creds-none", gateway_config([("none", bedrock(mock.url))], no_process_aws()))
    try:
        with pytest.raises(openai.AuthenticationError) as e:
            chat(gw, "none")
        message = str(e.value)
        assert "AWS_ACCESS_KEY_ID" in message and "AWS_PROFILE" in message and "AWS_WEB_IDENTITY_TOKEN_FILE" in message, message
    finally:
        gw.stop()


def test_vertex_token_from_the_metadata_server(log_dir, mock):
    def metadata(method, path, headers, body):
        if headers.get("metadata-flavor") != "Google":
            return 403, "text/plain", "Missing Metadata-Flavor:Google header."
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            return 200, "application/json", json.dumps({"access_token": "ya29.workload", "expires_in": 3599, "token_type": "Bearer"})
        return 404, "text/plain", ""

    md = StandIn(metadata, delay=0.2)
    vertex = {
        "model": "vertex_ai/gemini-1.5-pro",
        "api_base": mock.url + "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro",
        "vertex_project": "p",
        "vertex_location": "us-central1",
    }
    env = {**no_process_aws(), "GCE_METADATA_HOST": md.addr}
    gw = start_gateway(log_dir, "gateway-creds-gce", gateway_config([("gemini", vertex)], env))
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: chat(gw, "gemini"), range(8)))
        assert all(a.choices[0].message.content for a in answers)
        assert last(mock)["headers"]["authorization"] == "Bearer ya29.workload"
        assert len(md.seen) == 1, md.seen
    finally:
        gw.stop()
        md.stop()
