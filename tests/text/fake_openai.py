"""A small OpenAI-compatible chat-completions server on 127.0.0.1 with scripted behaviour, for the real `openai`
client to talk to: it counts requests, records the Authorization header and the request bodies, and tracks how many
requests were in flight at once."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def ok(subtexts) -> dict:
    """A well-formed answer holding these sub-texts."""
    return {"content": json.dumps({"subtexts": list(subtexts)})}


def raw(content: str) -> dict:
    return {"content": content}


def status(code: int, retry_after: str | None = None) -> dict:
    return {"status": code, "retry_after": retry_after}


def sleep(seconds: float, then: dict | None = None) -> dict:
    return {"sleep": seconds, **(then or raw('{"subtexts": []}'))}


DROP = {"drop": True}


class FakeLLM:
    """`script[caption]` is a list of behaviours, one per request for that caption (the last one repeats);
    a caption without a script gets itself back as the single sub-text (always a valid answer)."""

    def __init__(self) -> None:
        self.script: dict[str, list[dict]] = {}
        self.requests = 0
        self.per_caption: dict[str, int] = defaultdict(int)
        self.auth: list[str] = []
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.requests += 1
                    fake.auth.append(self.headers.get("Authorization", ""))
                    fake.bodies.append(body)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._answer(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, body: dict) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                caption = body["messages"][-1]["content"].removeprefix("Caption: ")
                with fake._lock:
                    n = fake.per_caption[caption]
                    fake.per_caption[caption] += 1
                steps = fake.script.get(caption) or [ok([caption])]
                step = steps[min(n, len(steps) - 1)]
                if "sleep" in step:
                    time.sleep(step["sleep"])
                if step.get("drop"):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if "status" in step:
                    headers = {"Retry-After": step["retry_after"]} if step.get("retry_after") is not None else {}
                    return self._send(step["status"], {"error": {"message": f"scripted {step['status']}"}}, headers)
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": step["content"]}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _send(self, code: int, obj: dict, headers: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> "FakeLLM":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
