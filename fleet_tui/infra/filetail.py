"""Wake asyncio tasks when files change, without polling: one inotify descriptor per event
loop (through ctypes, Linux), registered with loop.add_reader. Idle watchers cost nothing.
Where inotify is missing, watch() returns None and callers fall back to a slow poll."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import struct
import weakref
from pathlib import Path

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1  # noqa: B018 - raises AttributeError where absent
        return libc
    except (OSError, AttributeError):
        return None


class FileWatcher:
    """Maps watched paths to asyncio.Events that are set whenever the file changes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._libc = _libc()
        self._fd = -1
        self._events: dict[int, set[asyncio.Event]] = {}
        if self._libc is not None:
            fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0:
                self._fd = fd
                loop.add_reader(fd, self._drain)

    @property
    def available(self) -> bool:
        return self._fd >= 0

    def watch(self, path: Path, event: asyncio.Event) -> int | None:
        """Set event on every change of path; returns a handle for unwatch, or None when
        inotify is unavailable (the caller must poll)."""
        if not self.available or self._libc is None:
            return None
        wd: int = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _MASK)
        if wd < 0:
            return None
        self._events.setdefault(wd, set()).add(event)
        return wd

    def unwatch(self, wd: int | None, event: asyncio.Event) -> None:
        if wd is None or wd not in self._events:
            return
        listeners = self._events[wd]
        listeners.discard(event)
        if not listeners:  # the same file watched twice shares one wd: remove with the last
            del self._events[wd]
            if self._libc is not None:
                self._libc.inotify_rm_watch(self._fd, wd)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, _mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size + length
                for event in self._events.get(wd, ()):
                    event.set()


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FileWatcher] = weakref.WeakKeyDictionary()


def file_watcher() -> FileWatcher:
    """The running loop's watcher (created on first use)."""
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = FileWatcher(loop)
    return watcher


def read_last_lines(path: Path, n: int, *, block: int = 65536) -> list[str]:
    """The last n lines of a file, reading backwards in blocks (blocking; run in a thread)."""
    if n <= 0:
        return []
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return []
    with handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= n:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            end = start
    lines = [decode_line(line) for line in data.split(b"\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines[-n:]


def decode_line(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def read_lines_after(path: Path, offset: int, max_lines: int, *, block: int = 65536
                     ) -> tuple[list[str], int, bytes]:
    """Up to max_lines newline-terminated lines after byte `offset`, the offset just after
    the last of them, and (when fewer than max_lines came) the unterminated bytes that
    follow (blocking; run in a thread). An offset past the end means the file was started
    afresh (a new attempt's log): it is read from its beginning."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return [], offset, b""
    with handle:
        if offset > os.fstat(handle.fileno()).st_size:
            offset = 0
        handle.seek(offset)
        lines: list[str] = []
        pending = bytearray()
        while len(lines) < max_lines and (chunk := handle.read(block)):
            searched = len(pending)  # an unterminated line is not searched again
            pending += chunk
            start = 0
            while len(lines) < max_lines and (end := pending.find(b"\n", max(start, searched))) >= 0:
                lines.append(decode_line(bytes(pending[start:end])))
                start = end + 1
            offset += start
            del pending[:start]
    return lines, offset, bytes(pending) if len(lines) < max_lines else b""


def read_last_complete_lines(path: Path, n: int, *, block: int = 65536) -> tuple[list[str], int, bytes]:
    """The last n newline-terminated lines, the offset just after them, and the
    unterminated bytes after them (blocking; run in a thread)."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return [], 0, b""
    with handle:
        end = os.fstat(handle.fileno()).st_size
        start, data = end, b""
        while start > 0 and data.count(b"\n") <= n:
            start = max(0, start - block)
            handle.seek(start)
            data = handle.read(end - start)
    cut = data.rfind(b"\n") + 1
    lines = data[:cut].split(b"\n")[:-1]
    kept = lines[-n:] if n > 0 else []
    return [decode_line(line) for line in kept], start + cut, data[cut:]
