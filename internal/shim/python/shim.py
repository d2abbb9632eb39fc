"""Duct's Python shim.

It starts generic, warms up, says {"ready":true} on the control socket, then
waits for one "load" message that turns it into an instance of a function
version (docs/instance-contract.md). It serves HTTP/1.1 with keep-alive, one
thread per connection. Standard library only, Python 3.8 or later.
"""

import os
import sys

# Running "python3 shim.py" puts the shim's own directory first on sys.path;
# the function's modules must not see it.
_SELF = os.path.abspath(__file__)
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(_SELF):
    del sys.path[0]

import asyncio  # noqa: E402  (pre-imported: handlers may be coroutines)
import base64  # noqa: E402,F401  (pre-imported for handlers)
import importlib.util  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import urllib.parse  # noqa: E402
from http import HTTPStatus  # noqa: E402

_MAX_LINE = 65536
_MAX_HEADERS = 200

# The loaded function: kind is "http" or "event"; fn is None until load.
_fn = {
    "kind": "",
    "fn": None,
    "name": "",
    "version": 0,
    "memory_mb": 0,
    "timeout_ms": 60000,
}

_json_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _flush():
    for s in (sys.stdout, sys.stderr):
        if s is not None:
            try:
                s.flush()
            except (OSError, ValueError):
                pass


def _unbuffer():
    for s in (sys.stdout, sys.stderr):
        if s is not None and hasattr(s, "reconfigure"):
            try:
                s.reconfigure(line_buffering=True, write_through=True)
            except (OSError, ValueError):
                pass


def _log_exception():
    """Logs the exception being handled, without the shim's own frames."""
    etype, e, tb = sys.exc_info()
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename in (_SELF, __file__):
        tb = tb.tb_next
    traceback.print_exception(etype, e, tb, file=sys.stderr)
    _flush()


def _log_bad_result(e):
    sys.stderr.write("duct: the handler's result cannot be sent: %s: %s\n" % (type(e).__name__, e))
    _flush()


# ------------------------------------------------------------------ request


class Headers(dict):
    """Request headers: a dict keyed by lower-case name, looked up without
    regard to case. Repeated headers are joined with ", "."""

    __slots__ = ()

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Args(dict):
    """Query arguments: the first value of each key; getlist gives all."""

    __slots__ = ("_lists",)

    def __init__(self, lists):
        dict.__init__(self, ((k, v[0]) for k, v in lists.items()))
        self._lists = lists

    def getlist(self, key):
        return list(self._lists.get(key, ()))


def _is_json_type(ctype):
    if not ctype:
        return False
    t = ctype.split(";", 1)[0].strip().lower()
    return t == "application/json" or t.endswith("+json") or t == "text/json"


class Request(object):
    """The request an http handler receives, shaped like Flask's."""

    __slots__ = (
        "method",
        "full_path",
        "path",
        "query_string",
        "headers",
        "data",
        "_args",
        "_json",
        "_form",
    )

    def __init__(self, method, target, headers, data):
        self.method = method
        self.full_path = target
        path, _, qs = target.partition("?")
        self.path = urllib.parse.unquote(path) if "%" in path else path
        self.query_string = qs.encode("latin-1")
        self.headers = headers
        self.data = data
        self._args = None
        self._json = _UNSET
        self._form = None

    @property
    def args(self):
        if self._args is None:
            qs = self.query_string.decode("latin-1")
            self._args = Args(urllib.parse.parse_qs(qs, keep_blank_values=True) if qs else {})
        return self._args

    @property
    def json(self):
        return self.get_json()

    def get_json(self, force=False, silent=True):
        """The body parsed as JSON, or None when it is not JSON. force parses
        whatever the content type; silent=False raises on invalid JSON."""
        if not force and self._json is not _UNSET:
            return self._json
        value = None
        if self.data and (force or _is_json_type(self.headers.get("content-type"))):
            try:
                value = json.loads(self.data)
            except ValueError:
                if not silent:
                    raise
        if not force:
            self._json = value
        return value

    def get_data(self, as_text=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    @property
    def form(self):
        if self._form is None:
            ctype = (self.headers.get("content-type") or "").lower()
            lists = {}
            if self.data and ctype.startswith("application/x-www-form-urlencoded"):
                lists = urllib.parse.parse_qs(self.data.decode("utf-8", "replace"), keep_blank_values=True)
            self._form = Args(lists)
        return self._form

    @property
    def content_type(self):
        return self.headers.get("content-type")

    @property
    def invocation_id(self):
        return self.headers.get("x-duct-invocation-id", "")

    @property
    def deadline(self):
        return _deadline(self.headers)


_UNSET = object()


def _deadline(headers):
    d = headers.get("x-duct-deadline-ms")
    if d:
        try:
            return int(d)
        except ValueError:
            pass
    return int(time.time() * 1000) + _fn["timeout_ms"]


class Context(object):
    """The context an event handler receives, shaped like Lambda's."""

    __slots__ = ("invocation_id", "function_name", "function_version", "memory_limit_in_mb", "deadline")

    def __init__(self, invocation_id, deadline):
        self.invocation_id = invocation_id
        self.function_name = _fn["name"]
        self.function_version = _fn["version"]
        self.memory_limit_in_mb = _fn["memory_mb"]
        self.deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, self.deadline - int(time.time() * 1000))


