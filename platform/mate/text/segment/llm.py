"""Segmentation by an LLM behind an OpenAI-compatible chat-completions API.

One request per caption, temperature 0, a JSON object answer `{"subtexts": [...]}` (response_format json_object,
parsed defensively: code fences, prose around the object, a bare list, items given as {"text": ...}). Every answer is
validated (`base.validate`): each sub-text a span of the caption modulo case/punctuation/whitespace, no invented
words, no overlap, every content word covered, before/after in temporal order. An answer that fails, or a request
that still fails after the retries, falls back to the rule segmenter for that caption, with its reason.

Retries: 429, 408, 409, 5xx, timeouts and dropped connections, at most `segment.max_retries` times, with
exponential backoff (`backoff` x 2^attempt, capped, plus a little jitter; a server's Retry-After is honoured up to
the cap). The client's own retries are off (max_retries=0) so the count and the backoff are ours.
A refused key (401/403) or an unknown model/endpoint (404) stops the whole run with a SegmentError: falling back
for every caption would hide a configuration mistake.

Secrets: the key is read from the environment variable the config names and handed to the client only. It is
never logged, stored, or put in a reason: every text that leaves this module is passed through `_redact`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from .base import Invalid, Segmentation, Segmenter, SegmentError, validate
from .rules import RuleSegmenter

log = logging.getLogger("mate.text.segment")

PROMPT_VERSION = "seg-v1"

SYSTEM_PROMPT = """\
You split a caption that describes a human motion into its sub-actions.
Answer with a JSON object {"subtexts": [...]}: the sub-texts in the order the actions HAPPEN in time.
Rules:
1. Each sub-text is one sub-action, copied word for word from the caption as one contiguous piece. Do not add,
   change, reorder or repeat words. Leave out only connecting words at its edges (then, and, and then, after that,
   before, after, once, finally, followed by, first, next).
2. Keep every modifier with its verb (quickly, slowly, clockwise, to the left, with the right hand, twice).
3. Actions done at the same time (while, as, simultaneously) stay together in one sub-text.
4. A caption with a single action gives exactly one sub-text: the whole caption.
5. Time order: "A before B" -> [A, B]; "before B, A" -> [A, B]; "A after B" -> [B, A]; "after B, A" -> [B, A];
   "A once B" -> [B, A].
