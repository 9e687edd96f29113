"""The endpoint under granian's RSGI interface: bodies are read without holding a thread, within a deadline.

Under WSGI, a request holds one of the few worker threads from its headers on, for as long as its body
takes to arrive: 16 clients that send headers and then nothing stop every login. Here the body is read
on granian's event loop (a waiting client costs a little memory, no thread), bounded in size and time,
and only a request that has arrived whole takes a thread to run the WSGI endpoint.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import io
import logging
import queue
import sys
import threading
from typing import Callable

from granian.rsgi import ProtocolClosed

from ..logs import where
from .http import DRAIN_FACTOR, checked_length, log_refused, refusal, too_large
from .soap import INTERNAL_ERROR

log = logging.getLogger("ssobridge.http")


class _Discard(io.TextIOBase):
    """wsgi.errors: nothing a library writes there reaches the log (it could be a request body)."""

    def write(self, text: str) -> int:
        return len(text)


_ERRORS = _Discard()
# glibc keeps the memory of large requests in its arenas once freed (RSS 52 -> 273 MB under hostile
# bodies): allocations over 128 KiB always get their own mapping (glibc otherwise raises that threshold
# to the largest block freed so far), a few arenas serve all threads, and malloc_trim after a large
# request hands the rest back. Elsewhere (Windows, musl) there is nothing to call.
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None
_malloc_trim = getattr(_LIBC, "malloc_trim", None)
TRIM_AFTER_BYTES = 64 * 1024
TRIM_EVERY = 256  # requests: small blocks freed in between add up too
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8


def tune_malloc() -> None:
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        _LIBC.mallopt(_M_ARENA_MAX, 2)


class Application:
    """What one config serves: its WSGI endpoint (`wsgi`), the body limits and `threads` threads, and the
    runtime behind them (closed with it). A reload replaces it in the endpoint while requests go on
    (RSGIEndpoint.replace); requests count themselves in and out, so `idle` says when the last request
    on a replaced one has been answered and it may be closed."""

    def __init__(self, wsgi: Callable, max_body: int, body_seconds: float, threads: int, runtime=None):
        self.wsgi, self.max_body, self.body_seconds = wsgi, max_body, body_seconds
        self.runtime = runtime  # start(), retire() and close(): app.Runtime
        self.pool = _Threads(threads, "ssobridge-request")
        self.in_flight = 0  # requests on it, counted under RSGIEndpoint's lock
        self.replaced = False
        self.idle = threading.Event()  # set once it is replaced and no request is left on it

    def close(self) -> None:
        self.pool.shutdown()
        if self.runtime is not None:
            self.runtime.close()


class RSGIEndpoint:
    """Reads the request (at most max_body bytes, within body_seconds), then runs the Application's WSGI
    endpoint on one of its threads. In the worker process, on_start runs before serving, on_ready once it
    accepts connections, on_stop when it stops (then the Application serving is closed)."""

    def __init__(self, application: Application, on_start: Callable[[], None], on_ready: Callable[[], None],
                 on_stop: Callable[[], None]):
        self._application = application
        self._lock = threading.Lock()  # the application in use and its in_flight count change together
        self._on_start, self._on_ready, self._on_stop = on_start, on_ready, on_stop
        self._served = 0

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(_loop_exception)
        tune_malloc()
        self._on_start()
        loop.call_soon(self._on_ready)  # the loop runs once granian's listener does

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._on_stop()
        self._application.close()

    def replace(self, application: Application) -> Application:
        """From any thread: `application` answers every request from now on, on every connection (keep-alive
        ones included); the one it replaced is returned, to be closed once `idle`."""
        with self._lock:
            old, self._application = self._application, application
            old.replaced = True
            idle = old.in_flight == 0
        if idle:
            old.idle.set()
        return old

    async def __rsgi__(self, scope, protocol) -> None:
        if scope.proto != "http":
            return
        with self._lock:
            application = self._application
            application.in_flight += 1
        try:
            await self._serve(application, scope, protocol)
        except ProtocolClosed:  # the client left before its answer could be sent: nobody to answer
            return
        except Exception as e:  # a bug: say where, never what (the message may quote the request)
            log.error("event=internal_error error=%s at=%s", type(e).__name__, where(e.__traceback__))
            protocol.response_bytes(500, [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")],
                                    INTERNAL_ERROR.encode("utf-8"))
        finally:
            with self._lock:
                application.in_flight -= 1
                idle = application.replaced and application.in_flight == 0
            if idle:
                application.idle.set()

    async def _serve(self, application: Application, scope, protocol) -> None:
        headers = scope.headers
        soap12 = "application/soap+xml" in (headers.get("content-type") or "").lower()
        body, problem = await _read_body(application, protocol, headers.get("content-length"))
        if problem is not None:
            log_refused(problem, scope.client.rpartition(":")[0])
            status, response_headers, data = refusal(*problem, soap12)
            protocol.response_bytes(status, response_headers, data)
            return
        environ = _environ(scope, body)
        status, response_headers, data = await application.pool.run(_call_wsgi, application.wsgi, environ)
        protocol.response_bytes(status, response_headers, data)
        self._served += 1
        if _malloc_trim is not None and (len(body) > TRIM_AFTER_BYTES or self._served % TRIM_EVERY == 0):
            del body, environ, data
            _malloc_trim(0)


CUT_SHORT = ("400 Bad Request", "The request body ended before the length its headers announced.")


async def _read_body(application: Application, protocol, length_header: str | None) \
        -> tuple[bytes, tuple[str, str] | None]:
    """The body, or the refusal to answer instead. A body that ends before its Content-Length (or its
    last chunk) because the client half-closed is the client's fault: a 400, not granian's bare 500."""
    max_body, seconds = application.max_body, application.body_seconds
    length, problem = checked_length(length_header, max_body)
    if problem is not None:
        if length is not None and length <= DRAIN_FACTOR * max_body:
            await _drain(protocol, DRAIN_FACTOR * max_body, seconds)
        return b"", problem
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            if length is not None:  # framed by its Content-Length, within max_body: in one await
                return await protocol(), None
            async for chunk in protocol:
                size += len(chunk)
                if size > max_body:
                    await _drain(protocol, DRAIN_FACTOR * max_body - size, seconds)
                    return b"", too_large(max_body)
                chunks.append(chunk)
    except TimeoutError:
        return b"", ("408 Request Timeout", f"The request body did not arrive within {seconds:g} s.")
    except ProtocolClosed:
        return b"", CUT_SHORT
    return b"".join(chunks), None


async def _drain(protocol, limit: int, seconds: float) -> None:
    """Read and drop up to `limit` bytes of a refused body (see DRAIN_FACTOR); one slower than the
    deadline is not waited for."""
    try:
        async with asyncio.timeout(seconds):
            async for chunk in protocol:
                limit -= len(chunk)
                if limit <= 0:
                    return
    except (TimeoutError, ProtocolClosed):  # too slow, or the client stopped sending: the 413 still goes out
        return


class _Threads:
    """Up to `count` threads that run calls for the event loop. Leaner than loop.run_in_executor, which
    chains a concurrent.futures.Future to an asyncio one (more locks and callbacks per request): a call
    goes through a queue, its answer comes back with one call_soon_threadsafe. As in ThreadPoolExecutor,
    a thread is started only when every one started is busy."""

    def __init__(self, count: int, name: str):
        self._count, self._name = count, name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._started = self._busy = 0  # counted on the event loop thread only

    def run(self, function: Callable, *args) -> asyncio.Future:
        """From the event loop thread: `function(*args)` on one of the threads; await the answer."""
        if self._busy >= self._started and self._started < self._count:
            # daemon: a worker process whose __rsgi_del__ never ran still exits (ThreadPoolExecutor
            # wakes its threads at exit through a private hook; these would wait in get() forever)
            threading.Thread(target=self._work, name=f"{self._name}_{self._started}", daemon=True).start()
            self._started += 1
        self._busy += 1
        future = asyncio.get_running_loop().create_future()
        self._queue.put((future, function, args))
        return future

    def shutdown(self) -> None:
        """Calls not started yet are dropped; the threads end after the call they are in."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        for _ in range(self._started):
            self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, function, args = item
            del item  # an idle thread holds no request body
            try:
                answer, error = function(*args), None
            except BaseException as e:
                answer, error = None, e
            del args
            try:
                future.get_loop().call_soon_threadsafe(self._settle, future, answer, error)
            except RuntimeError:  # the loop is closed: nobody waits for the answer
                pass
            del future, answer, error

    def _settle(self, future: asyncio.Future, answer, error: BaseException | None) -> None:
        self._busy -= 1
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(answer)


def _environ(scope, body: bytes) -> dict:
    host, _, port = scope.server.rpartition(":")
    environ = {
        "REQUEST_METHOD": scope.method, "SCRIPT_NAME": "", "PATH_INFO": scope.path,
        "QUERY_STRING": scope.query_string, "SERVER_NAME": host, "SERVER_PORT": port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}", "REMOTE_ADDR": scope.client.rpartition(":")[0],
        "CONTENT_LENGTH": str(len(body)), "wsgi.version": (1, 0), "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body), "wsgi.errors": _ERRORS, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ[key] = value
        elif key != "CONTENT_LENGTH":
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _call_wsgi(wsgi: Callable, environ: dict) -> tuple[int, list, bytes]:
    answer: list = []

    def start_response(status: str, headers: list, exc_info=None) -> Callable:
        answer[:] = [int(status[:3]), headers]
        return lambda data: None

    result = wsgi(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answer[0], answer[1], data


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    error = context.get("exception")
    log.error("event=internal_error error=%s at=%s", type(error).__name__ if error else "none",
              where(error.__traceback__) if error else "?")