# ---------------------------------------------------------------- handlers

_loop = None
_loop_lock = threading.Lock()


def _event_loop():
    """One event loop in its own thread runs every coroutine handler, so
    that loop-bound resources a module creates stay usable."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="duct-asyncio", daemon=True).start()
            _loop = loop
    return _loop


def _await(value):
    if asyncio.iscoroutine(value):
        return asyncio.run_coroutine_threadsafe(value, _event_loop()).result()
    return value


_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"
_OCTETS = "application/octet-stream"


_INTERNAL_ERROR = (500, [("Content-Type", _TEXT)], b"Internal Server Error")


def _call_http(method, target, headers, body):
    try:
        rv = _await(_fn["fn"](Request(method, target, headers, body)))
    except BaseException:
        _log_exception()
        return _INTERNAL_ERROR
    finally:
        _flush()
    try:
        return _http_response(rv)
    except Exception as e:
        _log_bad_result(e)
        return _INTERNAL_ERROR


def _http_response(rv):
    status = None
    extra = None
    if type(rv) is tuple:
        if len(rv) == 3:
            rv, status, extra = rv
        elif len(rv) == 2:
            rv, second = rv
            if isinstance(second, (dict, list)):
                extra = second
            else:
                status = second
        else:
            raise TypeError("handler returned a tuple of %d items: want (body, status) or (body, status, headers)" % len(rv))
    if status is None:
        status = 200 if rv is not None else 204
    elif isinstance(status, str):
        status = int(status.split(None, 1)[0])
    else:
        status = int(status)
    if rv is None:
        ctype, body = None, b""
    elif isinstance(rv, str):
        ctype, body = _TEXT, rv.encode("utf-8")
    elif isinstance(rv, (bytes, bytearray, memoryview)):
        ctype, body = _OCTETS, bytes(rv)
    else:
        ctype, body = _JSON, _json_encode(rv).encode("utf-8")
    hdrs = []
    if extra:
        items = extra.items() if isinstance(extra, dict) else extra
        for k, v in items:
            k = str(k)
            lk = k.lower()
            if lk == "content-type":
                ctype = None
            elif lk in ("content-length", "transfer-encoding"):
                continue  # the shim frames the body itself
            hdrs.append((k, str(v)))
    if ctype is not None:
        hdrs.append(("Content-Type", ctype))
    return status, hdrs, body


def _call_event(method, target, headers, body):
    try:
        event = _to_event(headers, body)
    except ValueError as e:
        return 400, [("Content-Type", _JSON)], _json_encode({"errorType": "InvalidEvent", "errorMessage": str(e)}).encode("utf-8")
    ctx = Context(headers.get("x-duct-invocation-id", ""), _deadline(headers))
    try:
        rv = _await(_fn["fn"](event, ctx))
    except BaseException as e:
        _log_exception()
        return _event_error(e)
    finally:
        _flush()
    if rv is None:
        return 204, [], b""
    try:
        return 200, [("Content-Type", _JSON)], _json_encode(rv).encode("utf-8")
    except Exception as e:
        _log_bad_result(e)
        return _event_error(e)


def _event_error(e):
    msg = _json_encode({"errorType": type(e).__name__, "errorMessage": str(e)})
    return 500, [("Content-Type", _JSON)], msg.encode("utf-8")


def _decode_ce_header(v):
    return urllib.parse.unquote(v) if "%" in v else v


def _to_event(headers, body):
    """The handler's event: a CloudEvent in binary or structured mode becomes
    its attribute dict; anything else is the JSON body, or the text body when
    that is not JSON."""
    ctype = headers.get("content-type")
    if "ce-specversion" in headers:
        ev = {}
        for k, v in headers.items():
            if k.startswith("ce-"):
                ev[k[3:]] = _decode_ce_header(v)
        if ctype is not None:
            ev["datacontenttype"] = ctype
        if body:
            text = body.decode("utf-8", "replace")
            if ctype is None or _is_json_type(ctype):
                try:
                    ev["data"] = json.loads(text)
                except ValueError:
                    ev["data"] = text
            else:
                ev["data"] = text
        return ev
    if ctype is not None and ctype.lower().startswith("application/cloudevents+json"):
        try:
            return json.loads(body)
        except ValueError as e:
            raise ValueError("structured CloudEvent: %s" % e)
    if not body:
        return None
    text = body.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _not_loaded(method, target, headers, body):
    return 503, [("Content-Type", _TEXT)], b"duct: no function loaded\n"


_dispatch = _not_loaded

# ------------------------------------------------------------------- server


class _BadRequest(Exception):
    def __init__(self, status, reason):
        Exception.__init__(self, reason)
        self.status = status


_date = [0, b""]


def _date_header():
    now = int(time.time())
    if _date[0] != now:
        _date[1] = ("Date: %s\r\n" % time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))).encode("ascii")
        _date[0] = now
    return _date[1]


def _status_line(status):
    return ("HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "Unknown"))).encode("ascii")


_STATUS_LINES = {s: _status_line(s) for s in _REASONS}


def _write_response(conn, status, hdrs, body, keep, head):
    parts = [_STATUS_LINES.get(status) or _status_line(status), _date_header()]
    lines = []
    for k, v in hdrs:
        if "\n" in k or "\r" in k or "\n" in v or "\r" in v:
            raise ValueError("header %r holds a line break" % k)
        lines.append("%s: %s\r\n" % (k, v))
    if status >= 200 and status not in (204, 304):
        lines.append("Content-Length: %d\r\n" % len(body))
    else:
        body = b""
    if not keep:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    try:
        parts.append(text.encode("latin-1"))
    except UnicodeEncodeError:
        parts.append(text.encode("utf-8"))
    if head or not body:
        conn.sendall(b"".join(parts))
    elif len(body) < 65536:
        parts.append(body)
        conn.sendall(b"".join(parts))
    else:
        conn.sendall(b"".join(parts))
        conn.sendall(body)


def _read_chunked(rfile):
    chunks = []
    while True:
        line = rfile.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise _BadRequest(400, "bad chunk")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(400, "bad chunk size")
        if size == 0:
            break
        data = rfile.read(size)
        if len(data) != size:
            raise _BadRequest(400, "short chunk")
        chunks.append(data)
        rfile.readline(_MAX_LINE)
    while True:  # trailers
        line = rfile.readline(_MAX_LINE)
        if line in (b"\r\n", b"\n", b""):
            break
    return b"".join(chunks)


def _serve_one(conn, rfile):
    """Reads one request from rfile, answers it and reports whether the
    connection stays open."""
    line = rfile.readline(_MAX_LINE)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(_MAX_LINE)
    if not line:
        return False
    if not line.endswith(b"\n"):
        raise _BadRequest(414, "request line too long")
    parts = line.split()
    if len(parts) != 3:
        raise _BadRequest(400, "bad request line")
    method, target, version = parts
    headers = Headers()
    n = 0
    while True:
        h = rfile.readline(_MAX_LINE)
        if h == b"\r\n" or h == b"\n":
            break
        if not h:
            return False
        n += 1
        if n > _MAX_HEADERS or not h.endswith(b"\n"):
            raise _BadRequest(431, "request header fields too large")
        k, sep, v = h.partition(b":")
        if not sep:
            raise _BadRequest(400, "bad header line")
        k = k.strip().decode("latin-1").lower()
        v = v.strip().decode("latin-1")
        old = dict.get(headers, k)
        dict.__setitem__(headers, k, v if old is None else old + ", " + v)
    conn_hdr = dict.get(headers, "connection", "").lower()
    if version == b"HTTP/1.1":
        keep = "close" not in conn_hdr
    elif version == b"HTTP/1.0":
        keep = "keep-alive" in conn_hdr
    else:
        raise _BadRequest(505, "HTTP version not supported")
    te = dict.get(headers, "transfer-encoding")
    cl = dict.get(headers, "content-length")
    if (te is not None or (cl and cl != "0")) and dict.get(headers, "expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if te is not None:
        if te.lower().rsplit(",", 1)[-1].strip() != "chunked":
            raise _BadRequest(501, "unsupported transfer-encoding")
        body = _read_chunked(rfile)
    elif cl:
        try:
            size = int(cl)
        except ValueError:
            raise _BadRequest(400, "bad content-length")
        if size < 0:
            raise _BadRequest(400, "bad content-length")
        body = rfile.read(size) if size else b""
        if len(body) != size:
            return False
    else:
        body = b""
    method = method.decode("latin-1")
    with _busy_lock:
        _busy[0] += 1
    try:
        status, hdrs, payload = _dispatch(method, target.decode("latin-1"), headers, body)
    finally:
        with _busy_lock:
            _busy[0] -= 1
    try:
        _write_response(conn, status, hdrs, payload, keep, method == "HEAD")
    except ValueError:
        _log_exception()
        _write_response(conn, 500, [("Content-Type", _TEXT)], b"Internal Server Error", keep, method == "HEAD")
    return keep


# _busy counts requests being handled, so that SIGTERM can let them finish.
_busy = [0]
_busy_lock = threading.Lock()


def _on_sigterm(signum, frame):
    """Stops accepting, lets the requests in progress finish, exits."""
    _stopping.set()
    if _listen_sock[0] is not None:
        try:
            _listen_sock[0].shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    while _busy[0] > 0:
        time.sleep(0.005)
    _flush()
    os._exit(0)


_listen_sock = [None]
_stopping = threading.Event()


def _serve_conn(conn):
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    rfile = conn.makefile("rb", 65536)
    try:
        while _serve_one(conn, rfile):
            pass
    except _BadRequest as e:
        try:
            msg = str(e).encode("latin-1") + b"\n"
            _write_response(conn, e.status, [("Content-Type", _TEXT)], msg, False, False)
        except OSError:
            pass
    except OSError:
        pass  # the peer went away
    except Exception:
        _log_exception()
    finally:
        try:
            rfile.close()
            conn.close()
        except OSError:
            pass


def _accept_loop(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError as e:
            if _stopping.is_set():
                return
            sys.stderr.write("duct: accept: %s\n" % e)
            _flush()
            time.sleep(0.01)
            continue
        conn.setblocking(True)
        threading.Thread(target=_serve_conn, args=(conn,), daemon=True).start()


def _listener():
    fd = os.environ.get("DUCT_LISTEN_FD")
    if fd:
        sock = socket.socket(fileno=int(fd))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(os.environ.get("PORT") or "8080")))
        sock.listen(1024)
    sock.setblocking(True)
    return sock


# ------------------------------------------------------------------ warm-up


def _warm_http(request):
    request.args
    request.json
    request.headers.get("content-type")
    return {"ok": True, "path": request.path}, 200, {"X-Warm": "1"}


def _warm_event(event, context):
    context.get_remaining_time_in_millis()
    return {"ok": True, "event": event}


def _warm_up():
    """Sends a request of each signature through the server code over a
    socket pair, so that the first real request finds everything imported
    and initialised."""
    global _dispatch
    a, b = socket.socketpair()
    t = threading.Thread(target=_serve_conn, args=(a,), daemon=True)
    try:
        _fn["fn"] = _warm_http
        _dispatch = _call_http
        t.start()
        req = b"POST /warm?a=1&b=2 HTTP/1.1\r\nHost: warm\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n" b'{"warm":true}'
        b.sendall(req)
        _read_response(b)
        _fn["fn"] = _warm_event
        _dispatch = _call_event
        b.sendall(req.replace(b"Host: warm", b"Host: warm\r\nConnection: close\r\nCe-Specversion: 1.0\r\nCe-Id: w"))
        _read_response(b)
        t.join(2)
    except OSError as e:
        sys.stderr.write("duct: warm-up skipped: %s\n" % e)
    finally:
        b.close()
        _fn["fn"] = None
        _dispatch = _not_loaded


def _read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    size = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            size = int(line.split(b":", 1)[1])
    while len(rest) < size:
        chunk = sock.recv(65536)
        if not chunk:
            return
        rest += chunk


# --------------------------------------------------------------------- load


class LoadError(Exception):
    pass


def _rel(d, s):
    return s.replace(d.rstrip(os.sep) + os.sep, "")


def _format_exception(d, e):
    """The exception with its traceback cut to the user's frames."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != _SELF and not f.filename.startswith("<frozen")]
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(e), e))
    if frames:
        text = "Traceback (most recent call last):\n" + text
    return _rel(d, text.rstrip())


