"""A fake OpenAI-compatible HTTP server for tests.

Serves ``POST /v1/chat/completions`` (streaming and not), ``POST /v1/embeddings``, the
Anthropic messages API (``POST /v1/messages``, streaming and not, Anthropic's error
bodies: for a litellm-routed ``anthropic/…`` model) and a small control API, on
127.0.0.1 at a random free port, from a background thread.

In-process use::

    server = FakeLLMServer().start()
    server.enqueue("Hello there")
    ...  # point the client at server.url / server.env()
    server.stop()

Cross-process use (the CLI runs in a subprocess): pass ``server.env()`` to the
subprocess; script replies either with ``server.enqueue(...)`` in the test process (the
server lives there), or from anywhere with ``POST {url}/_control/enqueue`` and a JSON body
such as ``{"text": "hi"}``, ``{"error": 429, "message": "slow down"}`` or
``{"cut": "partial"}``. A JSON file named by ``script_file=`` (a list of such objects) is
read once at start and its entries queued.

Run as a script (``python tests/fakeserver.py``) it prints its URL and serves until
interrupted.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_REPLY = "OK"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass
class Scripted:
    """One scripted response: ``kind`` is "text", "error", "cut" or "truncated"."""

    kind: str
    text: str = ""
    status: int = 200
    message: str = ""
    chunk_size: int = 0  # 0 means: split text into words
    delay: float = 0.0  # seconds to wait before answering


def _split_chunks(text: str, size: int) -> list[str]:
    if not text:
        return []
    if size > 0:
        return [text[i : i + size] for i in range(0, len(text), size)]
    parts: list[str] = []
    current = ""
    for ch in text:
        current += ch
        if ch == " ":
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts


def fake_vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector for ``text`` (hash based)."""
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for i in range(0, len(digest), 4):
            (n,) = struct.unpack("<I", digest[i : i + 4])
            out.append(n / 0xFFFFFFFF * 2.0 - 1.0)
        counter += 1
    vec = out[:dim]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _message_text(messages: Any) -> str:
    parts: list[str] = []
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                content = m.get("content")
                if isinstance(content, str):
                    parts.append(content)
                elif isinstance(content, list):
                    for c in content:
                        if isinstance(c, dict) and isinstance(c.get("text"), str):
                            parts.append(c["text"])
    return " ".join(parts)