6. Together the sub-texts keep every word of the caption that describes the motion.
Examples:
Caption: a person walks forward and then turns around slowly.
{"subtexts": ["a person walks forward", "turns around slowly"]}
Caption: the man sits down after walking to a chair
{"subtexts": ["walking to a chair", "the man sits down"]}
Caption: before jumping, someone waves with the left hand while stepping back.
{"subtexts": ["someone waves with the left hand while stepping back", "jumping"]}
Caption: a person kicks with the right leg.
{"subtexts": ["a person kicks with the right leg"]}"""


def user_message(caption: str) -> str:
    return f"Caption: {caption}"


def parse_answer(content: str | None) -> list[str]:
    """The sub-texts of a model's answer, or Invalid("malformed") saying why none could be read."""
    if content is None or not content.strip():
        raise Invalid("malformed", "empty answer")
    text = content.strip()
    fence = re.match(r"^```[a-zA-Z]*\s*(.*?)\s*```$", text, re.S)
    if fence:
        text = fence.group(1)
    obj: Any
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
        for open_, close in (("{", "}"), ("[", "]")):
            a, b = text.find(open_), text.rfind(close)
            if 0 <= a < b:
                try:
                    obj = json.loads(text[a:b + 1])
                    break
                except json.JSONDecodeError:
                    continue
        if obj is None:
            raise Invalid("malformed", "answer is not JSON: " + _snippet(content)) from None
    if isinstance(obj, dict):
        items = None
        for key in ("subtexts", "sub_texts", "subTexts", "segments", "sub-texts", "actions"):
            if isinstance(obj.get(key), list):
                items = obj[key]
                break
        if items is None:
            lists = [v for v in obj.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise Invalid("malformed", "no list of sub-texts in the answer: " + _snippet(content))
            items = lists[0]
    elif isinstance(obj, list):
        items = obj
    else:
        raise Invalid("malformed", "answer is neither an object nor a list: " + _snippet(content))
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            item = item["text"]
        if not isinstance(item, str):
            raise Invalid("malformed", f"a sub-text is a {type(item).__name__}, not a string")
        out.append(item)
    if not out:
        raise Invalid("malformed", "the list of sub-texts is empty")
    return out


def _snippet(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[:n] + "...")


class _Transient(Exception):
    def __init__(self, reason: str, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.retry_after = reason, detail, retry_after


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


class OpenAISegmenter(Segmenter):
    backend = "openai"
    version = PROMPT_VERSION

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, concurrency: int = 4,
                 max_retries: int = 4, timeout: float = 30.0, backoff: float = 0.5, max_backoff: float = 20.0,
                 progress: bool = True, api_key_env: str = "OPENAI_API_KEY"):
        import openai

        from mate.config import ConfigError

        if not api_key:
            raise ConfigError(f"the openai backend needs an API key (environment variable {api_key_env} is empty)")
        for name, bad in (("segment.concurrency", concurrency < 1), ("segment.max_retries", max_retries < 0),
                          ("segment.timeout", timeout <= 0)):
            if bad:
                raise ConfigError(f"config key '{name}' must be positive (max_retries: >= 0)")
        self.model = model
        self._key = api_key
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.progress = progress
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._rules = RuleSegmenter()
        self._lock = threading.Lock()
        self.requests = 0  # HTTP requests sent (retries included)

    @classmethod
    def from_config(cls, config, *, progress: bool = True, **kwargs) -> "OpenAISegmenter":
        """From `segment.*` keys; the key comes from the environment variable `segment.api_key_env` names."""
        from mate.config import ConfigError

        env = config["segment.api_key_env"]
        key = os.environ.get(env, "")
        if not key.strip():
            raise ConfigError(f"segment.backend=openai needs an API key in the environment variable {env} "
                              f"(named by segment.api_key_env), which is not set")
        return cls(config["segment.model"], api_key=key.strip(), base_url=config["segment.base_url"],
                   concurrency=config["segment.concurrency"], max_retries=config["segment.max_retries"],
                   timeout=config["segment.timeout"], progress=progress, api_key_env=env, **kwargs)

    def __repr__(self) -> str:  # never the key
        return f"OpenAISegmenter(model={self.model!r}, base_url={str(self._client.base_url)!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    # -- one request ------------------------------------------------------------------------------------------
    def _request(self, caption: str) -> str | None:
        import openai

        with self._lock:
            self.requests += 1
        try:
            resp = self._client.chat.completions.create(
                model=self.model, temperature=0, response_format={"type": "json_object"},
                messages=[{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": user_message(caption)}])
        except openai.APITimeoutError:
            raise _Transient("timeout", f"no answer within {self.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise _Transient("connection", f"connection failed ({type(exc.__cause__ or exc).__name__})") from None
        except openai.APIStatusError as exc:
            code = exc.status_code
            if code in (401, 403):
                raise SegmentError(f"the server refused the API key in {self.api_key_env} (HTTP {code})") from None
            if code == 404:
                raise SegmentError(f"model {self.model!r} or endpoint not found at {self._client.base_url} "
                                   f"(HTTP 404): check segment.model and segment.base_url") from None
            if code == 429:
                raise _Transient("rate_limit", "HTTP 429", _retry_after(exc.response)) from None
            if code >= 500 or code in (408, 409):
                raise _Transient("server_error", f"HTTP {code}", _retry_after(exc.response)) from None
            raise Invalid(f"http_{code}", self._redact(_snippet(str(exc.message)))) from None
        if not getattr(resp, "choices", None):
            raise Invalid("malformed", "answer has no choices")
        return resp.choices[0].message.content

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = min(self.backoff * (2 ** attempt), self.max_backoff)
        return base + random.uniform(0, 0.1 * base)

    def one(self, caption: str) -> Segmentation:
        """Ask, retrying transient failures; validate; fall back to the rules with the reason when that fails."""
        last: _Transient | None = None
        for attempt in range(self.max_retries + 1):
            try:
                content = self._request(caption)
                subs = validate(caption, parse_answer(content))
                return Segmentation(caption, tuple(subs), self.backend)
            except _Transient as exc:
                last = exc
                log.debug("segment: %s on attempt %d for %r", exc.reason, attempt + 1, caption)
                if attempt < self.max_retries:
                    time.sleep(self._delay(attempt, exc.retry_after))
            except Invalid as exc:
                log.info("segment: %s answer for %r, falling back to rules (%s)", exc.reason, caption,
                         self._redact(exc.detail))
                return self._rules.one(caption, backend=self.backend, fallback=exc.reason,
                                       detail=self._redact(exc.detail))
        assert last is not None
        detail = self._redact(f"{last.detail}; gave up after {self.max_retries + 1} attempts")
        log.info("segment: %s for %r, falling back to rules (%s)", last.reason, caption, detail)
        return self._rules.one(caption, backend=self.backend, fallback=last.reason, detail=detail)

    # -- many ---------------------------------------------------------------------------------------------------
    def segment_iter(self, captions: list[str]) -> Iterator[tuple[int, Segmentation]]:
        if not captions:
            return
        from tqdm import tqdm

        bar = tqdm(total=len(captions), desc=f"segment ({self.model})", unit="caption", disable=not self.progress,
                   leave=False)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="mate-segment")
        pending: dict[Future, int] = {}
        todo = iter(enumerate(captions))
        fallbacks = 0
        try:
            # Submit lazily (a bounded window), so an abort does not leave 30k queued requests behind.
            def top_up() -> None:
                while len(pending) < 4 * self.concurrency:
                    nxt = next(todo, None)
                    if nxt is None:
                        return
                    pending[pool.submit(self.one, nxt[1])] = nxt[0]

            top_up()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    seg = fut.result()  # SegmentError propagates and stops the run
                    bar.update(1)
                    if seg.fell_back:
                        fallbacks += 1
                        bar.set_postfix(fallbacks=fallbacks, refresh=False)
                    yield i, seg
                top_up()
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