def _module_name(entry):
    stem = os.path.splitext(os.path.basename(entry))[0]
    if not stem.isidentifier() or stem in sys.modules or stem in getattr(sys, "stdlib_module_names", ()):
        return "duct_function"
    return stem


def _load(msg):
    global _dispatch
    if _fn["fn"] is not None:
        raise LoadError("a function is already loaded")
    kind = msg.get("signature")
    if kind not in ("http", "event"):
        raise LoadError("unknown signature %s: want http or event" % json.dumps(kind))
    d = msg.get("dir")
    entry = msg.get("entry")
    if not isinstance(d, str) or not os.path.isabs(d):
        raise LoadError("load: dir must be an absolute path")
    if not isinstance(entry, str) or not entry:
        raise LoadError("load: entry is missing")
    name = msg.get("handler") or "handler"
    for k, v in (msg.get("env") or {}).items():
        os.environ[str(k)] = str(v)
    os.chdir(d)
    path = os.path.join(d, entry)
    if not os.path.isfile(path):
        raise LoadError("entry file %s not found in %s" % (entry, d))
    sys.path[0:0] = [d, os.path.join(d, ".packages")]

    modname = _module_name(entry)
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise LoadError("cannot load %s as a Python module" % entry)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as e:
        del sys.modules[modname]
        raise LoadError(_rel(d, "".join(traceback.format_exception_only(type(e), e)).rstrip()))
    except BaseException as e:
        del sys.modules[modname]
        hint = ""
        if isinstance(e, ModuleNotFoundError):
            hint = "\n(is the module listed in requirements.txt?)"
        raise LoadError("loading %s failed:\n%s%s" % (entry, _format_exception(d, e), hint))

    fn = getattr(mod, name, None)
    if fn is None:
        defined = sorted(
            k for k, v in vars(mod).items() if not k.startswith("_") and callable(v) and getattr(v, "__module__", None) == modname
        )
        raise LoadError(
            "module %s does not define a function named %s (defines: %s)" % (entry, name, ", ".join(defined) or "none")
        )
    if not callable(fn):
        raise LoadError("%s in %s is a %s, not a function" % (name, entry, type(fn).__name__))
    if asyncio.iscoroutinefunction(fn):
        _event_loop()
    _fn["name"] = str(msg.get("function") or "")
    _fn["version"] = msg.get("version") or 0
    _fn["memory_mb"] = msg.get("memoryMB") or 0
    _fn["timeout_ms"] = msg.get("timeoutMs") or 60000
    _fn["kind"] = kind
    _fn["fn"] = fn
    _dispatch = _call_http if kind == "http" else _call_event