class _QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print clients hanging up."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FakeLLMServer:
    """An OpenAI-compatible test server; see the module docstring."""

    def __init__(
        self,
        *,
        default_reply: str = DEFAULT_REPLY,
        embedding_dim: int = 8,
        chunk_size: int = 0,
        script_file: str | Path | None = None,
        api_key: str = "sk-test",
        model: str = "gpt-4o-mini",
        retry_after_ms: int | None = 10,
    ) -> None:
        self.default_reply = default_reply
        # Sent as ``retry-after-ms`` with 408/409/429/5xx answers, as OpenAI does: clients
        # that honour it (the openai SDK) retry after that long instead of ~0.5 s.
        self.retry_after_ms = retry_after_ms
        self.embedding_dim = embedding_dim
        self.chunk_size = chunk_size
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if script_file is not None:
            self.load_script(script_file)

    # -- scripting -----------------------------------------------------------------
    def enqueue(self, text: str, *, chunk_size: int | None = None, delay: float = 0.0) -> None:
        """The next chat reply is ``text`` (streamed in word chunks, or ``chunk_size``).

        ``delay`` seconds pass before the server answers (to provoke client timeouts).
        """
        size = self.chunk_size if chunk_size is None else chunk_size
        self._push(Scripted("text", text=text, chunk_size=size, delay=delay))

    def enqueue_error(self, status: int, message: str = "error", *, delay: float = 0.0) -> None:
        """The next request (chat or embeddings) fails with HTTP ``status``."""
        self._push(Scripted("error", status=status, message=message, delay=delay))

    def enqueue_cut_stream(
        self, partial_text: str, *, chunk_size: int | None = None, clean: bool = False
    ) -> None:
        """The next chat reply sends ``partial_text`` then stops without a finish or [DONE].

        By default the connection is dropped abruptly; with ``clean=True`` the HTTP body
        ends properly, just without the final chunk and ``data: [DONE]``.
        """
        size = self.chunk_size if chunk_size is None else chunk_size
        kind = "truncated" if clean else "cut"
        self._push(Scripted(kind, text=partial_text, chunk_size=size))

    def enqueue_spec(self, spec: dict[str, Any]) -> None:
        """Queue one JSON-style spec.

        ``{"text": ...}`` | ``{"error": status, "message": ...}`` | ``{"cut": partial}``
        (``"clean": true`` for a tidy cut); optional ``"chunk_size"`` and ``"delay"``.
        """
        size = spec.get("chunk_size")
        delay = float(spec.get("delay", 0.0))
        if "error" in spec:
            self.enqueue_error(int(spec["error"]), str(spec.get("message", "error")), delay=delay)
        elif "cut" in spec:
            self.enqueue_cut_stream(
                str(spec["cut"]), chunk_size=size, clean=bool(spec.get("clean", False))
            )
        elif "text" in spec:
            self.enqueue(str(spec["text"]), chunk_size=size, delay=delay)
        else:
            raise ValueError(f"bad fake-server spec: {spec!r}")

    def load_script(self, path: str | Path) -> None:
        """Queue every spec in a JSON file holding a list (or one object)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for spec in data if isinstance(data, list) else [data]:
            self.enqueue_spec(spec)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.paths.clear()
            self.headers.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _push(self, item: Scripted) -> None:
        with self._lock:
            self._queue.append(item)

    def _pop(self) -> Scripted | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _pop_error(self) -> Scripted | None:
        """Pop the next item only if it is an error (embeddings ignore text replies)."""
        with self._lock:
            if self._queue and self._queue[0].kind == "error":
                return self._queue.popleft()
            return None

    # -- inspection ----------------------------------------------------------------
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            if not self.requests:
                raise AssertionError("the fake LLM server received no request")
            return self.requests[-1]

    def last_messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of the last chat request."""
        with self._lock:
            for path, body in zip(reversed(self.paths), reversed(self.requests), strict=True):
                if path.endswith("/chat/completions"):
                    messages: list[dict[str, Any]] = body.get("messages", [])
                    return messages
        raise AssertionError("the fake LLM server received no chat request")

    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                b
                for p, b in zip(self.paths, self.requests, strict=True)
                if p.endswith("/chat/completions")
            ]

    def anthropic_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                b for p, b in zip(self.paths, self.requests, strict=True) if p.endswith("/messages")
            ]

    def embedding_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                b
                for p, b in zip(self.paths, self.requests, strict=True)
                if p.endswith("/embeddings")
            ]

    # -- lifecycle -----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def env(self) -> dict[str, str]:
        """Environment variables that point an OpenAI client (and litellm) here."""
        return {
            "OPENAI_API_BASE": self.url,
            "OPENAI_BASE_URL": self.url,
            "OPENAI_API_KEY": self.api_key,
        }

    def start(self, port: int = 0) -> FakeLLMServer:
        """Serve in a background thread on ``port`` (0: a free one); returns self."""
        handler = _make_handler(self)
        self._httpd = _QuietServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-llm-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from handler threads) ------------------------------
    def _record(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.paths.append(path)
            self.requests.append(body)
            self.headers.append(headers)


def _make_handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        # -- helpers ---------------------------------------------------------------
        def _read_json(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            try:
                data = json.loads(raw)
            except ValueError:
                return {"_raw": raw.decode("utf-8", "replace")}
            return data if isinstance(data, dict) else {"_body": data}

        def _send_json(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            if server.retry_after_ms is not None and (status in (408, 409, 429) or status >= 500):
                self.send_header("retry-after-ms", str(server.retry_after_ms))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def _send_error(self, status: int, message: str) -> None:
            code = "model_not_found" if status == 404 else None
            if status == 401:
                code = "invalid_api_key"
            self._send_json(
                status,
                {
                    "error": {
                        "message": message,
                        "type": ERROR_TYPES.get(status, "server_error"),
                        "param": None,
                        "code": code,
                    }
                },
            )

        # -- routes ----------------------------------------------------------------
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            if path.endswith("/models"):
                self._send_json(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": server.model, "object": "model", "owned_by": "fake"}],
                    },
                )
            elif path == "/_control/health":
                self._send_json(200, {"ok": True, "pending": server.pending()})
            else:
                self._send_error(404, f"no route {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            body = self._read_json()
            if path.startswith("/_control/"):
                self._control(path, body)
                return
            server._record(path, body, {k.lower(): v for k, v in self.headers.items()})
            if path.endswith("/chat/completions"):
                self._chat(body)
            elif path.endswith("/messages"):
                self._anthropic(body)
            elif path.endswith("/embeddings"):
                self._embeddings(body)
            else:
                self._send_error(404, f"no route {self.path}")

        def _control(self, path: str, body: dict[str, Any]) -> None:
            try:
                if path == "/_control/enqueue":
                    specs = body.get("_body") if "_body" in body else [body]
                    for spec in specs or []:
                        server.enqueue_spec(spec)
                elif path == "/_control/clear":
                    server.clear()
                else:
                    self._send_error(404, f"no control route {path}")
                    return
            except (ValueError, TypeError) as err:
                self._send_error(400, str(err))
                return
            self._send_json(200, {"ok": True, "pending": server.pending()})

        def _chat(self, body: dict[str, Any]) -> None:
            item = server._pop() or Scripted(
                "text", text=server.default_reply, chunk_size=server.chunk_size
            )
            if item.delay:
                time.sleep(item.delay)
            if item.kind == "error":
                self._send_error(item.status, item.message)
                return
            model = str(body.get("model") or server.model)
            prompt_tokens = _count_tokens(_message_text(body.get("messages")))
            completion_tokens = _count_tokens(item.text)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            created = int(time.time())
            ident = f"chatcmpl-fake{len(server.requests)}"
            if not body.get("stream"):
                if item.kind in ("cut", "truncated"):
                    # Non-streaming cut: promise a body, send part of it, then drop.
                    payload = json.dumps({"id": ident, "choices": [{"message": item.text}]})
                    raw = payload.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw) + 100))
                    self.end_headers()
                    self.wfile.write(raw[: len(raw) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send_json(
                    200,
                    {
                        "id": ident,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": item.text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )
                return
            self._stream(item, ident, created, model, usage, body)

        def _stream(
            self,
            item: Scripted,
            ident: str,
            created: int,
            model: str,
            usage: dict[str, int],
            body: dict[str, Any],
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
                return {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            def send(data: str) -> None:
                raw = f"data: {data}\n\n".encode()
                self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                self.wfile.flush()

            send(json.dumps(chunk({"role": "assistant", "content": ""}, None)))
            for part in _split_chunks(item.text, item.chunk_size):
                send(json.dumps(chunk({"content": part}, None)))
            if item.kind == "cut":
                # Drop the connection mid-stream: no final chunk, no [DONE], and the
                # chunked body is never terminated.
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if item.kind == "truncated":
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            final = chunk({}, "stop")
            options = body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                send(json.dumps(final))
                usage_chunk = chunk({}, None)
                usage_chunk["choices"] = []
                usage_chunk["usage"] = usage
                send(json.dumps(usage_chunk))
            else:
                final["usage"] = usage
                send(json.dumps(final))
            send("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _anthropic(self, body: dict[str, Any]) -> None:
            """Anthropic's messages API: the same queue, Anthropic's shapes."""
            item = server._pop() or Scripted(
                "text", text=server.default_reply, chunk_size=server.chunk_size
            )
            if item.delay:
                time.sleep(item.delay)
            if item.kind == "error":
                kind = ANTHROPIC_ERROR_TYPES.get(item.status, "api_error")
                self._send_json(
                    item.status,
                    {"type": "error", "error": {"type": kind, "message": item.message}},
                )
                return
            system = body.get("system")
            if isinstance(system, str):
                system = [{"role": "system", "content": system}]
            elif isinstance(system, list):
                system = [{"role": "system", "content": system}]
            text = _message_text([*(system or []), *(body.get("messages") or [])])
            usage = {
                "input_tokens": _count_tokens(text),
                "output_tokens": _count_tokens(item.text),
            }
            message = {
                "id": f"msg_fake{len(server.requests)}",
                "type": "message",
                "role": "assistant",
                "model": str(body.get("model") or "claude-fake"),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
            }
            if not body.get("stream"):
                message.update(
                    content=[{"type": "text", "text": item.text}],
                    stop_reason="end_turn",
                    usage=usage,
                )
                self._send_json(200, message)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def send(event: str, data: dict[str, Any]) -> None:
                raw = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                self.wfile.flush()

            send("message_start", {"type": "message_start", "message": message})
            block = {"type": "text", "text": ""}
            start = {"type": "content_block_start", "index": 0, "content_block": block}
            send("content_block_start", start)
            for part in _split_chunks(item.text, item.chunk_size):
                delta = {"type": "text_delta", "text": part}
                send(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            if item.kind == "cut":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if item.kind != "truncated":
                send("content_block_stop", {"type": "content_block_stop", "index": 0})
                send(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": usage["output_tokens"]},
                    },
                )
                send("message_stop", {"type": "message_stop"})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _embeddings(self, body: dict[str, Any]) -> None:
            item = server._pop_error()
            if item is not None:
                if item.delay:
                    time.sleep(item.delay)
                self._send_error(item.status, item.message)
                return
            raw_input = body.get("input", [])
            texts = [raw_input] if isinstance(raw_input, str) else list(raw_input)
            dim = int(body.get("dimensions") or server.embedding_dim)
            data = [
                {"object": "embedding", "index": i, "embedding": fake_vector(str(t), dim)}
                for i, t in enumerate(texts)
            ]
            tokens = sum(_count_tokens(str(t)) for t in texts)
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": str(body.get("model") or "text-embedding-3-small"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    return Handler


def main() -> None:  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server.")
    parser.add_argument("--script", help="JSON file of scripted replies")
    parser.add_argument("--dim", type=int, default=8, help="embedding dimension")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args()
    server = FakeLLMServer(script_file=args.script, embedding_dim=args.dim).start(args.port)
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