# ------------------------------------------------------------------ control


def main():
    _unbuffer()
    fd = os.environ.get("DUCT_CONTROL_FD")
    if not fd:
        sys.stderr.write("duct: DUCT_CONTROL_FD is not set: this program is started by Duct\n")
        _flush()
        os._exit(2)
    ctl = socket.socket(fileno=int(fd))
    ctl.setblocking(True)

    def send(obj):
        ctl.sendall(json.dumps(obj).encode("utf-8") + b"\n")

    try:
        sock = _listener()
    except OSError as e:
        sys.stderr.write("duct: listen: %s\n" % e)
        _flush()
        os._exit(1)
    _warm_up()
    _listen_sock[0] = sock
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_accept_loop, args=(sock,), name="duct-accept", daemon=True).start()
    try:
        send({"ready": True})
        rfile = ctl.makefile("rb")
        for line in rfile:
            if line.strip():
                _control(line, send)
    except OSError:
        pass
    _flush()
    os._exit(0)


def _control(line, send):
    try:
        msg = json.loads(line)
    except ValueError as e:
        send({"ok": False, "error": "bad control message: %s" % e})
        return
    if not isinstance(msg, dict) or msg.get("op") != "load":
        send({"ok": False, "error": "unknown op %s" % json.dumps(msg.get("op") if isinstance(msg, dict) else None)})
        return
    already = _fn["fn"] is not None
    try:
        _load(msg)
    except Exception as e:
        text = str(e) if isinstance(e, LoadError) else "load: %s" % _format_exception(msg.get("dir") or "/", e)
        if already:
            send({"ok": False, "error": text})
            return
        sys.stderr.write("duct: %s\n" % text)
        _flush()
        try:
            send({"ok": False, "error": text})
        finally:
            os._exit(1)
    send({"ok": True})


if __name__ == "__main__":
    main()
